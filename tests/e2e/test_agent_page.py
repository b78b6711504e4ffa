"""An agent in a real Chromium: the live indicator while a supervisor listens, after-call
notices acknowledged with "seen", a notice kept across a server restart, and a listen that
never connected shown as an attempt in which nothing was heard (EN, DE)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from live.listens.service import SETUP_S
from tests.integration.test_notices import policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.5)


async def test_live_indicator_on_the_agent_page(tmp_path: Path, browser: Browser) -> None:
    async with running_server(tmp_path / "data", policy_file=policy(tmp_path, "live")) as server:
        sender = TwilioSender(server.twilio_url, "CA-e2e-live", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        page = await browser.new_page()
        try:
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
            assert page.url.endswith("/agent/")
            indicator = page.locator('[data-testid="monitoring-indicator"]')
            await expect(indicator).to_have_attribute("data-active", "false", timeout=10_000)
            await wait_call(server, "CA-e2e-live")
            await listener.listen("CA-e2e-live", purpose="training")
            await expect(indicator).to_have_attribute("data-active", "true", timeout=10_000)
            await expect(indicator).to_contain_text("Sam Supervisor (purpose: Training)")
            await listener.stop()
            await expect(indicator).to_have_attribute("data-active", "false", timeout=10_000)
            await expect(page.locator('[data-testid="history-row"]')).to_have_count(1, timeout=10_000)
            export = await page.locator('[data-testid="export-link"]').get_attribute("href")
            assert export == "/api/audit/export?agent=agent&format=pdf"
        finally:
            await page.close()
            await listener.close()
            await sender.stop()


async def test_after_call_notice_seen_and_kept_across_restart(tmp_path: Path, browser: Browser) -> None:
    data = tmp_path / "data"
    file = policy(tmp_path, "after_call")
    async with running_server(data, policy_file=file) as server:
        # 1. The agent's page is open: the notice arrives on it, the agent clicks "seen".
        page = await browser.new_page()
        await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
        sender = TwilioSender(server.twilio_url, "CA-e2e-a", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-e2e-a")
            await listener.listen("CA-e2e-a", purpose="training")
            await listener.wait_frames(10)
            await listener.stop()
            notice = page.locator('[data-testid="notice"]')
            await expect(notice).to_have_count(1, timeout=10_000)
            await expect(notice).to_contain_text("purpose: Training")
            await expect(notice).to_contain_text("Sam Supervisor")
            await notice.locator('[data-testid="seen-button"]').click()
            await expect(notice).to_have_attribute("data-seen", "true", timeout=10_000)
            ledger = server.state.node.ledger
            [delivered] = await ledger.entries(kind="notice.delivered")
            assert delivered.fields["channel"] == "socket"
            [seen] = await ledger.entries(kind="notice.seen")
            assert seen.fields["notice_id"] == await notice.get_attribute("data-notice-id")
        finally:
            await listener.close()
            await sender.stop()
            await page.close()

        # 2. The agent is signed out; a second listen ends with the call.
        sender = TwilioSender(server.twilio_url, "CA-e2e-b", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-e2e-b")
            await listener.listen("CA-e2e-b", purpose="quality")
            await listener.wait_frames(10)
        finally:
            await sender.stop()  # hang-up ends the listen
            await listener.close()
        node = server.state.node

        async def two_ended() -> bool:
            return len(await node.ledger.entries(kind="listen.ended")) == 2

        await wait_for(two_ended, 30, "both listens to end")

    # 3. After a restart the agent signs in and finds the unseen notice.
    async with running_server(data, policy_file=file) as server:
        page = await browser.new_page()
        try:
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
            notices = page.locator('[data-testid="notice"]')
            await expect(notices).to_have_count(2, timeout=10_000)
            unseen = page.locator('[data-testid="notice"][data-seen="false"]')
            await expect(unseen).to_have_count(1)
            await expect(unseen).to_contain_text("Quality assurance")
            await unseen.locator('[data-testid="seen-button"]').click()
            await expect(page.locator('[data-testid="notice"][data-seen="false"]')).to_have_count(0, timeout=10_000)
            assert len(await server.state.node.ledger.entries(kind="notice.seen")) == 2
        finally:
            await page.close()


async def test_an_abandoned_listen_is_shown_as_an_attempt_in_both_languages(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_server(tmp_path / "data", policy_file=policy(tmp_path, "after_call")) as server:
        sender = TwilioSender(server.twilio_url, "CA-e2e-attempt", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        page = await browser.new_page()
        try:
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
            await wait_call(server, "CA-e2e-attempt")
            # The supervisor's browser never applies the answer: nothing can be heard.
            await listener.listen("CA-e2e-attempt", apply_answer=False)
            row = page.locator('[data-testid="history-row"]')
            await expect(row).to_have_count(1, timeout=30_000)  # a bound on a broken run
            await expect(row).to_have_attribute("data-attempt", "true", timeout=SETUP_S * 1000 + 5_000)
            await expect(row).to_contain_text("attempt — nothing heard")
            notice = page.locator('[data-testid="notice"]')
            await expect(notice).to_contain_text("nothing was heard", timeout=10_000)
            await page.locator('[data-testid="lang-switch"] button[data-lang="de"]').click()
            await expect(row).to_contain_text("Versuch — nichts mitgehört")
            await expect(notice).to_contain_text("es wurde nichts gehört")
        finally:
            await page.close()
            await listener.close()
            await sender.stop()

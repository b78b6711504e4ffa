"""Digest notices in a real Chromium: no live indicator and no after-call notice while the
agent's team is on ``digest``; the policy's schedule (run by the server's own digest timer)
sums up the listens; the agent, signed out when the call ended, finds the digest after a
server restart, in English and in German, and acknowledges it; all of it on the ledger."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

import live.notices.board as board_module
from tests.integration.test_notices import policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.5)


async def test_digest_reaches_a_signed_out_agent_after_a_restart(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The digest timer looks at the schedule every 0.2 s instead of every minute.
    monkeypatch.setattr(board_module, "DIGEST_RECHECK_S", 0.2)
    data = tmp_path / "data"
    file = policy(tmp_path, "digest")  # digest_schedule = "daily 18:00", Europe/Berlin
    async with running_server(data, policy_file=file) as server:
        board = server.state.node.notices
        context = await browser.new_context(locale="en-GB")
        page = await context.new_page()
        await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
        assert page.url.endswith("/agent/")
        indicator = page.locator('[data-testid="monitoring-indicator"]')
        await expect(indicator).to_have_attribute("data-active", "false", timeout=10_000)

        sender = TwilioSender(server.twilio_url, "CA-digest-1", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-digest-1")
            await listener.listen("CA-digest-1", purpose="training")
            await listener.wait_frames(50)  # a second of listening
            # Digest mode: the agent's open page shows no live indicator.
            assert await indicator.get_attribute("data-active") == "false"
            await listener.stop()
            await expect(page.locator('[data-testid="notice"]')).to_have_count(0)
        finally:
            await listener.close()

        # The agent signs out; a second listen ends when the caller hangs up.
        await context.close()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await listener.listen("CA-digest-1", purpose="quality")
            await listener.wait_frames(10)
        finally:
            await sender.stop()
            await listener.close()
        node = server.state.node

        async def two_ended() -> bool:
            return len(await node.ledger.entries(kind="listen.ended")) == 2

        await wait_for(two_ended, 30, "both listens to end")
        assert await board.store.of_agent("agent") == []  # nothing before the schedule

        # 18:00 in Berlin comes: move the board's clock to a second before it, and let the
        # server's timer run the digest.
        due = board.next_digest_at()
        assert due is not None
        shift = due - time.time() - 1.0
        board.clock = lambda: time.time() + shift
        [digest] = await wait_for(
            lambda: board.store.of_agent("agent"), 30, "the digest at its time", every=0.1
        )
        assert digest.mode == "digest" and len(digest.data["listens"]) == 2

    # After a restart the agent signs in and finds the digest, unseen.
    async with running_server(data, policy_file=file) as server:
        context = await browser.new_context(locale="en-GB")
        page = await context.new_page()
        try:
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['agent']}")
            notice = page.locator('[data-testid="notice"]')
            await expect(notice).to_have_count(1, timeout=10_000)
            await expect(notice).to_have_attribute("data-seen", "false")
            await expect(notice).to_contain_text("2 listens on your calls")
            await expect(notice).to_contain_text("purpose: Training")
            await expect(notice).to_contain_text("purpose: Quality assurance")
            # The same notice in German.
            await page.locator('[data-testid="lang-switch"] button[data-lang="de"]').click()
            await expect(notice).to_contain_text("2 Mithör-Vorgänge")
            await expect(notice).to_contain_text("Zweck: Qualitätssicherung")
            await notice.locator('[data-testid="seen-button"]').click()
            await expect(notice).to_have_attribute("data-seen", "true", timeout=10_000)
            ledger = server.state.node.ledger
            [delivered] = await ledger.entries(kind="notice.delivered")
            [seen] = await ledger.entries(kind="notice.seen")
            assert delivered.fields["notice_id"] == seen.fields["notice_id"] == digest.notice_id
        finally:
            await context.close()

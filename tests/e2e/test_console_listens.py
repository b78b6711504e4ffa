"""Listening from the console in Chromium: two panels at once, switching to another call in
one step, quality shown per leg, Esc to stop, and a listen cut by a server restart that says
so and is resumed, on record as resuming the first."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.helpers import free_port
from tests.support.g711 import tone
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.6)
QUIET = tone(660, 2.0, 0.06)


async def sign_in(browser: Browser, server: RunningServer, locale: str = "en-GB") -> Page:
    page = await (await browser.new_context(locale=locale)).new_page()
    await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
    return page


def row(page: Page, call_id: str) -> Locator:
    return page.locator(f'[data-testid="call-row"][data-call-id="{call_id}"]')


def panel(page: Page, call_id: str) -> Locator:
    return page.locator(f'[data-testid="listen-panel"][data-call-id="{call_id}"]')


async def listen(page: Page, call_id: str, purpose: str = "training") -> None:
    await row(page, call_id).locator('[data-testid="listen-button"]').click()
    await page.locator('[data-testid="purpose-select"]').select_option(purpose)
    await page.locator('[data-testid="purpose-confirm"]').click()
    await expect(panel(page, call_id)).to_have_attribute("data-state", "listening", timeout=15_000)


async def ended(server: RunningServer, session_id: str) -> list[str]:
    entries = await server.state.node.ledger.entries(session_id=session_id)
    return [str(e.fields.get("reason")) for e in entries if e.kind == "listen.ended"]


async def test_two_panels_switch_quality_and_escape(tmp_path: Path, browser: Browser) -> None:
    async with running_server(tmp_path) as server:
        senders = [
            TwilioSender(server.twilio_url, f"CA-p{i}", LOUD, QUIET, agent=f"agent-{i}", consent="granted")
            for i in (1, 2, 3)
        ]
        try:
            for sender in senders:
                await sender.start()
            page = await sign_in(browser, server)
            await expect(page.locator('[data-testid="call-row"]')).to_have_count(3, timeout=10_000)
            await listen(page, "CA-p1")
            # A second listen at once (the server allows four): a second panel.
            await listen(page, "CA-p2", "quality")
            await expect(page.locator('[data-testid="listen-panel"]')).to_have_count(2)
            sessions = await page.evaluate("window.liveConsole.sessions")
            assert [(s["callId"], s["state"]) for s in sessions] == [("CA-p2", "listening"), ("CA-p1", "listening")]
            await expect(row(page, "CA-p1").locator('[data-testid="listen-button"]')).to_be_disabled()
            await expect(row(page, "CA-p3").locator('[data-testid="switch-button"]')).to_be_visible()

            # Quality per leg from getStats, and the server's dropped packets for this listen.
            p2 = panel(page, "CA-p2")
            await expect(p2.locator('[data-testid="leg-agent"] [data-testid="leg-quality"]')).to_contain_text(
                "jitter", timeout=15_000
            )
            await expect(p2.locator('[data-testid="server-quality"]')).to_have_attribute("data-dropped", "0")
            await expect(p2.locator('[data-testid="server-quality"]')).to_contain_text("dropped")
            # Choosing the output device where the browser can (Chromium: setSinkId).
            await expect(p2.locator('[data-testid="output-select"]')).to_be_visible()

            # Switch: the newest panel (CA-p2) moves to CA-p3 in one step, same purpose.
            first_p2 = sessions[0]["sessionId"]
            await row(page, "CA-p3").locator('[data-testid="switch-button"]').click()
            await expect(panel(page, "CA-p3")).to_have_attribute("data-state", "listening", timeout=15_000)
            await expect(panel(page, "CA-p2")).to_have_count(0)
            await expect(page.locator('[data-testid="listen-panel"]')).to_have_count(2)
            assert await ended(server, first_p2) == ["stopped"]
            sessions = await page.evaluate("window.liveConsole.sessions")
            p3 = next(s for s in sessions if s["callId"] == "CA-p3")
            started = await server.state.node.ledger.entries(session_id=p3["sessionId"])
            assert (started[0].fields["call_id"], started[0].fields["purpose"]) == ("CA-p3", "quality")

            # Esc stops the newest listen; the other one goes on.
            await page.locator("body").click()
            await page.keyboard.press("Escape")
            await expect(panel(page, "CA-p3")).to_have_count(0, timeout=10_000)
            await wait_for(lambda: ended(server, p3["sessionId"]), 10, "the end of the Esc-stopped listen")
            await expect(panel(page, "CA-p1")).to_have_attribute("data-state", "listening")
            await panel(page, "CA-p1").locator('[data-testid="stop-button"]').click()
            await expect(page.locator('[data-testid="listen-panel"]')).to_have_count(0, timeout=10_000)
            await wait_for(lambda: not server.state.node.listens.stats().sessions, 10, "every listen to end")
            await page.context.close()
        finally:
            for sender in senders:
                await sender.stop()


async def test_a_listen_cut_by_a_restart_says_so_and_resumes(tmp_path: Path, browser: Browser) -> None:
    data = tmp_path / "data"
    port = free_port()
    page: Page | None = None
    sender: TwilioSender | None = None
    try:
        async with running_server(data, port=port) as server:
            sender = TwilioSender(server.twilio_url, "CA-restart", LOUD, QUIET, agent="agent-7", consent="granted")
            await sender.start()
            page = await sign_in(browser, server, locale="de-DE")
            await expect(row(page, "CA-restart")).to_have_count(1, timeout=10_000)
            await listen(page, "CA-restart", "quality")
            first = await page.evaluate("window.liveConsole.sessionId")
            assert first
        await sender.stop()
        # The server is gone: the panel says it restarts (German), not that the call ended.
        cut = panel(page, "CA-restart")
        await expect(cut).to_have_attribute("data-state", "interrupted", timeout=15_000)
        await expect(cut.locator('[data-testid="interrupted"]')).to_contain_text("Server")
        await expect(cut.locator('[data-testid="interrupted"]')).to_contain_text("neu gestartet")
        await expect(cut.locator('[data-testid="resume-button"]')).to_be_disabled()
        sessions = await page.evaluate("window.liveConsole.sessions")
        assert [(s["interrupted"], s["resumable"]) for s in sessions] == [("restart", False)]

        async with running_server(data, port=port) as server:
            assert await ended(server, first) == ["shutdown"]
            sender = TwilioSender(server.twilio_url, "CA-restart", LOUD, QUIET, agent="agent-7", consent="granted")
            await sender.start()
            resume = cut.locator('[data-testid="resume-button"]')
            await expect(resume).to_be_enabled(timeout=30_000)
            await expect(cut.locator('[data-testid="interrupted"]')).to_contain_text("fortsetzen")
            await resume.click()
            await expect(cut).to_have_attribute("data-state", "listening", timeout=15_000)
            second = await page.evaluate("window.liveConsole.sessionId")
            assert second and second != first
            [started] = [
                e for e in await server.state.node.ledger.entries(session_id=second) if e.kind == "listen.started"
            ]
            assert started.fields["resumes"] == first
            assert started.fields["purpose"] == "quality"
            await cut.locator('[data-testid="stop-button"]').click()
            await wait_for(lambda: ended(server, second), 10, "the resumed listen to end")
            assert await ended(server, second) == ["stopped"]
    finally:
        if page is not None:
            await page.context.close()
        if sender is not None:
            await sender.stop()

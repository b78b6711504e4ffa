"""A supervisor in a real Chromium signs in, listens to a call, hears both legs, stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.g711 import tone
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.6)
QUIET = tone(660, 2.0, 0.06)

STATS_JS = """
async () => {
  const pc = window.liveConsole && window.liveConsole.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  const legs = {};
  const codecs = {};
  report.forEach(s => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  report.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      legs[s.mid] = {packets: s.packetsReceived, energy: s.totalAudioEnergy || 0,
                     level: s.audioLevel || 0, codec: codecs[s.codecId] || null};
    }
  });
  return {legs, mids: (window.liveConsole.legs || []).map(l => [l.leg, l.mid])};
}
"""


async def stats(page: Page) -> dict[str, Any]:
    result = await page.evaluate(STATS_JS)
    assert result is not None, "the console exposes no peer connection"
    by_leg = {leg: result["legs"].get(mid) for leg, mid in result["mids"]}
    return by_leg


async def heard_both_legs(page: Page) -> dict[str, Any]:
    """The browser's stats once both legs carried over 100 packets of sound."""

    async def heard() -> dict[str, Any] | None:
        legs = await stats(page)
        both = all(
            legs.get(leg) and legs[leg]["packets"] > 100 and legs[leg]["energy"] > 0
            for leg in ("agent", "caller")
        )
        return legs if both else None

    return await wait_for(heard, 30, "both legs heard in the browser", every=0.25)


async def test_supervisor_listens_in_chromium(tmp_path: Path, browser: Browser) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-e2e-1", LOUD, QUIET, agent="agent-42", consent="granted")
        await sender.start()
        try:
            page = await browser.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            assert page.url.endswith("/console/")
            row = page.locator('[data-testid="call-row"][data-call-id="CA-e2e-1"]')
            await row.wait_for(timeout=10_000)
            assert "agent-42" in await row.inner_text()

            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("training")
            await page.locator('[data-testid="purpose-confirm"]').click()
            await page.locator('[data-testid="listen-panel"]').wait_for(timeout=10_000)

            legs = await heard_both_legs(page)
            assert set(legs) == {"agent", "caller"}, legs
            for leg in ("agent", "caller"):
                assert legs[leg]["packets"] > 100, legs
                assert legs[leg]["energy"] > 0, legs
                assert legs[leg]["codec"] == "audio/PCMU", legs
            assert legs["agent"]["energy"] > 4 * legs["caller"]["energy"], legs

            session_id = await page.evaluate("window.liveConsole.sessionId")
            assert session_id
            await page.locator('[data-testid="stop-button"]').click()
            node = server.state.node
            await wait_for(lambda: not node.listens.sessions, 30, "the listen session to end")
            entries = await node.ledger.entries(session_id=session_id)
            assert [e.kind for e in entries] == ["listen.started", "listen.ended"]
            assert entries[0].fields["purpose"] == "training"
            assert entries[0].fields["agent_id"] == "agent-42"
            assert entries[1].fields["reason"] == "stopped"
        finally:
            await sender.stop()


async def test_a_refusal_is_explained_in_the_supervisors_language(tmp_path: Path, browser: Browser) -> None:
    """The policy allows one listen per supervisor a day: once it is used, the console's
    listen is refused, and the console says why in German, from its own strings rather
    than the server's English message."""
    from tests.integration.test_policy_enforced import policy_text, wait_call
    from tests.support.listener import Listener

    policy = tmp_path / "policy.toml"
    policy.write_text(
        policy_text().replace("per_supervisor_per_day = 100", "per_supervisor_per_day = 1"), encoding="utf-8"
    )
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        sender = TwilioSender(server.twilio_url, "CA-e2e-q", LOUD, QUIET, agent="agent-1", consent="granted")
        await sender.start()
        context = await browser.new_context(locale="de-DE")
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-e2e-q")
            await listener.listen("CA-e2e-q", purpose="training")  # today's one listen
            await listener.stop()
            page = await context.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            row = page.locator('[data-testid="call-row"][data-call-id="CA-e2e-q"]')
            await row.wait_for(timeout=10_000)
            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("training")
            await page.locator('[data-testid="purpose-confirm"]').click()
            status = page.locator('[data-testid="status"]')
            await expect(status).to_contain_text("Mithören abgelehnt", timeout=15_000)
            await expect(status).to_contain_text("heutige Zahl an Mithör-Vorgängen")
            refused = await server.state.node.ledger.entries(kind="listen.refused")
            assert [e.fields["code"] for e in refused] == ["quota_supervisor_day"]
        finally:
            await listener.close()
            await context.close()
            await sender.stop()


async def test_a_leg_the_telephony_does_not_send_is_shown_as_such(tmp_path: Path, browser: Browser) -> None:
    """A Twilio stream with only the inbound track: the agent leg says it is not sent, in the
    supervisor's language; when the call's second stream (outbound) arrives, it is heard."""
    async with running_server(tmp_path) as server:
        caller = TwilioSender(server.twilio_url, "CA-e2e-split", LOUD, QUIET, tracks="inbound", agent="agent-5")
        agent = TwilioSender(server.twilio_url, "CA-e2e-split", LOUD, QUIET, tracks="outbound", agent="agent-5")
        await caller.start()
        context = await browser.new_context(locale="de-DE")
        try:
            page = await context.new_page()
            await page.goto(f"{server.base_url}/auth/link?token={server.tokens['sup']}")
            row = page.locator('[data-testid="call-row"][data-call-id="CA-e2e-split"]')
            await row.wait_for(timeout=10_000)
            await row.locator('[data-testid="listen-button"]').click()
            await page.locator('[data-testid="purpose-select"]').select_option("training")
            await page.locator('[data-testid="purpose-confirm"]').click()
            agent_leg = page.locator('[data-testid="leg-agent"]')
            caller_leg = page.locator('[data-testid="leg-caller"]')
            await expect(agent_leg).to_have_attribute("data-available", "false", timeout=15_000)
            await expect(agent_leg.locator('[data-testid="leg-audibility"]')).to_have_text(
                "Von der Telefonanlage nicht gesendet"
            )
            await expect(caller_leg).to_have_attribute("data-available", "true")
            await expect(caller_leg.locator('[data-testid="leg-audibility"]')).to_have_text("Hörbar")

            await agent.start()  # the call's second stream: the agent leg is sent from now on
            await expect(agent_leg).to_have_attribute("data-available", "true", timeout=15_000)
            await expect(agent_leg.locator('[data-testid="leg-audibility"]')).to_have_text("Hörbar")
            async def agent_heard() -> dict[str, Any] | None:
                legs = await stats(page)
                return legs if legs.get("agent") and legs["agent"]["energy"] > 0 else None

            await wait_for(agent_heard, 30, "the agent leg heard in the browser", every=0.25)
        finally:
            await context.close()
            await caller.stop()
            await agent.stop()

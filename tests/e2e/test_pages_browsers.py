"""The agent page, the audit page and (in Firefox) the console, in real Firefox (WebDriver
BiDi) and Chromium, through one driver and one script per check (``tests/browser``).

Every ledger entry kind appears on the audit page with its words and ids on one line; the
agent page's cards have inner padding, the live indicator names the purpose, the history
shows purpose, listener, start, end and duration (EN and DE); neither page scrolls sideways
at 375 px; in Firefox a supervisor signs in, sees a call, listens, and both legs play."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.audit.events import EVENT_KINDS
from tests.integration.test_notices import policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.browser_driver import BROWSERS, run_script
from tests.support.g711 import tone
from tests.support.ledger_kinds import T0, seed_every_kind
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.06)
KIND_LABELS = {
    "export.made": "Export made",
    "policy.changed": "Policy changed",
    "purge.done": "Personal details erased",
    "listen.refused": "Listen refused",
    "leg.muted": "Side muted",
    "leg.unmuted": "Side audible again",
}


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_every_entry_kind_on_the_audit_page(tmp_path: Path, browser_name: str) -> None:
    async with running_server(tmp_path) as server:
        await seed_every_kind(server.state.node.ledger)
        await run_script(
            browser_name,
            "audit_entries",
            {
                "base": server.base_url,
                "token": server.tokens["auditor"],
                "kinds": sorted(EVENT_KINDS),
                "kindLabels": KIND_LABELS,
            },
        )


async def seed_ended_listen(server: object, agent: str) -> None:
    """One listen on ``agent``'s calls that ended after 125.4 s (shown as 2:05)."""
    ledger = server.state.node.ledger  # type: ignore[attr-defined]
    session = {"session_id": "ls_done", "call_id": "CA-done", "agent_id": agent, "node_id": "node-x"}
    await ledger.append(
        "listen.started",
        actor="sup",
        at=T0,
        **session,
        user_id="sup",
        display_name="Sam Supervisor",
        purpose="quality",
        legs=["agent", "caller"],
        started_at=T0,
        policy_version="n-1",
    )
    await ledger.append(
        "listen.ended",
        actor="system",
        at=T0 + 125.4,
        **session,
        reason="stopped",
        ended_at=T0 + 125.4,
        duration_s=125.4,
    )


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_agent_page_cards_indicator_and_history(tmp_path: Path, browser_name: str) -> None:
    async with running_server(tmp_path / "data", policy_file=policy(tmp_path, "live")) as server:
        await seed_ended_listen(server, "agent")
        sender = TwilioSender(server.twilio_url, "CA-cards", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-cards")
            await listener.listen("CA-cards", purpose="quality")
            await run_script(
                browser_name,
                "agent_cards",
                {
                    "base": server.base_url,
                    "token": server.tokens["agent"],
                    "listener": "Sam Supervisor",
                    "purposeLabel": {"en": "Quality assurance", "de": "Qualitätssicherung"},
                    "durationText": {"en": "2:05", "de": "2:05"},
                },
            )
        finally:
            await listener.close()
            await sender.stop()


async def test_console_smoke_in_firefox(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-fx", LOUD, QUIET, agent="agent-42", consent="granted")
        await sender.start()
        try:
            await run_script(
                "firefox",
                "console_smoke",
                {"base": server.base_url, "token": server.tokens["sup"], "callId": "CA-fx", "purpose": "training"},
            )
            ledger = server.state.node.ledger
            ended = await wait_for(
                lambda: ledger.entries(kind="listen.ended"), 20, "the Firefox listen's end on record"
            )
            assert [e.fields["reason"] for e in ended] == ["stopped"]
        finally:
            await sender.stop()

"""The supervisor console in real Firefox (WebDriver BiDi) and Chromium, through the same
driver and scripts (``tests/browser``): roster search, filters, sort with a stable order and
the keyboard; two panels, Switch and Esc; a listen cut by a server restart that says so and
is resumed on record; the purpose dialog that closes when its call ends; and 375 px in
English and German. The ledger is read back for every listen the scripts start."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from live.audit.entry import LedgerEntry
from live.types import CallId, Consent
from tests.e2e.test_console_roster import add_names, announce, policy_file
from tests.helpers import free_port
from tests.support.browser_driver import BROWSERS, run_script
from tests.support.g711 import tone
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

LOUD = tone(440, 2.0, 0.6)
QUIET = tone(660, 2.0, 0.06)


def ids(*numbers: int) -> list[str]:
    return [f"CA-{i:04d}" for i in numbers]


async def session_entries(server: RunningServer, session_id: str, kind: str) -> list[LedgerEntry]:
    return [
        e for e in await server.state.node.ledger.entries(session_id=session_id) if e.kind == kind
    ]


async def end_reasons(server: RunningServer, session_id: str) -> list[str]:
    return [
        str(e.fields.get("reason"))
        for e in await session_entries(server, session_id, "listen.ended")
    ]


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_roster_search_filters_sort_and_keyboard(tmp_path: Path, browser_name: str) -> None:
    async with running_server(
        tmp_path / "data", policy_file=str(policy_file(tmp_path, 12))
    ) as server:
        add_names(server)
        for i in range(1, 10):
            await announce(server, i, Consent.DENIED if i == 5 else Consent.GRANTED)

        async def sorted_then_changes(_: Any) -> dict[str, str]:
            await announce(server, 10)
            await server.state.node.calls.update_call(CallId("CA-0002"), consent=Consent.DENIED)
            return {"added": "CA-0010", "changed": "CA-0002"}

        await run_script(
            browser_name,
            "console_roster",
            {
                "base": server.base_url,
                "token": server.tokens["sup"],
                "started": ids(*range(1, 10)),
                "firstName": "Ada Lovelace",
                "accented": {"search": "edith", "ids": ids(4)},
                "queue": {"name": "q-sales", "ids": ids(2, 5, 8)},
                "team": {"name": "support", "ids": ids(1, 4, 7)},
                "countTeam": {"name": "billing", "ids": ids(3, 6, 9)},
                "denied": ids(5),
                "counts": ["billing: 3", "sales: 3", "support: 3"],
            },
            steps={"sorted": sorted_then_changes},
        )


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_two_panels_switch_and_escape(tmp_path: Path, browser_name: str) -> None:
    async with running_server(tmp_path) as server:
        calls = [f"CA-p{i}" for i in (1, 2, 3)]
        senders = [
            TwilioSender(
                server.twilio_url, call, LOUD, QUIET, agent=f"agent-{i}", consent="granted"
            )
            for i, call in enumerate(calls, 1)
        ]
        try:
            for sender in senders:
                await sender.start()
            result = await run_script(
                browser_name,
                "console_listens",
                {"base": server.base_url, "token": server.tokens["sup"], "calls": calls},
            )
            data = result.data
            await wait_for(
                lambda: not server.state.node.listens.stats().sessions, 20, "every listen to end"
            )
            assert await end_reasons(server, data["switchedFrom"]) == ["stopped"]
            [started] = await session_entries(server, data["switchedTo"], "listen.started")
            assert (started.fields["call_id"], started.fields["purpose"]) == ("CA-p3", "quality")
            assert await end_reasons(server, data["escaped"]) == ["stopped"]
            assert await end_reasons(server, data["stopped"]) == ["stopped"]
        finally:
            for sender in senders:
                await sender.stop()


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_a_listen_cut_by_a_restart_says_so_and_resumes(
    tmp_path: Path, browser_name: str
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    servers: list[RunningServer] = []
    senders: list[TwilioSender] = []
    firsts: list[str] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start() -> RunningServer:
            """The server on the same data and port, with the call running."""
            server = await stack.enter_async_context(running_server(data_dir, port=port))
            sender = TwilioSender(
                server.twilio_url, "CA-restart", LOUD, QUIET, agent="agent-7", consent="granted"
            )
            senders.append(sender)
            await sender.start()
            servers.append(server)
            return server

        async def stop_server(data: dict[str, str]) -> None:
            firsts.append(data["first"])
            await stack.aclose()  # the server goes first: a shutdown, not the end of the call
            await senders[-1].stop()

        async def start_again(_: Any) -> None:
            server = await start()
            assert await end_reasons(server, firsts[0]) == ["shutdown"]

        try:
            first_server = await start()
            result = await run_script(
                browser_name,
                "console_restart",
                {
                    "base": first_server.base_url,
                    "token": first_server.tokens["sup"],
                    "callId": "CA-restart",
                    "purpose": "quality",
                },
                steps={"listening": stop_server, "cut": start_again},
            )
            server = servers[-1]
            first, second = result.data["first"], result.data["second"]
            assert firsts == [first]
            [started] = await session_entries(server, second, "listen.started")
            assert started.fields["resumes"] == first
            assert started.fields["purpose"] == "quality"
            assert await wait_for(
                lambda: end_reasons(server, second), 20, "the resumed listen's end"
            ) == ["stopped"]
        finally:
            for sender in senders:
                await sender.stop()


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_the_purpose_dialog_closes_when_its_call_ends(
    tmp_path: Path, browser_name: str
) -> None:
    async with running_server(
        tmp_path / "data", policy_file=str(policy_file(tmp_path, 6))
    ) as server:
        add_names(server)
        for i in (1, 2):
            await announce(server, i)

        async def end_call(_: Any) -> None:
            await server.state.node.calls.call_ended(CallId("CA-0001"))

        async def again(_: Any) -> None:
            await announce(server, 1)

        await run_script(
            browser_name,
            "console_dialog",
            {
                "base": server.base_url,
                "token": server.tokens["sup"],
                "callId": "CA-0001",
                "said": {
                    "en": "The call of Ada Lovelace ended before listening started.",
                    "de": "Das Gespräch von Ada Lovelace ist beendet, bevor das Mithören begann.",
                },
            },
            steps={"dialog-open": end_call, "again": again},
        )
        assert await server.state.node.ledger.entries(kind="listen.started") == []


@pytest.mark.parametrize("browser_name", BROWSERS)
async def test_375px_no_horizontal_scroll_and_listen_visible(
    tmp_path: Path, browser_name: str
) -> None:
    async with running_server(
        tmp_path / "data", policy_file=str(policy_file(tmp_path, 30))
    ) as server:
        add_names(server)
        for i in range(1, 21):
            await announce(server, i)
        await run_script(
            browser_name,
            "console_narrow",
            {
                "base": server.base_url,
                "token": server.tokens["sup"],
                "rows": 20,
                "listen": {"en": "Listen", "de": "Mithören"},
            },
        )

"""Notices through the cluster: two nodes on one Redis and one PostgreSQL, both started by the
tests. The agent's page is served by node B; the call and its listens are on node C.

The live indicator and the after-call notice reach the agent on B; the notice is kept once in
the shared store, delivered once, and marking it seen on B is what C shows."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.test_notices import LOUD, api, policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for


@asynccontextmanager
async def nodes(
    tmp_path: Path, mode: str, ledger_url: str, redis_url: str
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Nodes ``b`` and ``c`` sharing the ledger's database, Redis, the policy and the users."""
    file = policy(tmp_path, mode)
    async with AsyncExitStack() as stack:
        b = await stack.enter_async_context(
            running_server(tmp_path / "b", policy_file=file, ledger_url=ledger_url, redis_url=redis_url, node_id="b")
        )
        (tmp_path / "c").mkdir()
        shutil.copy(b.settings.users_path, tmp_path / "c" / "users.json")
        c = await stack.enter_async_context(
            running_server(tmp_path / "c", policy_file=file, ledger_url=ledger_url, redis_url=redis_url, node_id="c")
        )
        yield b, c


@asynccontextmanager
async def agent_page(server: RunningServer) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The agent's socket on ``server``, past its first (idle) indicator."""
    async with aiohttp.ClientSession() as http, http.ws_connect(
        f"{server.ws_url}/api/agent/events", headers={"Authorization": f"Bearer {server.tokens['agent']}"}
    ) as ws:
        first = await next_event(ws)
        assert first["type"] == "monitoring" and first["active"] is False
        yield ws


async def listen_once(server: RunningServer, call_id: str, purpose: str) -> str:
    """One supervisor listen on ``server``, heard, then stopped; its session id."""
    listener = Listener(server.base_url, server.tokens["sup"])
    try:
        await listener.listen(call_id, purpose=purpose)
        await listener.wait_frames(5)
        assert listener.session_id is not None
        return listener.session_id
    finally:
        assert await listener.stop() == 200


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """The page's next event; a bound on a broken run (the socket's pings would renew
    ``receive``'s own timeout for ever)."""
    return await asyncio.wait_for(ws.receive_json(), 30)


async def next_notice(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    event = await next_event(ws)
    assert event["type"] == "notice", event
    notice: dict[str, Any] = event["notice"]
    return notice


async def test_live_indicator_for_a_listen_on_another_node(
    tmp_path: Path, postgres_db_url: str, redis_url: str
) -> None:
    async with nodes(tmp_path, "live", postgres_db_url, redis_url) as (b, c):
        sender = TwilioSender(c.twilio_url, "CA-cl-live", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(c.base_url, c.tokens["sup"])
        try:
            async with agent_page(b) as ws:
                await wait_call(c, "CA-cl-live")
                await listener.listen("CA-cl-live", purpose="training")
                assert await next_event(ws) == {
                    "type": "monitoring",
                    "active": True,
                    "listeners": ["Sam Supervisor"],
                    "listening": [{"listener": "Sam Supervisor", "purpose": "training"}],
                }
                assert await listener.stop() == 200
                assert await next_event(ws) == {
                    "type": "monitoring",
                    "active": False,
                    "listeners": [],
                    "listening": [],
                }
            # Node B's board never made the listen: the indicator came through the bus.
            assert b.state.node.listens.sessions == {}
        finally:
            await listener.close()
            await sender.stop()


async def test_a_node_started_during_a_listen_shows_it(
    tmp_path: Path, postgres_db_url: str, redis_url: str
) -> None:
    """Node D starts while a listen on node C runs: it never saw the start announced, yet the
    agent's page on D shows the indicator (from the reconciled roster) and clears it at the end."""
    async with nodes(tmp_path, "live", postgres_db_url, redis_url) as (b, c):
        sender = TwilioSender(c.twilio_url, "CA-cl-late", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(c.base_url, c.tokens["sup"])
        try:
            await wait_call(c, "CA-cl-late")
            await listener.listen("CA-cl-late", purpose="training")
            (tmp_path / "d").mkdir()
            shutil.copy(b.settings.users_path, tmp_path / "d" / "users.json")
            late = running_server(
                tmp_path / "d",
                policy_file=str(b.settings.policy_file),
                ledger_url=postgres_db_url,
                redis_url=redis_url,
                node_id="d",
            )
            async with late as d, aiohttp.ClientSession() as http, http.ws_connect(
                f"{d.ws_url}/api/agent/events", headers={"Authorization": f"Bearer {d.tokens['agent']}"}
            ) as ws:
                shown = await next_event(ws)
                while not shown["active"]:  # idle until D's first resync (a bound: next_event)
                    shown = await next_event(ws)
                assert shown["listening"] == [{"listener": "Sam Supervisor", "purpose": "training"}]
                assert await listener.stop() == 200
                assert (await next_event(ws))["active"] is False
        finally:
            await listener.close()
            await sender.stop()


async def test_after_call_notice_once_across_nodes_and_seen_everywhere(
    tmp_path: Path, postgres_db_url: str, redis_url: str
) -> None:
    async with nodes(tmp_path, "after_call", postgres_db_url, redis_url) as (b, c):
        sender = TwilioSender(c.twilio_url, "CA-cl-after", LOUD, LOUD, agent="agent")
        await sender.start()
        try:
            async with agent_page(b) as on_b, agent_page(c) as on_c:
                await wait_call(c, "CA-cl-after")
                first = await listen_once(c, "CA-cl-after", "training")
                notice_b, notice_c = await next_notice(on_b), await next_notice(on_c)
                assert notice_b["id"] == notice_c["id"] and notice_b["session_id"] == first
                assert "purpose: Training" in notice_b["text"] and "by Sam Supervisor" in notice_b["text"]
                # A second listen: the next thing either page shows is its notice, so neither
                # page was shown the first notice twice.
                second = await listen_once(c, "CA-cl-after", "quality")
                assert (await next_notice(on_b))["session_id"] == second
                assert (await next_notice(on_c))["session_id"] == second
        finally:
            await sender.stop()

        status, listed_b = await api(b, "GET", "/api/notices")
        assert status == 200
        status, listed_c = await api(c, "GET", "/api/notices")
        assert status == 200
        assert [n["id"] for n in listed_b["notices"]] == [n["id"] for n in listed_c["notices"]]
        assert [n["session_id"] for n in listed_b["notices"]] == [first, second]  # one per listen
        ledger = b.state.node.ledger  # one ledger for the cluster
        delivered = await ledger.entries(kind="notice.delivered")
        assert sorted(e.fields["session_id"] for e in delivered) == sorted([first, second])

        notice_id = listed_b["notices"][0]["id"]
        status, body = await api(b, "POST", f"/api/notices/{notice_id}/seen")
        assert status == 200 and body["notice"]["seen_at"] is not None
        _, again = await api(c, "GET", "/api/notices")
        seen_on_c = {n["id"]: n["seen_at"] for n in again["notices"]}
        assert seen_on_c[notice_id] == body["notice"]["seen_at"]
        # Seen once for the cluster: marking it on C again records nothing new.
        status, _ = await api(c, "POST", f"/api/notices/{notice_id}/seen")
        assert status == 200
        await wait_for(lambda: ledger.entries(kind="notice.seen"), 10, "the seen entry")
        assert len(await ledger.entries(kind="notice.seen")) == 1


async def test_a_listen_gets_one_notice_whichever_node_makes_it(tmp_path: Path, postgres_db_url: str) -> None:
    """Two nodes asked for the notice of the same listen (a recovery racing a late end):
    the shared store keeps the first, the second finds it."""
    from live.notices.store_postgres import PostgresNoticeStore

    stores = [PostgresNoticeStore(postgres_db_url), PostgresNoticeStore(postgres_db_url)]
    for store in stores:
        await store.open()
    try:
        made = [
            await store.add("agent", "after_call", "text", {"session_id": "ls-1"}, 1.0, key="ls-1:after_call")
            for store in stores
        ]
        (first, new_first), (second, new_second) = made
        assert new_first and not new_second and first.notice_id == second.notice_id
        assert await stores[1].has_session("ls-1")
        assert await stores[0].mark_delivered(first.notice_id, 2.0)
        assert not await stores[1].mark_delivered(first.notice_id, 3.0)
        assert await stores[1].mark_seen(first.notice_id, 4.0)
        kept = await stores[0].get(first.notice_id)
        assert kept is not None and kept.delivered_at == 2.0 and kept.seen_at == 4.0
        await stores[0].add_digest_item("agent", "ls-2", {"session_id": "ls-2"}, 5.0)
        assert await stores[1].take_digest_items() == {"agent": [{"session_id": "ls-2"}]}
        assert await stores[0].take_digest_items() == {}
    finally:
        for store in stores:
            await store.aclose()

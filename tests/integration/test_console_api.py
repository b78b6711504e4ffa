"""What the console relies on from the server: agent names and teams in the roster, how many
listens one person may run, resuming an interrupted listen (only one's own, on the same call,
on record), late listens to ended calls refused on record, and a shutdown that ends listens
as ``shutdown`` and closes roster sockets with 1012."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

from live.ingest.sink import CallAnnouncement
from live.types import CallId
from tests.integration.test_policy_enforced import wait_call, write_policy
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 1.0, 0.5)


def bearer(server: RunningServer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens[user]}"}


async def get_json(server: RunningServer, user: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}{path}", headers=bearer(server, user)) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def post_listen(server: RunningServer, user: str, call_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.base_url}/api/calls/{call_id}/listen", json=body, headers=bearer(server, user)
    ) as response:
        return response.status, await response.json()


async def offer_sdp() -> str:
    """A browser-like offer: two receive-only audio transceivers, agent first."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for _ in range(2):
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_roster_names_agents_and_their_teams(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        server.state.users.add("agent-1", server.state.users.get("agent").role, display_name="Ada Lovelace")
        calls_registry = server.state.node.calls
        await calls_registry.call_started(CallAnnouncement(CallId("CA-named"), "test", "agent-1", queue="billing"))
        await calls_registry.call_started(
            CallAnnouncement(CallId("CA-param"), "test", "agent-4", attributes={"agent_name": "Grace Hopper"})
        )
        await calls_registry.call_started(CallAnnouncement(CallId("CA-bare"), "test", "agent-9"))
        calls = {c["call_id"]: c for c in (await get_json(server, "sup", "/api/calls"))["calls"]}
        # sup's scope is the billing team (agents 1 and 4): the sales agent is not shown.
        assert set(calls) == {"CA-named", "CA-param"}
        assert calls["CA-named"]["agent_name"] == "Ada Lovelace"
        assert calls["CA-param"]["agent_name"] == "Grace Hopper"
        assert calls["CA-named"]["team"] == calls["CA-param"]["team"] == "billing"
        bare = (await get_json(server, "sup2", "/api/calls"))["calls"]
        assert [(c["agent_name"], c["team"]) for c in bare] == [("", "sales")]

        me = await get_json(server, "sup", "/api/me")
        assert me["listens_at_once"] == server.settings.limits.listens_per_supervisor == 4

        # The roster socket: the snapshot and later events carry the same fields.
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{server.ws_url}/api/events", headers=bearer(server, "sup")) as ws,
        ):
            snapshot = await ws.receive_json()
            assert {c["call_id"]: c["agent_name"] for c in snapshot["calls"]} == {
                "CA-named": "Ada Lovelace",
                "CA-param": "Grace Hopper",
            }
            await calls_registry.update_call(CallId("CA-named"), pci_paused=True)
            updated = await ws.receive_json()
            assert updated["type"] == "call.updated"
            assert (updated["call"]["agent_name"], updated["call"]["team"]) == ("Ada Lovelace", "billing")


async def test_a_listen_resumes_only_ones_own_interrupted_listen_to_the_same_call(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        senders = [
            TwilioSender(server.twilio_url, call, LOUD, LOUD, agent="agent-1") for call in ("CA-r1", "CA-r2")
        ]
        listeners: list[Listener] = []
        try:
            for sender in senders:
                await sender.start()
            await wait_call(server, "CA-r1")
            await wait_call(server, "CA-r2")
            first = Listener(server.base_url, server.tokens["sup"])
            listeners.append(first)
            await first.listen("CA-r1")
            old = first.session_id
            await first.stop()

            # Bad input and someone else's session: refused with a clear error.
            for user, call, resumes in (
                ("sup", "CA-r1", 42),
                ("sup", "CA-r1", "x" * 65),
                ("sup2", "CA-r1", old),  # not sup2's listen
                ("sup", "CA-r2", old),  # another call
                ("sup", "CA-r1", "ls-unknown"),
            ):
                offer = await offer_sdp()
                status, body = await post_listen(
                    server, user, call, {"sdp": offer, "purpose": "quality", "resumes": resumes}
                )
                assert (status, body["error"]["code"]) == (400, "bad_resumes"), (user, call, resumes, body)

            again = Listener(server.base_url, server.tokens["sup"])
            listeners.append(again)
            await again.listen("CA-r1", resumes=old)
            entries = await server.state.node.ledger.entries(session_id=again.session_id)
            assert entries[0].kind == "listen.started"
            assert entries[0].fields["resumes"] == old
            assert entries[0].fields["purpose"] == "quality"
            plain = await server.state.node.ledger.entries(session_id=old)
            assert "resumes" not in plain[0].fields  # the entry format of a plain listen is unchanged
        finally:
            for listener in listeners:
                await listener.close()
            for sender in senders:
                await sender.stop()


async def test_a_listen_to_a_call_that_just_ended_is_refused_on_record(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-late", LOUD, LOUD, agent="agent-1")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-late")
            await sender.stop()
            node = server.state.node
            await wait_for(lambda: node.calls.known("CA-late") is None, 10, "the call to end")
            offer = await offer_sdp()
            status, body = await post_listen(server, "sup", "CA-late", {"sdp": offer, "purpose": "training"})
            assert (status, body["error"]["code"]) == (410, "call_ended"), body
            [refused] = await node.ledger.entries(kind="listen.refused")
            assert refused.fields["code"] == "call_ended"
            assert refused.fields["call_id"] == "CA-late"
            assert refused.fields["agent_id"] == "agent-1"
            assert refused.fields["purpose"] == "training"
            # A call never seen stays unknown (404) and is not a refusal of a known call.
            status, body = await post_listen(server, "sup", "CA-never", {"sdp": offer, "purpose": "training"})
            assert (status, body["error"]["code"]) == (404, "unknown_call")
            assert len(await node.ledger.entries(kind="listen.refused")) == 1
        finally:
            await listener.close()
            await sender.stop()


async def test_shutdown_ends_listens_as_shutdown_and_closes_roster_sockets_with_1012(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sender = TwilioSender("", "CA-down", LOUD, LOUD, agent="agent-1")
    listener: Listener | None = None
    http = aiohttp.ClientSession()
    messages: list[dict[str, Any]] = []
    try:
        async with running_server(data) as server:
            sender.url = server.twilio_url
            await sender.start()
            await wait_call(server, "CA-down")
            listener = Listener(server.base_url, server.tokens["sup"])
            await listener.listen("CA-down")
            await listener.wait_frames(5)
            ws = await http.ws_connect(f"{server.ws_url}/api/events", headers=bearer(server, "sup"))
            messages.append(await ws.receive_json())
            session_id = listener.session_id

            async def read_all() -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        messages.append(message.json())

            reader = asyncio.create_task(read_all())
        await asyncio.wait_for(reader, 10)
        assert ws.close_code == 1012
        ended = [m for m in messages if m["type"] == "listen.ended"]
        assert ended == [{"type": "listen.ended", "call_id": "CA-down", "session_id": session_id, "reason": "shutdown"}]
        async with running_server(data) as server:
            [end] = await server.state.node.ledger.entries(kind="listen.ended")
            assert end.fields["reason"] == "shutdown"
    finally:
        if listener is not None:
            await listener.close()
        await sender.stop()
        await http.close()

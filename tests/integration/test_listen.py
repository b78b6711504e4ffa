"""A call ingested over Twilio Media Streams, heard by an aiortc listener, on a real server."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.05)


async def test_listener_hears_both_legs_and_session_is_logged(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-listen-1", LOUD, QUIET, consent="granted")
        await sender.start()
        node = server.state.node
        await wait_for(lambda: "CA-listen-1" in node.calls.roster.calls, 30, "the call")
        listener = Listener(server.base_url, server.tokens["sup"])
        answer = await listener.listen("CA-listen-1")
        assert [leg["leg"] for leg in answer["legs"]] == ["agent", "caller"]
        assert "PCMU/8000" in answer["sdp"]
        assert "opus" not in answer["sdp"].lower()
        await listener.wait_frames(50)
        agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert agent > 0.2, agent
        assert 0.01 < caller < agent / 4, (agent, caller)
        assert await listener.stop() == 200
        entries = await node.ledger.entries(session_id=listener.session_id)
        assert [e.kind for e in entries] == ["listen.started", "listen.ended"]
        assert entries[1].fields["reason"] == "stopped"
        assert entries[0].fields["purpose"] == "quality"
        await sender.stop()


async def test_hangup_ends_the_session_with_reason(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-hangup", LOUD, QUIET)
        await sender.start()
        node = server.state.node
        await wait_for(lambda: "CA-hangup" in node.calls.roster.calls, 30, "the call")
        listener = Listener(server.base_url, server.tokens["sup"])
        await listener.listen("CA-hangup")
        await listener.wait_frames(10)
        await sender.stop()
        await wait_for(lambda: not node.listens.sessions, 30, "the listen session to end with the call")
        entries = await node.ledger.entries(session_id=listener.session_id)
        assert entries[-1].kind == "listen.ended"
        assert entries[-1].fields["reason"] == "call-ended"
        await listener.close()


async def test_roster_websocket_snapshot_then_changes(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        headers = {"Authorization": f"Bearer {server.tokens['sup']}"}
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{server.ws_url}/api/events", headers=headers) as ws:
                first = await ws.receive_json(timeout=5)
                assert first == {"type": "snapshot", "calls": []}
                sender = TwilioSender(server.twilio_url, "CA-roster", LOUD, QUIET, queue="billing")
                await sender.start()
                started = await ws.receive_json(timeout=5)
                assert started["type"] == "call.started"
                assert started["call"]["call_id"] == "CA-roster"
                assert started["call"]["agent_id"] == "agent-1"
                assert started["call"]["queue"] == "billing"
                await sender.stop()
                ended = await ws.receive_json(timeout=5)
                assert ended == {"type": "call.ended", "call_id": "CA-roster"}

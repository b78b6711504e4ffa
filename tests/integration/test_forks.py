"""Every L16 fork kind and Asterisk AudioSocket, on a real server, heard by a real listener.

Both legs of each call carry a tone: the agent's loud, the caller's quiet. The listener must
hear each on its own track (the loud one well above the quiet one), and the ledger must say
both legs were heard.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.server.ingest_audiosocket import AUDIOSOCKET, ports
from tests.support.l16 import AudioSocketSender, ForkSender, interleave, pcm
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

AGENT_HZ, CALLER_HZ = 440, 300


def tones(rate: int) -> tuple[bytes, bytes]:
    """(agent, caller) as 2 s of mono PCM at ``rate``: loud and quiet."""
    return pcm(AGENT_HZ, 2.0, 0.5, rate), pcm(CALLER_HZ, 2.0, 0.05, rate)


def fork_url(server: RunningServer, kind: str, query: str = "") -> str:
    return f"{server.ws_url}/ingest/fork/{kind}" + (f"?{query}" if query else "")


def senders(server: RunningServer, kind: str, call_id: str) -> list[ForkSender]:
    """What each vendor opens for one call with both legs."""
    if kind == "freeswitch-stereo":  # uuid_audio_fork <uuid> start <url> stereo 16k <metadata>
        agent, caller = tones(16000)
        first = {"call_id": call_id, "agent_id": "agent-fs", "sample_rate": "16k", "mix_type": "stereo",
                 "consent": "granted"}
        return [ForkSender(fork_url(server, "freeswitch"), first, interleave(caller, agent), 1280,
                           protocols=("audio.drachtio.org",))]
    if kind == "freeswitch-mono-pair":  # two forks, metadata in the URL only
        agent, caller = tones(8000)
        base = f"call_id={call_id}&agent=agent-fs&consent=granted&sample_rate=8000"
        return [
            ForkSender(fork_url(server, "freeswitch", base + "&leg=caller"), None, caller, 320),
            ForkSender(fork_url(server, "freeswitch", base + "&leg=agent"), None, agent, 320),
        ]
    if kind == "jambonz":  # listen, mixType stereo, sampleRate 8000
        agent, caller = tones(8000)
        first = {"callSid": call_id, "accountSid": "acc", "direction": "inbound", "from": "+15550100",
                 "to": "+15550199", "callId": "sip-id@x", "sampleRate": 8000, "mixType": "stereo",
                 "agentId": "agent-jz", "consent": "granted"}
        return [ForkSender(fork_url(server, "jambonz"), first, interleave(caller, agent), 640,
                           protocols=("audio.jambonz.org",))]
    assert kind == "vonage"  # one websocket per leg, headers in the first message
    agent, caller = tones(16000)

    def first(leg: str) -> dict[str, Any]:
        return {"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "uuid": call_id,
                "agent": "agent-vg", "consent": "granted", "leg": leg}

    return [
        ForkSender(fork_url(server, "vonage"), first("caller"), caller, 640),
        ForkSender(fork_url(server, "vonage"), first("agent"), agent, 640),
    ]


@asynccontextmanager
async def sending(items: list[Any]) -> AsyncIterator[None]:
    try:
        for item in items:
            await item.start()
        yield
    finally:
        for item in items:
            await item.stop()


async def hears_both_legs(server: RunningServer, call_id: str) -> None:
    node = server.state.node
    await wait_for(
        lambda: call_id in node.calls.roster.calls and node.calls.roster.calls[call_id].legs == ("agent", "caller"),
        30,
        "the call with both legs",
    )
    listener = Listener(server.base_url, server.tokens["sup"])
    try:
        answer = await listener.listen(call_id)
        assert [(x["leg"], x["available"], x["audible"]) for x in answer["legs"]] == [
            ("agent", True, True), ("caller", True, True)
        ]
        await listener.wait_frames(50)
        agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert agent > 0.2, (agent, caller)
        assert 0.01 < caller < agent / 4, (agent, caller)
        [started] = [e for e in await node.ledger.entries(session_id=listener.session_id) if e.kind == "listen.started"]
        assert started.fields["legs"] == ["agent", "caller"]
        # Paced: no leg ran ahead of or fell behind real time enough to lose packets.
        media = node.calls.local[call_id]
        assert media.agent.late == media.caller.late == 0
    finally:
        await listener.close()


@pytest.mark.parametrize("kind", ["freeswitch-stereo", "freeswitch-mono-pair", "jambonz", "vonage"])
async def test_each_fork_kind_is_heard_on_both_legs(tmp_path: Path, kind: str) -> None:
    call_id = f"fork-{kind}"
    async with running_server(tmp_path) as server:
        node = server.state.node
        forks = senders(server, kind, call_id)
        async with sending(forks):
            await hears_both_legs(server, call_id)
            call = node.calls.roster.calls[call_id]
            assert call.source == kind.split("-")[0] and call.agent_id.startswith("agent-")
            if kind == "jambonz":
                assert forks[0].ws is not None and forks[0].ws.protocol == "audio.jambonz.org"
                assert call.attributes == {}  # the caller's number stays off the bus
        await wait_for(
            lambda: not node.calls.local and not node.calls.roster.calls,
            30,
            "the call's end",
        )


async def test_asterisk_audiosocket_is_heard_on_both_legs(tmp_path: Path) -> None:
    async with running_server(tmp_path, audiosocket_listen="127.0.0.1:0") as server:
        assert server.app is not None
        caller_port, agent_port = ports(server.app[AUDIOSOCKET])
        call = uuid.uuid4()
        agent, caller = tones(8000)
        node = server.state.node
        connections = [
            AudioSocketSender("127.0.0.1", caller_port, call.bytes, caller),
            AudioSocketSender("127.0.0.1", agent_port, call.bytes, agent),
        ]
        async with sending(connections):
            await wait_for(lambda: str(call) in node.calls.roster.calls, 30, "the call")
            # AudioSocket carries no metadata: the phone system's CTI reports consent.
            async with aiohttp.ClientSession() as http, http.post(
                f"{server.base_url}/api/calls/{call}/consent",
                json={"consent": "granted"},
                headers={"Authorization": f"Bearer {server.tokens['admin']}"},
            ) as response:
                assert response.status == 200, await response.text()
            await hears_both_legs(server, str(call))
            assert node.calls.roster.calls[str(call)].source == "audiosocket"
        await wait_for(
            lambda: not node.calls.local,
            30,
            "the call's end (hangup on both connections)",
        )


async def test_fork_authentication(tmp_path: Path) -> None:
    async with running_server(tmp_path, ingest_loopback_trust=False, ingest_secret="fork-secret") as server:
        first = {"call_id": "fork-auth", "channels": 1}
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(fork_url(server, "freeswitch"))
            assert refused.value.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as wrong:
                await http.ws_connect(fork_url(server, "freeswitch", "secret=nope"))
            assert wrong.value.status == 401
            basic = base64.b64encode(b"jambonz:fork-secret").decode()
            for url, headers in (
                (fork_url(server, "freeswitch", "secret=fork-secret"), None),  # FreeSWITCH, Vonage
                (fork_url(server, "jambonz"), {"Authorization": f"Basic {basic}"}),  # jambonz wsAuth
                (fork_url(server, "vonage"), {"X-Live-Ingest-Secret": "fork-secret"}),
            ):
                async with http.ws_connect(url, headers=headers) as ws:
                    await ws.send_json({**first, "callSid": "fork-auth", "uuid": "fork-auth"})
                    await wait_for(
                        lambda: "fork-auth" in server.state.node.calls.roster.calls,
                        30,
                        "the call",
                    )
                await wait_for(
                    lambda: "fork-auth" not in server.state.node.calls.roster.calls,
                    30,
                    "the call's end",
                )


async def test_unknown_fork_kind_is_not_found(tmp_path: Path) -> None:
    async with (
        running_server(tmp_path) as server,
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/ingest/fork/asterisk") as response,
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "unknown_fork"

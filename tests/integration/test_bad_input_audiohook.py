"""Bad AudioHook input gets a clear answer; another AudioHook call keeps flowing meanwhile.

One good AudioHook call streams 200 ms frames in real time and is listened to for the whole
test. Each bad session (malformed JSON, a wrong ``seq``, audio before ``open``, oversized
frames, L16 frames that are not whole samples, unknown message types, and more) gets its
answer (``disconnect`` with the reason, or the frame dropped and counted), and after each
one the listener must still be receiving both legs of the good call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from live.server.ingest_audiohook import AUDIOHOOK
from tests.support.audiohook import L16_STEREO, AudioHookClient, voices
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

MAX_MESSAGE = 16 * 1024


@dataclass
class GoodCall:
    server: RunningServer
    client: AudioHookClient
    listener: Listener
    conversation: str
    seen: dict[str, int] = field(default_factory=dict)

    async def still_heard(self, after: str, frames: int = 5) -> None:
        stats = self.listener.stats
        before = dict(self.seen)
        await wait_for(
            lambda: all(stats[leg].frames >= before.get(leg, 0) + frames for leg in stats),
            10,
            f"the good call to be heard after {after}",
        )
        self.seen = {leg: s.frames for leg, s in stats.items()}
        assert not {"disconnect", "pause"} & set(self.client.types()), self.client.types()

    @property
    def counters(self):  # type: ignore[no-untyped-def]
        assert self.server.app is not None
        return self.server.app[AUDIOHOOK].calls.counters


@pytest.fixture
async def good(tmp_path: Path) -> AsyncIterator[GoodCall]:
    async with running_server(tmp_path, max_ingest_message=MAX_MESSAGE) as server:
        conversation = str(uuid.uuid4())
        client = AudioHookClient(f"{server.ws_url}/ingest/audiohook", api_key=None)  # loopback trust
        await client.connect()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await client.open(conversation, custom_config={"consent": "granted", "agentId": "agent-1"})
            client.start_streaming(*voices("PCMU"))
            await listener.listen(conversation)
            call = GoodCall(server, client, listener, conversation)
            await call.still_heard("start", frames=20)
            yield call
            await call.still_heard("everything", frames=20)
            assert listener.stats["agent"].level(10) > 0.2
            assert conversation in server.state.node.calls.local
            assert len(server.state.node.listens.sessions) == 1
        finally:
            await listener.close()
            await client.aclose()


async def bad_client(good: GoodCall) -> AudioHookClient:
    client = AudioHookClient(f"{good.server.ws_url}/ingest/audiohook", api_key=None)
    await client.connect()
    return client


async def expect_disconnect(client: AudioHookClient, words: str) -> None:
    disconnect = await client.expect("disconnect")
    assert disconnect["parameters"]["reason"] == "error"
    assert words in disconnect["parameters"]["info"], disconnect
    await client.expect("closed")  # the client answered close
    await wait_for(lambda: client.closed_by_server.is_set(), 30, "the server to close the socket")


@pytest.mark.parametrize(
    ("name", "payload", "words"),
    [
        ("malformed JSON", "{not json", "malformed JSON"),
        ("not an object", "[1, 2]", "must be an object"),
        ("wrong version", json.dumps({"version": "1", "type": "open"}), "version"),
        ("no parameters", None, "parameters"),
        ("a very long text", "x" * 70_000, None),
    ],
)
async def test_malformed_messages_are_disconnected(
    good: GoodCall, name: str, payload: str | None, words: str | None
) -> None:
    client = await bad_client(good)
    try:
        if payload is None:
            message = client.message("ping")
            del message["parameters"]
            payload = json.dumps(message)
        await client.send_raw(payload)
        if words is None:  # over the socket's message limit: aiohttp closes with 1009
            await wait_for(lambda: client.closed_by_server.is_set(), 30, "the oversized message to end the socket")
            assert client.ws is not None and client.ws.close_code == 1009
        else:
            await expect_disconnect(client, words)
    finally:
        await client.aclose()
    await good.still_heard(name)


async def test_a_wrong_seq_is_disconnected(good: GoodCall) -> None:
    client = await bad_client(good)
    try:
        client.seq = 4
        await client.send("ping")
        await expect_disconnect(client, "seq 5 after 0")
    finally:
        await client.aclose()
    await good.still_heard("a wrong seq")


async def test_a_serverseq_from_the_future_is_disconnected(good: GoodCall) -> None:
    client = await bad_client(good)
    try:
        await client.send("ping", serverseq=7)
        await expect_disconnect(client, "serverseq")
    finally:
        await client.aclose()
    await good.still_heard("a serverseq ahead")


async def test_audio_before_open_is_disconnected(good: GoodCall) -> None:
    client = await bad_client(good)
    try:
        await client.send_raw(b"\xff" * 3200)
        await expect_disconnect(client, "audio before open")
    finally:
        await client.aclose()
    await good.still_heard("binary before open")


async def test_a_second_open_is_disconnected_and_its_call_ends(good: GoodCall) -> None:
    client = await bad_client(good)
    conversation = str(uuid.uuid4())
    try:
        await client.open(conversation)
        await client.send("open", {"organizationId": client.organization_id, "conversationId": conversation,
                                   "participant": {}, "media": []})
        await expect_disconnect(client, "second open")
        await wait_for(lambda: conversation not in good.server.state.node.calls.roster.calls, 30, "the bad call to end")
    finally:
        await client.aclose()
    await good.still_heard("a second open")


async def test_oversized_frames(good: GoodCall) -> None:
    client = await bad_client(good)
    conversation = str(uuid.uuid4())
    try:
        await client.open(conversation)
        rejected = good.counters.rejected_frames
        await client.send_raw(b"\xff" * (8100 * 2))  # 1.01 s of stereo μ-law: over MAX_FRAME_S
        await client.send("ping")
        await client.expect("pong")
        assert good.counters.rejected_frames == rejected + 1
        assert conversation in good.server.state.node.calls.local  # dropped, the call goes on
        await client.send_raw(b"\xff" * (MAX_MESSAGE + 2))  # over the socket's message limit
        await wait_for(lambda: client.closed_by_server.is_set(), 30, "the oversized frame to end the socket")
        assert client.ws is not None and client.ws.close_code == 1009
    finally:
        await client.aclose()
    await good.still_heard("oversized frames")


async def test_l16_frames_that_are_not_whole_samples_are_dropped(good: GoodCall) -> None:
    client = await bad_client(good)
    conversation = str(uuid.uuid4())
    try:
        await client.open(conversation, [L16_STEREO])
        pts: list[int] = []
        good.server.state.node.calls.local[conversation].agent.taps.append(  # type: ignore[index]
            lambda _leg, packet: pts.append(packet.pts)
        )
        rejected = good.counters.rejected_frames
        for size in (1, 3, 5, 1601, 3202):  # stereo L16 frames are multiples of 4 bytes
            await client.send_raw(b"\x01" * size)
        await client.send_frame(b"\x00\x10" * 2 * 1600)  # then a good 200 ms frame
        await client.send("ping")
        await client.expect("pong")
        assert good.counters.rejected_frames == rejected + 5
        await wait_for(lambda: len(pts) == 10, 30, "the good frame's ten packets")
        assert pts == list(range(0, 1600, 160))
    finally:
        await client.aclose()
    await good.still_heard("odd-length L16 frames")


async def test_unknown_message_types_are_ignored(good: GoodCall) -> None:
    client = await bad_client(good)
    try:
        await client.open(str(uuid.uuid4()))
        ignored = good.counters.ignored_messages
        await client.send("dance", {"steps": 3})
        await client.send("event", {"entities": []})
        await client.send("ping")
        pong = await client.expect("pong")
        assert pong["clientseq"] == 4
        assert good.counters.ignored_messages == ignored + 2
        await client.close()
    finally:
        await client.aclose()
    await good.still_heard("unknown message types")


async def test_bad_parameters_are_disconnected(good: GoodCall) -> None:
    cases = [
        ("open", {"organizationId": "not-a-uuid", "conversationId": str(uuid.uuid4()), "media": []}, "UUID"),
        ("open", {"organizationId": str(uuid.uuid4()), "conversationId": str(uuid.uuid4()), "media": "PCMU"}, "media"),
        ("discarded", {"start": "yesterday", "discarded": "PT1S"}, "duration"),
    ]
    for kind, parameters, words in cases:
        client = await bad_client(good)
        try:
            if kind != "open":
                await client.open(str(uuid.uuid4()))
            await client.send(kind, parameters)
            await expect_disconnect(client, words)
        finally:
            await client.aclose()
        await good.still_heard(f"bad {kind} parameters")


async def test_a_client_that_never_closes_is_cut_off(good: GoodCall) -> None:
    client = await bad_client(good)
    client.auto_close_on_disconnect = False
    try:
        await client.send_raw("{")
        await client.expect("disconnect")
        # the server waits CLOSE_WAIT_S for close, then closes the socket itself
        await wait_for(lambda: client.closed_by_server.is_set(), 30, "the server to cut the client off")
        assert client.ws is not None and client.ws.close_code == 4408
    finally:
        await client.aclose()
    await good.still_heard("a client that never closed")

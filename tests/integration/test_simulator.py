"""CallSimulator against a real aiohttp WebSocket server that records what arrives."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from live.demo.simulator import CallSimulator, payload_frames
from live.demo.voices import load_clip
from live.ingest.twilio import Media, Start, Stop, parse_message
from tests.support.wait import wait_for

HEX32 = "[0-9a-f]{32}"


@dataclass
class Connection:
    headers: dict[str, str]
    texts: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    closed: bool = False

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.texts]

    def media(self, track: str) -> list[dict[str, Any]]:
        return [
            m["media"]
            for m in self.messages
            if m["event"] == "media" and m["media"]["track"] == track
        ]


@dataclass
class Recorder:
    """A WebSocket endpoint that keeps every text message per connection."""

    url: str
    connections: list[Connection]
    close_with: int | None = None  # close each socket with this code right after ``start``

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        await wait_for(predicate, timeout, what, every=0.01)

    def started(self, count: int) -> bool:
        """At least ``count`` connections, each past its ``start`` message."""
        return len(self.connections) >= count and all(
            len(c.texts) >= 2 for c in self.connections
        )


async def _serve(sock: socket.socket | None = None) -> tuple[web.AppRunner, Recorder]:
    recorder = Recorder("", [])

    async def ingest(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(dict(request.headers))
        recorder.connections.append(connection)
        loop = asyncio.get_running_loop()
        async for message in ws:
            connection.texts.append(message.data)
            connection.arrived.append(loop.time())
            if recorder.close_with is not None and '"event": "start"' in message.data:
                await ws.close(code=recorder.close_with)
        connection.closed = True
        return ws

    app = web.Application()
    app.router.add_get("/ingest/twilio", ingest)
    runner = web.AppRunner(app)
    await runner.setup()
    if sock is None:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    else:
        await web.SockSite(runner, sock).start()
    bound = runner.addresses[0][1]
    recorder.url = f"ws://127.0.0.1:{bound}/ingest/twilio"
    return runner, recorder


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    runner, recorder = await _serve()
    yield recorder
    await runner.cleanup()


async def test_one_call_sends_a_twilio_fork_in_order(server: Recorder) -> None:
    simulator = CallSimulator(server.url, calls=1, min_length_s=60, max_length_s=60)
    await simulator.start()
    await server.wait_for(
        lambda: server.started(1) and len(server.connections[0].media("inbound")) >= 50,
        "a second of media on both tracks",
    )
    await simulator.aclose()
    await server.wait_for(lambda: server.connections[0].closed, "the call to close")

    [connection] = server.connections
    messages = connection.messages
    assert [m["event"] for m in messages[:2]] == ["connected", "start"]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert messages[-1]["event"] == "stop"
    assert {m["event"] for m in messages[2:-1]} == {"media"}

    start = messages[1]["start"]
    assert re.fullmatch("CA" + HEX32, start["callSid"])
    assert re.fullmatch("MZ" + HEX32, start["streamSid"])
    assert re.fullmatch("AC" + HEX32, start["accountSid"])
    assert start["tracks"] == ["inbound", "outbound"]
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["customParameters"] == {
        "agent": "agent-1",
        "consent": "granted",
        "queue": "billing",
    }
    assert messages[-1]["stop"] == {"accountSid": start["accountSid"], "callSid": start["callSid"]}
    assert all(m["streamSid"] == start["streamSid"] for m in messages[1:])

    # sequenceNumber counts every message after ``connected``, as a JSON string.
    assert [m["sequenceNumber"] for m in messages[1:]] == [str(n) for n in range(1, len(messages))]

    agent_frames = payload_frames(load_clip("call1-agent"))
    caller_frames = payload_frames(load_clip("call1-caller"))
    for track, frames in (("outbound", agent_frames), ("inbound", caller_frames)):
        media = connection.media(track)
        assert len(media) >= 50  # 50 per second per track
        assert [m["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
        assert [m["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
        assert all(len(base64.b64decode(m["payload"])) == 160 for m in media)
        assert [m["payload"] for m in media] == list(frames[: len(media)])
    assert len(connection.media("outbound")) == len(connection.media("inbound"))

    # What the server's own parser makes of it.
    parsed = [parse_message(t) for t in connection.texts[1:]]
    assert isinstance(parsed[0], Start) and parsed[0].custom_parameters["agent"] == "agent-1"
    assert isinstance(parsed[-1], Stop)
    assert all(isinstance(p, Media) and len(p.payload) == 160 for p in parsed[1:-1])
    assert simulator.calls_started == 1 and simulator.failures == 0


async def test_pacing_follows_the_clock_and_catches_up_after_a_stall(server: Recorder) -> None:
    loop = asyncio.get_running_loop()
    async with CallSimulator(server.url, calls=1, min_length_s=60, max_length_s=60) as simulator:
        await server.wait_for(lambda: server.started(1), "the call to start")
        connection = server.connections[0]
        began = connection.arrived[1]
        await server.wait_for(lambda: connection.media("outbound"), "the first frame")
        time.sleep(0.25)  # noqa: ASYNC251 - stall the loop on purpose
        stalled_until = loop.time()
        # Every frame due during the stall is sent afterwards, none skipped...
        due = int((stalled_until - began) / 0.020)
        await server.wait_for(
            lambda: len(connection.media("outbound")) >= due, f"the {due} frames due by the stall"
        )
        assert simulator.frames_skipped == 0
        # ...and never ahead of the clock (slack for the start message's own delivery).
        sent, elapsed = len(connection.media("outbound")), loop.time() - began
        assert sent <= elapsed / 0.020 + 25, (sent, elapsed)


async def test_three_lines_for_the_three_demo_agents(server: Recorder) -> None:
    async with CallSimulator(server.url, min_length_s=60, max_length_s=60):
        await server.wait_for(
            lambda: (
                len(server.connections) == 3 and all(len(c.texts) > 10 for c in server.connections)
            ),
            "three calls streaming",
        )
    starts = sorted(
        (c.messages[1]["start"] for c in server.connections),
        key=lambda s: s["customParameters"]["agent"],
    )
    assert [s["customParameters"] for s in starts] == [
        {"agent": "agent-1", "consent": "granted", "queue": "billing"},
        {"agent": "agent-2", "consent": "unknown", "queue": "support"},
        {"agent": "agent-3", "consent": "granted", "queue": "sales"},
    ]
    assert len({s["callSid"] for s in starts}) == 3
    await server.wait_for(lambda: all(c.closed for c in server.connections), "the calls to close")
    assert all(c.messages[-1]["event"] == "stop" for c in server.connections)


async def test_a_finished_call_is_followed_by_a_new_one_for_the_same_agent(
    server: Recorder,
) -> None:
    simulator = CallSimulator(server.url, calls=1, min_length_s=0.3, max_length_s=0.3, pause_s=0.05)
    async with simulator:
        await server.wait_for(lambda: server.started(3), "three calls, one after the other")
    await server.wait_for(lambda: all(c.closed for c in server.connections), "the calls to close")
    sids = [c.messages[1]["start"]["callSid"] for c in server.connections]
    assert len(set(sids)) == len(sids)
    assert {c.messages[1]["start"]["customParameters"]["agent"] for c in server.connections} == {
        "agent-1"
    }
    for connection in server.connections[:2]:  # ended by the simulator: stop after 15 ticks
        assert connection.messages[-1]["event"] == "stop"
        assert len(connection.media("inbound")) == 15
    assert simulator.calls_completed >= 2


async def test_headers_go_on_the_handshake(server: Recorder) -> None:
    async with CallSimulator(server.url, calls=1, headers={"X-Live-Ingest-Secret": "s3cret"}):
        await server.wait_for(lambda: bool(server.connections), "a connection")
    assert server.connections[0].headers["X-Live-Ingest-Secret"] == "s3cret"


async def test_retries_until_the_server_is_up() -> None:
    # A port that is ours but not listening yet: connections to it are refused until the
    # server starts on this very socket.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/ingest/twilio"
    async with CallSimulator(url, calls=1, retry_initial_s=0.05, retry_max_s=0.1) as simulator:
        try:
            await wait_for(lambda: simulator.failures >= 2, 30, "two refused attempts")
            assert simulator.calls_started == 0
        except BaseException:
            sock.close()
            raise
        runner, recorder = await _serve(sock)
        try:
            await recorder.wait_for(
                lambda: bool(recorder.connections) and len(recorder.connections[0].texts) >= 3,
                "the call once the server is up",
            )
        finally:
            await simulator.aclose()
            await runner.cleanup()
    assert recorder.connections[0].messages[1]["event"] == "start"


async def test_a_server_that_closes_the_call_is_retried_not_fatal(server: Recorder) -> None:
    server.close_with = 4401
    async with CallSimulator(
        server.url, calls=1, retry_initial_s=0.05, retry_max_s=0.1
    ) as simulator:
        await server.wait_for(
            lambda: len(server.connections) >= 3
            and all(any('"event": "start"' in t for t in c.texts) for c in server.connections)
            and simulator.failures >= 2,
            "three calls closed by the server after their start",
        )
        first = server.connections[:3]
    await server.wait_for(lambda: all(c.closed for c in first), "the three calls to close")
    assert all(c.messages[-1]["event"] == "start" for c in first)


async def test_aclose_leaves_no_tasks_and_can_repeat(server: Recorder) -> None:
    before = asyncio.all_tasks()
    simulator = CallSimulator(server.url, calls=3)
    await simulator.aclose()  # before start: nothing to do
    await simulator.start()
    await server.wait_for(lambda: len(server.connections) == 3, "three calls")
    with pytest.raises(RuntimeError):
        await simulator.start()
    await simulator.aclose()
    await simulator.aclose()
    assert asyncio.all_tasks() == before
    # No task of the simulator is left, so nothing can be sent after aclose.
    await server.wait_for(lambda: all(c.closed for c in server.connections), "the calls to close")


async def test_a_one_second_call_ends_with_stop(server: Recorder) -> None:
    simulator = CallSimulator(server.url, calls=1, min_length_s=1.0, max_length_s=1.0)
    try:
        await simulator.start()
        await server.wait_for(
            lambda: server.connections and server.connections[0].closed, "the first call to end"
        )
    finally:
        await simulator.aclose()
    received = server.connections[0].messages
    events = [m["event"] for m in received]
    assert events[:2] == ["connected", "start"]
    assert events[-1] == "stop"
    start = received[1]["start"]
    assert start["tracks"] == ["inbound", "outbound"]
    assert start["customParameters"]["agent"] == "agent-1"
    for track in ("inbound", "outbound"):
        frames = server.connections[0].media(track)
        assert 45 <= len(frames) <= 51  # 1 s at 50 packets/s
        assert all(isinstance(m["timestamp"], str) and isinstance(m["chunk"], str) for m in frames)
        assert all(len(base64.b64decode(m["payload"])) == 160 for m in frames)

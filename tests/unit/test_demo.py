"""Demo clips and the call simulator (against a recording WebSocket server)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from aiohttp import web

from live.demo.simulator import CallSimulator
from live.demo.voices import demo_calls, load_clip, parse_mulaw_wav
from live.errors import ConfigError
from tests.support.g711 import rms
from tests.support.server import free_port


def test_every_clip_is_speech_and_legs_alternate() -> None:
    for call in demo_calls():
        agent, caller = load_clip(call.agent_clip), load_clip(call.caller_clip)
        assert len(agent) > 8000 * 8 and len(agent) == len(caller)
        assert agent != caller
        windows = range(0, len(agent) - 1600, 1600)  # 200 ms
        loud_agent = [rms(agent[i : i + 1600]) > 0.02 for i in windows]
        loud_caller = [rms(caller[i : i + 1600]) > 0.02 for i in windows]
        assert sum(loud_agent) > len(loud_agent) / 5
        assert sum(loud_caller) > len(loud_caller) / 5
        overlap = sum(a and c for a, c in zip(loud_agent, loud_caller))
        assert overlap <= len(loud_agent) / 20, "agent and caller should take turns"


def test_bad_wav_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not a RIFF"):
        parse_mulaw_wav(b"nonsense")
    with pytest.raises(ConfigError):
        load_clip("no-such-clip")


async def test_simulator_sends_twilio_fork_messages() -> None:
    received: list[dict[str, object]] = []

    async def ingest(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            received.append(json.loads(message.data))
        return ws

    app = web.Application()
    app.router.add_get("/ingest/twilio", ingest)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    simulator = CallSimulator(f"ws://127.0.0.1:{port}/ingest/twilio", calls=1, min_length_s=1.0, max_length_s=1.0)
    try:
        await simulator.start()
        await asyncio.sleep(1.4)
    finally:
        await simulator.aclose()
        await runner.cleanup()
    events = [m["event"] for m in received]
    assert events[:2] == ["connected", "start"]
    assert "stop" in events
    start = received[1]["start"]
    assert isinstance(start, dict)
    assert start["tracks"] == ["inbound", "outbound"]
    assert start["customParameters"]["agent"] == "agent-1"
    media = [m["media"] for m in received if m["event"] == "media"]
    by_track = {t: [m for m in media if m["track"] == t] for t in ("inbound", "outbound")}  # type: ignore[index]
    for frames in by_track.values():
        assert 45 <= len(frames) <= 51  # 1 s at 50 packets/s
        assert all(isinstance(m["timestamp"], str) and isinstance(m["chunk"], str) for m in frames)  # type: ignore[index]
        assert all(len(base64.b64decode(m["payload"])) == 160 for m in frames)  # type: ignore[index]

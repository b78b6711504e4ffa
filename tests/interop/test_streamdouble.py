"""Interop: ``streamdouble`` (a Twilio Media Streams simulator we did not write) feeds a call."""

from __future__ import annotations

import asyncio
import math
import shutil
import struct
import sys
import wave
from pathlib import Path

import aiohttp
import pytest

from tests.support.listener import Listener
from tests.support.server import running_server

pytestmark = pytest.mark.interop


def write_tone(path: Path, freq: float, amplitude: float, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / 8000)))
                for i in range(int(8000 * seconds))
            )
        )


def streamdouble() -> str:
    found = shutil.which("streamdouble") or str(Path(sys.executable).with_name("streamdouble"))
    assert Path(found).exists(), "streamdouble is a test prerequisite (pip install -e '.[test]')"
    return found


async def roster(server, token: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}) as r:
            return list((await r.json())["calls"])


async def test_streamdouble_fork_is_heard_on_both_legs(tmp_path: Path) -> None:
    write_tone(tmp_path / "agent.wav", 440, 0.5, 8)
    write_tone(tmp_path / "caller.wav", 880, 0.08, 8)
    async with running_server(tmp_path / "data") as server:
        process = await asyncio.create_subprocess_exec(
            streamdouble(), "call", server.twilio_url,
            "--audio", str(tmp_path / "caller.wav"),
            "--fork", "--track", "both", "--agent-audio", str(tmp_path / "agent.wav"),
            "--param", "agent=agent-7", "--param", "consent=granted", "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        token = server.tokens["sup"]
        calls: list[dict[str, object]] = []
        for _ in range(100):
            calls = await roster(server, token)
            if calls:
                break
            await asyncio.sleep(0.05)
        assert len(calls) == 1 and calls[0]["agent_id"] == "agent-7"
        assert calls[0]["consent"] == "granted"
        listener = Listener(server.base_url, token)
        try:
            await listener.listen(str(calls[0]["call_id"]))
            await listener.wait_frames(100, timeout=10)
            agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
            assert agent > 0.2, agent
            assert 0.01 < caller < agent / 2, (agent, caller)
        finally:
            output, _ = await asyncio.wait_for(process.communicate(), 30)
            await listener.close()
        assert process.returncode == 0, output.decode()
        for _ in range(100):
            if not await roster(server, token):
                break
            await asyncio.sleep(0.05)
        assert await roster(server, token) == []
        ended = await server.state.monitor.ledger.entries(kind="listen.ended")
        assert [e.fields["reason"] for e in ended] == ["call-ended"]

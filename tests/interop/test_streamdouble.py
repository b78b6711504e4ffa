"""Interop: ``streamdouble`` (a Twilio Media Streams simulator we did not write) feeds a call.

streamdouble plays a ``<Start><Stream track="both_tracks">`` fork: the caller's WAV on the
``inbound`` track, the agent's on ``outbound``, paced in real time, then ``stop``. A fork
gets no audio back, and streamdouble knows it: no ``--allow-no-audio`` is needed for a clean
exit, and any protocol violation it saw would make it exit non-zero.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import struct
import sys
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.interop

SECONDS = 6
FRAMES_PER_LEG = SECONDS * 50  # 20 ms frames


def write_tone(path: Path, freq: float, amplitude: float, seconds: float) -> None:
    """A sine tone as an 8 kHz, 16-bit mono PCM WAV file."""
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


async def roster(server: RunningServer, token: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/api/calls", headers=headers) as response,
    ):
        assert response.status == 200
        return list((await response.json())["calls"])


async def test_streamdouble_fork_is_heard_on_both_legs(tmp_path: Path) -> None:
    write_tone(tmp_path / "agent.wav", 440, 0.5, SECONDS)
    write_tone(tmp_path / "caller.wav", 880, 0.08, SECONDS)
    async with running_server(tmp_path / "data") as server:
        node = server.state.node
        process = await asyncio.create_subprocess_exec(
            streamdouble(),
            "call",
            server.twilio_url,
            "--audio",
            str(tmp_path / "caller.wav"),
            "--fork",
            "--track",
            "both",
            "--agent-audio",
            str(tmp_path / "agent.wav"),
            "--param",
            "agent=agent-7",
            "--param",
            "consent=granted",
            "--quiet",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            token = server.tokens["sup"]
            calls = await wait_for(lambda: roster(server, token), 30, "streamdouble's call")
            assert len(calls) == 1, calls
            call = calls[0]
            assert call["agent_id"] == "agent-7" and call["consent"] == "granted"
            assert call["source"] == "twilio" and call["codec"] == "PCMU"
            media = node.calls.local[call["call_id"]]

            await listener.listen(str(call["call_id"]))
            await listener.wait_frames(100)
            assert process.returncode is None, (
                "streamdouble ended before the listener heard 100 frames"
            )
            agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
            assert agent > 0.2, agent  # outbound is the agent: the loud 440 Hz tone
            assert 0.02 < caller < agent / 3, (agent, caller)  # inbound is the caller

            stdout, stderr = await asyncio.wait_for(process.communicate(), SECONDS + 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await listener.close()

        assert process.returncode == 0, (stdout.decode(), stderr.decode())
        report = json.loads(stdout)
        assert report["violations"] == [] and report["exit_code"] == 0
        assert report["frames_sent"] == 2 * FRAMES_PER_LEG  # both tracks
        assert report["closed_early"] is False
        # Every 20 ms frame streamdouble sent became exactly one packet on its leg.
        assert (media.agent.received, media.caller.received) == (FRAMES_PER_LEG, FRAMES_PER_LEG)
        assert server.state.ingest.rejected_frames == 0
        assert server.state.ingest.protocol_errors == 0

        # streamdouble's stop ended the call, and the listen session with it.
        async def roster_empty() -> bool:
            return await roster(server, server.tokens["sup"]) == []

        await wait_for(roster_empty, 30, "the call to leave the roster")
        assert not node.calls.local and not node.listens.sessions
        ended = await node.ledger.entries(kind="listen.ended")
        assert [e.fields["reason"] for e in ended] == ["call-ended"]


async def test_streamdouble_split_streams_are_one_call_with_both_legs(tmp_path: Path) -> None:
    """Two streamdouble forks with one ``callSid``: ``inbound`` alone and ``outbound`` alone,
    as a Twilio flow with ``<Stream track="inbound_track">`` and ``<Stream track="outbound_track">``.

    The command line draws a fresh ``callSid`` per run, so the two sessions come from
    streamdouble's own Python API (``Session`` with a shared ``StreamIdentity``): its framing,
    pacing and counters, not ours."""
    from streamdouble.audio import wav_to_ulaw_frames
    from streamdouble.protocol import StreamIdentity
    from streamdouble.session import Session, SessionConfig

    write_tone(tmp_path / "agent.wav", 440, 0.5, SECONDS)
    write_tone(tmp_path / "caller.wav", 880, 0.08, SECONDS)
    call_sid = "CA" + "5" * 32
    params = {"agent": "agent-8", "consent": "granted"}
    inbound = Session(
        "",
        wav_to_ulaw_frames(tmp_path / "caller.wav"),
        config=SessionConfig(fork=True, tracks=["inbound"], custom_parameters=params),
        identity=StreamIdentity(call_sid=call_sid),
    )
    outbound = Session(
        "",
        [],  # nothing on the inbound track: this stream carries the agent only
        config=SessionConfig(
            fork=True,
            tracks=["outbound"],
            agent_frames=wav_to_ulaw_frames(tmp_path / "agent.wav"),
            custom_parameters=params,
        ),
        identity=StreamIdentity(call_sid=call_sid),
    )
    async with running_server(tmp_path / "data") as server:
        node = server.state.node
        inbound.url = outbound.url = server.twilio_url
        runs = [asyncio.create_task(inbound.run())]
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_for(lambda: call_sid in node.calls.roster.calls, 30, "the call")
            runs.append(asyncio.create_task(outbound.run()))
            await wait_for(
                lambda: node.calls.roster.calls[call_sid].legs == ("agent", "caller"),
                30,
                "both legs",
            )
            [call] = await roster(server, server.tokens["sup"])
            assert call["call_id"] == call_sid and call["legs"] == ["agent", "caller"]
            media = node.calls.local[call_sid]

            answer = await listener.listen(call_sid)
            assert [(x["leg"], x["available"]) for x in answer["legs"]] == [("agent", True), ("caller", True)]
            await listener.wait_frames(100)
            assert not any(run.done() for run in runs), "streamdouble ended before 100 frames were heard"
            agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
            assert agent > 0.2, agent
            assert 0.02 < caller < agent / 3, (agent, caller)
            results = await asyncio.wait_for(asyncio.gather(*runs), SECONDS + 30)
        finally:
            for run in runs:
                run.cancel()
            await listener.close()

        for result in results:
            assert result.violations == [] and not result.closed_early, result
        assert results[0].frames_sent == FRAMES_PER_LEG and results[1].outbound_frames_sent == FRAMES_PER_LEG
        assert (media.agent.received, media.caller.received) == (FRAMES_PER_LEG, FRAMES_PER_LEG)
        assert server.state.ingest.rejected_frames == 0 and server.state.ingest.protocol_errors == 0
        # The last stream's stop ended the call, and the listen with it.
        await wait_for(lambda: not node.calls.local and not node.listens.sessions, 30, "the call's end")
        [started] = await node.ledger.entries(kind="listen.started")
        assert started.fields["legs"] == ["agent", "caller"]
        ended = await node.ledger.entries(kind="listen.ended")
        assert [e.fields["reason"] for e in ended] == ["call-ended"]


async def test_streamdouble_one_track_fork_marks_the_agent_leg_not_sent(tmp_path: Path) -> None:
    """``streamdouble call --fork --track inbound``: the caller only, so the agent leg is
    reported as not sent and the ledger records only the caller as heard."""
    write_tone(tmp_path / "caller.wav", 880, 0.3, SECONDS)
    async with running_server(tmp_path / "data") as server:
        node = server.state.node
        process = await asyncio.create_subprocess_exec(
            streamdouble(), "call", server.twilio_url, "--audio", str(tmp_path / "caller.wav"),
            "--fork", "--track", "inbound", "--param", "agent=agent-9", "--param", "consent=granted",
            "--quiet", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_for(lambda: len(node.calls.roster.calls) == 1, 30, "the call")
            [call] = await roster(server, server.tokens["sup"])
            assert call["legs"] == ["caller"]
            answer = await listener.listen(str(call["call_id"]))
            legs = {x["leg"]: (x["available"], x["reason"]) for x in answer["legs"]}
            assert legs == {"agent": (False, "not_sent"), "caller": (True, None)}
            await listener.wait_frames(50, legs=("caller",))
            assert listener.stats["caller"].level() > 0.1 and listener.stats["agent"].frames == 0
            stdout, stderr = await asyncio.wait_for(process.communicate(), SECONDS + 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await listener.close()
        assert process.returncode == 0, (stdout.decode(), stderr.decode())
        assert json.loads(stdout)["violations"] == []
        [started] = await node.ledger.entries(kind="listen.started")
        assert started.fields["legs"] == ["caller"]

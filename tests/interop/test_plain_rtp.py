"""Interop: plain RTP from GStreamer and ffmpeg (senders we did not write), announced over the API.

A call is announced with ``POST /api/ingest/rtp/calls``; the answer names one UDP port per
leg. GStreamer (``rtppcmupay``/``rtppcmapay ! udpsink``) and ffmpeg (``-f rtp``) then send
each leg in real time, the agent loud and the caller quiet, and a supervisor's listener must
hear exactly that. ``DELETE`` ends the call; so does silence longer than ``rtp_timeout_s``.

ffmpeg is run as people run it, without ``pkt_size``: its packets carry whatever its audio
frames hold (not 20 ms), which the server must take as they come.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.interop.test_siprec_sipp import metric, metrics, roster
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.pcap import PCMU, rtp_stream
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.interop

SECONDS = 5
GST = shutil.which("gst-launch-1.0") or "/usr/bin/gst-launch-1.0"
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"


async def announce(server: RunningServer, call_id: str, codec: str = "PCMU") -> dict[str, Any]:
    body = {"call_id": call_id, "agent_id": "agent-7", "queue": "billing", "consent": "granted", "codec": codec}
    async with aiohttp.ClientSession() as http, http.post(f"{server.base_url}/api/ingest/rtp/calls", json=body) as response:
        answer = await response.json()
        assert response.status == 201, answer
    assert answer["call_id"] == call_id and answer["codec"] == codec, answer
    assert set(answer["ports"]) == {"agent", "caller"}, answer
    return dict(answer)


async def end_call(server: RunningServer, call_id: str) -> int:
    async with aiohttp.ClientSession() as http, http.delete(f"{server.base_url}/api/ingest/rtp/calls/{call_id}") as response:
        return response.status


def gstreamer(port: int, freq: int, volume: float, codec: str) -> list[str]:
    """A live 8 kHz sine, G.711-encoded, payloaded in 20 ms packets, sent to ``port``."""
    encoder, payloader, pt = ("mulawenc", "rtppcmupay", 0) if codec == "PCMU" else ("alawenc", "rtppcmapay", 8)
    return [
        GST, "-q",
        "audiotestsrc", "is-live=true", f"freq={freq}", f"volume={volume}", "samplesperbuffer=160",
        f"num-buffers={SECONDS * 50}", "!",
        "audioconvert", "!", "audioresample", "!", "audio/x-raw,rate=8000,channels=1", "!",
        encoder, "!", payloader, f"pt={pt}", "min-ptime=20000000", "max-ptime=20000000", "!",
        "udpsink", "host=127.0.0.1", f"port={port}",
    ]  # fmt: skip


def ffmpeg(port: int, freq: int, volume: float) -> list[str]:
    """``-re`` paces the lavfi sine (amplitude 1/8 before ``volume``) to real time."""
    return [
        FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={SECONDS}",
        "-af", f"volume={volume}", "-ar", "8000", "-ac", "1", "-acodec", "pcm_mulaw",
        "-f", "rtp", f"rtp://127.0.0.1:{port}",
    ]  # fmt: skip


async def run_senders(commands: list[list[str]]) -> None:
    """Run the senders side by side; each must exit 0 within a bound."""
    processes = [
        await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for argv in commands
    ]
    try:
        results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), SECONDS + 30)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for argv, process, (out, err) in zip(commands, processes, results):
        assert process.returncode == 0, (argv[0], process.returncode, out.decode(), err.decode())


async def listen_connected(server: RunningServer, call_id: str) -> Listener:
    listener = Listener(server.base_url, server.tokens["sup"])
    await listener.listen(call_id)
    await wait_for(lambda: listener.pc.connectionState == "connected", 30, "the listener to connect")
    return listener


async def hear_both_legs(listener: Listener, senders: list[list[str]]) -> tuple[float, float]:
    """Start the senders, wait until 100 frames per leg are heard, return the levels."""
    sending = asyncio.create_task(run_senders(senders))
    try:
        await listener.wait_frames(100, timeout=SECONDS + 15)
        levels = listener.stats["agent"].level(), listener.stats["caller"].level()
        await sending
    finally:
        if not sending.done():
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    return levels


async def ends_with_the_call(server: RunningServer, listener: Listener) -> None:
    await wait_for(lambda: _no_calls(server), 30, "the call to leave the roster")
    assert not server.state.node.listens.sessions
    session = await server.state.node.ledger.entries(session_id=listener.session_id)
    assert [(e.kind, e.fields.get("reason")) for e in session] == [("listen.started", None), ("listen.ended", "call-ended")]


async def _no_calls(server: RunningServer) -> bool:
    return not await roster(server, server.tokens["sup"])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_gstreamer_rtp_is_heard_and_delete_ends_the_call(tmp_path: Path, codec: str) -> None:
    async with running_server(tmp_path / "data") as server:
        answer = await announce(server, f"gst-{codec}", codec)
        assert answer["address"] == "127.0.0.1"
        calls = await roster(server, server.tokens["sup"])
        assert [(c["call_id"], c["source"], c["codec"], c["agent_id"]) for c in calls] == [
            (f"gst-{codec}", "rtp", codec, "agent-7")
        ]
        listener = await listen_connected(server, f"gst-{codec}")
        try:
            assert f"{codec}/8000" in listener.answer["sdp"]
            agent, caller = await hear_both_legs(
                listener,
                [gstreamer(answer["ports"]["agent"], 440, 0.6, codec), gstreamer(answer["ports"]["caller"], 660, 0.06, codec)],
            )
            assert agent > 0.3, (agent, caller)
            assert 0.02 < caller < agent / 4, (agent, caller)
            text = await metrics(server)
            assert metric(text, 'live_rtp_received_total{source="rtp",leg="agent"}') >= 100, text
            assert metric(text, "live_rtp_bad_total") == 0, text

            assert await end_call(server, f"gst-{codec}") == 204
            await ends_with_the_call(server, listener)
            assert await end_call(server, f"gst-{codec}") == 404
        finally:
            await listener.close()


async def test_ffmpeg_rtp_is_heard_on_both_legs(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        answer = await announce(server, "ffmpeg-1")
        listener = await listen_connected(server, "ffmpeg-1")
        try:
            agent, caller = await hear_both_legs(
                listener,
                [ffmpeg(answer["ports"]["agent"], 440, 4.0), ffmpeg(answer["ports"]["caller"], 660, 0.4)],
            )
            assert agent > 0.2, (agent, caller)
            assert 0.02 < caller < agent / 4, (agent, caller)
            assert await end_call(server, "ffmpeg-1") == 204
            await ends_with_the_call(server, listener)
        finally:
            await listener.close()


async def test_a_call_whose_rtp_stops_ends_after_the_timeout(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", rtp_timeout_s=2) as server:
        answer = await announce(server, "silent-1")
        port = answer["ports"]["agent"]
        packets = rtp_stream(tone(440, 1.0, 0.5), PCMU, ssrc=0x5EED)
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            start = loop.time()
            for index, packet in enumerate(packets):  # paced like a phone: one per 20 ms
                sock.sendto(packet, ("127.0.0.1", port))
                await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))

        async def received() -> float:
            return metric(await metrics(server), 'live_rtp_received_total{source="rtp",leg="agent"}')

        assert await wait_for(received, 30, "the server to count the packets") > 0
        # The RTP has stopped: the call ends by itself, within the timeout plus a sweep.
        await wait_for(lambda: _no_calls(server), 30, "the silent call to end after rtp_timeout_s=2")
        assert not server.state.node.calls.local
        text = await metrics(server)
        assert metric(text, 'live_rtp_calls{source="rtp"}') == 0, text
        assert metric(text, "live_rtp_ports_in_use") == 0, text
        assert await end_call(server, "silent-1") == 404

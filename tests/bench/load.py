"""The listener load generator: N aiortc peers that count SRTP packets without decoding them.

Each listener is a real ``RTCPeerConnection`` with two receive-only PCMU transceivers (agent,
caller) that completes ICE and DTLS with the server. Once DTLS is up, received SRTP packets
are taken off the wire in aioice's ``datagram_received``: unprotected with the session's own
libsrtp keys (so authentication and decryption really happen), the RTP header is skipped and
the payload marker (``marker.py``) read; no jitter buffer, no decoder, no asyncio queue hop.
Everything else (STUN consent checks, DTLS, RTCP) takes aiortc's normal path. That keeps the
generator several times cheaper per packet than a server, which the orchestrator checks.

Driven by ``run.py`` over stdin/stdout, one JSON object per line:
``{"cmd": "grow", "n": N}`` (optionally ``"calls": [id, …]``: listener i listens to call i,
else every listener to ``--call``), ``{"cmd": "shrink", "n": N}``, ``{"cmd": "reset"}`` (start
recording), ``{"cmd": "stats", "t0": ns, "t1": ns}`` (figures for packets *sent* between t0
and t1, monotonic clock), ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

from tests.bench.loopback import loopback_only
from tests.bench.marker import LEG_BASE, MARKER_LEN, decode_marker

loopback_only()

import aiohttp
import aioice.ice
import numpy
import pylibsrtp
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

CONNECT_TIMEOUT_S = 20.0
FIRST_PACKET_TIMEOUT_S = 10.0

FastPath = Callable[[bytes, int], bool]


class PacketCounter:
    """Per-stream packet counts, and (while recording) every packet's arrival and marker."""

    def __init__(self) -> None:
        self.counts: list[int] = []  # index: listener * 2 + leg
        # While recording, one entry per packet in three flat buffers: no GC-tracked object
        # per packet, so the collector never pauses this process mid-window.
        self.streams = array("i")
        self.arrivals = array("q")
        self.markers = bytearray()  # MARKER_LEN - 1 bytes per packet
        self.recording = False
        self.unprotect_errors = 0
        self.foreign = 0  # payloads without our marker (e.g. gated to silence)

    def clear(self) -> None:
        """Empty the buffers in place: the fast paths hold references to them."""
        del self.streams[:]
        del self.arrivals[:]
        del self.markers[:]

    def add_listener(self) -> int:
        self.counts += [0, 0]
        return len(self.counts) - 2

    def fast_path(self, dtls: Any, base: int) -> FastPath:
        """The per-connection SRTP receive path: ``True`` when it consumed the datagram."""
        counts = self.counts
        streams, arrivals, markers = self.streams, self.arrivals, self.markers
        error = pylibsrtp.Error

        def receive(data: bytes, arrival_ns: int) -> bool:
            session = dtls._rx_srtp
            if session is None:
                return False
            try:
                plain = session.unprotect(data)
            except error:
                self.unprotect_errors += 1
                return True
            first = plain[0]
            offset = 12 + ((first & 0x0F) << 2)  # fixed header + CSRCs (RFC 3550 §5.1)
            if first & 0x10:  # header extension: 4-byte header + length words (§5.3.1)
                offset += 4 + (((plain[offset + 2] << 8) | plain[offset + 3]) << 2)
            leg = plain[offset] - LEG_BASE
            if leg != 0 and leg != 1:
                self.foreign += 1
                return True
            counts[base + leg] += 1
            if self.recording:
                streams.append(base + leg)
                arrivals.append(arrival_ns)
                markers.extend(plain[offset + 1 : offset + MARKER_LEN])
            return True

        return receive


def install_fast_path() -> None:
    """Route SRTP (not SRTCP) datagrams of connections that have a fast path straight to it."""
    original = aioice.ice.StunProtocol.datagram_received
    now = time.monotonic_ns

    def datagram_received(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        arrival_ns = now()
        # RFC 7983 demultiplexing: 128-191 is RTP/RTCP; RTCP packet types 192-223 (RFC 5761).
        if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
            receive = getattr(self.receiver, "bench_fast_path", None)
            if receive is not None and receive(data, arrival_ns):
                return
        original(self, data, addr)

    aioice.ice.StunProtocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]


class LoopLag:
    """How late this process's event loop runs a 5 ms timer: arrival times are only as good."""

    PERIOD_S = 0.005
    SLACK_NS = 10_000_000  # shorter lags are jitter: they cannot move a 40 ms p99

    def __init__(self) -> None:
        self.worst_ns = 0
        self.stalled_ns = 0  # total lag beyond the slack
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="loop-lag")

    async def _run(self) -> None:
        period_ns = int(self.PERIOD_S * 1e9)
        while True:
            before = time.monotonic_ns()
            await asyncio.sleep(self.PERIOD_S)
            lag = time.monotonic_ns() - before - period_ns
            self.worst_ns = max(self.worst_ns, lag)
            if lag > self.SLACK_NS:
                self.stalled_ns += lag - self.SLACK_NS

    def take(self) -> tuple[float, float]:
        """The worst lag and the total stalled time since the last call, in ms."""
        worst, stalled = self.worst_ns, self.stalled_ns
        self.worst_ns = self.stalled_ns = 0
        return round(worst / 1e6, 2), round(stalled / 1e6, 2)

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class Listener:
    def __init__(self, index: int, base: int, call_id: str) -> None:
        self.index = index
        self.base = base  # first stream index of this listener
        self.call_id = call_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.session_id: str | None = None
        self.connected = asyncio.Event()
        self.failed = False

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()
            elif self.pc.connectionState in ("failed", "closed"):
                self.failed = True
                self.connected.set()


class LoadGenerator:
    def __init__(self, base_url: str, token: str, call_id: str, concurrency: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.call_id = call_id
        self.counter = PacketCounter()
        self.listeners: list[Listener] = []
        self.semaphore = asyncio.Semaphore(concurrency)
        self.http: aiohttp.ClientSession | None = None
        self.lag = LoopLag()
        pcmu = [
            c
            for c in RTCRtpSender.getCapabilities("audio").codecs
            if c.mimeType.lower() == "audio/pcmu"
        ]
        self.codecs = pcmu

    async def start(self) -> None:
        self.http = aiohttp.ClientSession()
        self.lag.start()

    async def _open(self, listener: Listener) -> str | None:
        """Set up one listener like a browser would; an error text, or None."""
        assert self.http is not None
        async with self.semaphore:
            pc = listener.pc
            for _ in range(2):  # agent first, caller second (architecture decision 1)
                pc.addTransceiver("audio", direction="recvonly").setCodecPreferences(self.codecs)
            await pc.setLocalDescription(await pc.createOffer())
            body = {"sdp": pc.localDescription.sdp, "type": "offer", "purpose": "quality"}
            url = f"{self.base_url}/api/calls/{listener.call_id}/listen"
            try:
                async with self.http.post(url, json=body, headers=self.headers) as response:
                    answer = await response.json()
                    if response.status != 201:
                        return f"listen refused: {response.status} {answer}"
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                return f"listen request failed: {exc!r}"
            listener.session_id = answer["session_id"]
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            try:
                await asyncio.wait_for(listener.connected.wait(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                return "ICE/DTLS did not connect in time"
            if listener.failed:
                return "the peer connection failed"
            for dtls in {t.receiver.transport for t in pc.getTransceivers()}:
                dtls.transport._connection.bench_fast_path = self.counter.fast_path(  # type: ignore[attr-defined]
                    dtls, listener.base
                )
            return None

    async def grow(self, n: int, calls: list[str] | None = None) -> dict[str, Any]:
        started = time.monotonic()
        new = []
        while len(self.listeners) < n:
            index = len(self.listeners)
            call_id = calls[index] if calls else self.call_id
            listener = Listener(index, self.counter.add_listener(), call_id)
            self.listeners.append(listener)
            new.append(listener)
        errors = [e for e in await asyncio.gather(*(self._open(x) for x in new)) if e]
        setup_s = time.monotonic() - started
        counts = self.counter.counts
        deadline = time.monotonic() + FIRST_PACKET_TIMEOUT_S
        silent = [x for x in new if not (counts[x.base] and counts[x.base + 1])]
        while silent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            silent = [x for x in silent if not (counts[x.base] and counts[x.base + 1])]
        return {
            "listeners": len(self.listeners),
            "setup_s": round(setup_s, 3),
            "errors": errors[:5],
            "failed": len(errors),
            "silent": len(silent),
        }

    async def shrink(self, n: int) -> dict[str, Any]:
        assert self.http is not None
        gone, self.listeners = self.listeners[n:], self.listeners[:n]
        for listener in gone:
            if listener.session_id:
                try:
                    async with self.http.delete(
                        f"{self.base_url}/api/listens/{listener.session_id}", headers=self.headers
                    ):
                        pass
                except aiohttp.ClientError:
                    pass
        await asyncio.gather(*(x.pc.close() for x in gone), return_exceptions=True)
        # a closed listener's streams stay allocated but are no longer counted in stats
        return {"listeners": len(self.listeners)}

    async def reset(self) -> dict[str, Any]:
        self.counter.clear()
        gc.collect()
        gc.freeze()  # everything alive now (the peers) is never scanned again
        await asyncio.sleep(2 * LoopLag.PERIOD_S)  # let the lag timer see past the collection
        self.lag.take()
        self.counter.recording = True
        return {"recording": True}

    def stats(self, t0: int, t1: int) -> dict[str, Any]:
        """Loss, rates and latency for the packets sent in [t0, t1], per stream."""
        counter = self.counter
        counter.recording = False
        records = list(
            zip(counter.streams, counter.arrivals, range(0, len(counter.markers), MARKER_LEN - 1))
        )
        markers = bytes(counter.markers)
        counter.clear()
        streams = [x.base + leg for x in self.listeners for leg in (0, 1)]
        active = set(streams)
        seen: dict[int, set[int]] = {s: set() for s in streams}
        leg_chunks: tuple[set[int], set[int]] = (set(), set())
        latencies: list[int] = []
        sends: list[int] = []
        received = 0
        for stream, arrival_ns, at in records:
            if stream not in active:
                continue
            chunk, send_ns = decode_marker(markers[at : at + MARKER_LEN - 1])
            if send_ns < t0 or send_ns > t1:
                continue
            received += 1
            seen[stream].add(chunk)
            leg_chunks[stream & 1].add(chunk)
            latencies.append(arrival_ns - send_ns)
            sends.append(send_ns)
        window_s = (t1 - t0) / 1e9
        expected = [max(c) - min(c) + 1 if c else 0 for c in leg_chunks]
        losses = [expected[s & 1] - len(seen[s]) for s in streams]
        unique = sum(len(v) for v in seen.values())
        rates = [len(seen[s]) / window_s for s in streams]
        figures: dict[str, Any] = {
            "streams": len(streams),
            "window_s": round(window_s, 3),
            "expected_per_leg": expected,
            "sender_pps_per_leg": [round(e / window_s, 2) for e in expected],
            "received": received,
            "duplicates": received - unique,
            "lost": sum(losses),
            "streams_with_loss": sum(1 for x in losses if x > 0),
            "worst_stream_loss": max(losses) if losses else 0,
            "min_stream_pps": round(min(rates), 2) if rates else 0.0,
            "unprotect_errors": counter.unprotect_errors,
            "foreign_packets": counter.foreign,
        }
        figures["load_loop_lag_ms"], figures["load_loop_stalled_ms"] = self.lag.take()
        if latencies:
            ms = numpy.asarray(latencies, dtype=numpy.float64) / 1e6
            p50, p90, p99, p999 = numpy.percentile(ms, [50, 90, 99, 99.9])
            figures["latency_ms"] = {
                "p50": round(p50, 3),
                "p90": round(p90, 3),
                "p99": round(p99, 3),
                "p99.9": round(p999, 3),
                "max": round(float(ms.max()), 3),
            }
            # worst latency per second of the window (by send time): shows stalls vs steady queueing
            second = (numpy.asarray(sends, dtype=numpy.int64) - t0) // 1_000_000_000
            figures["max_latency_ms_by_second"] = [
                round(float(ms[second == k].max()), 1) if (second == k).any() else None
                for k in range(math.ceil(window_s))
            ]
        return figures

    async def aclose(self) -> None:
        await self.lag.aclose()
        await asyncio.gather(*(x.pc.close() for x in self.listeners), return_exceptions=True)
        if self.http is not None:
            await self.http.close()


async def serve_commands(generator: LoadGenerator) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        name = command["cmd"]
        if name == "grow":
            reply = await generator.grow(int(command["n"]), command.get("calls"))
        elif name == "shrink":
            reply = await generator.shrink(int(command["n"]))
        elif name == "reset":
            reply = await generator.reset()
        elif name == "stats":
            reply = generator.stats(int(command["t0"]), int(command["t1"]))
        elif name == "quit":
            print(json.dumps({"ok": True}), flush=True)
            return
        else:
            reply = {"error": f"unknown command {name!r}"}
        print(json.dumps(reply), flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", default="bench")
    parser.add_argument("--call", default="CA-bench")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    install_fast_path()
    generator = LoadGenerator(args.base_url, args.token, args.call, args.concurrency)
    await generator.start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        await serve_commands(generator)
    finally:
        try:
            await asyncio.wait_for(generator.aclose(), 10)
        except TimeoutError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

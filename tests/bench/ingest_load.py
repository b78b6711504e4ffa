"""The ingest benchmark's call generator: N SIPREC or Twilio calls, 2 legs x 50 packets/s.

    python -m tests.bench.ingest_load --mode siprec --sip 127.0.0.1:5060
    python -m tests.bench.ingest_load --mode twilio --url ws://127.0.0.1:8080/ingest/twilio --secret S

One asyncio loop, one ``Ticker``: every 20 ms (absolute deadlines, so a late tick is followed by
an early one and the rate stays 50/s) it encodes the tick's two marker payloads
(``marker.py``) and hands them to the calls (``siprec_sender.SiprecCalls`` or
``twilio_streams.TwilioStreams``), which send one packet per leg of every call. The ticker
counts its own lateness and the time it spends sending, so the orchestrator can check the
pacing and that this process is much cheaper than the server it loads (``busy_s`` is the
CPU time spent sending, so other tenants of the machine do not inflate it).

Driven over stdin/stdout, one JSON object per line: ``{"cmd": "grow", "n": N}`` (set up
calls up to N; the reply lists their ids), ``{"cmd": "stats"}`` (cumulative counters),
``{"cmd": "quit"}`` (BYE / stop every call, then exit).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import sys
import time
from typing import Any, Protocol

from tests.bench.marker import AGENT, CALLER, encode_payload
from tests.bench.siprec_sender import SiprecCalls
from tests.bench.twilio_streams import TwilioStreams

PERIOD_NS = 20_000_000
LATE_NS = 5_000_000  # a tick this late counts as late


class Calls(Protocol):
    current_tick: int

    @property
    def legs(self) -> int: ...

    async def start(self) -> None: ...

    async def grow(self, n: int) -> dict[str, Any]: ...

    def tick(self, tick: int, payloads: tuple[bytes, bytes]) -> None: ...

    def figures(self) -> dict[str, Any]: ...

    async def aclose(self) -> dict[str, Any]: ...


class Ticker:
    """Calls ``calls.tick`` every 20 ms on absolute deadlines; counts lateness and busy time."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.ticks = 0
        self.late_ticks = 0
        self.worst_lag_ns = 0
        self.busy_ns = 0  # CPU time spent inside calls.tick (not time lost to other processes)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="ticker")

    async def _run(self) -> None:
        now = time.monotonic_ns
        cpu = time.thread_time_ns
        start = now()
        while True:
            due = start + self.ticks * PERIOD_NS
            delay = due - now()
            # Always yield once, so SIP answers and set-ups are served even when behind.
            await asyncio.sleep(max(0, delay) / 1e9)
            began = now()
            began_cpu = cpu()
            lag = began - due
            if lag > LATE_NS:
                self.late_ticks += 1
            self.worst_lag_ns = max(self.worst_lag_ns, lag)
            tick = self.ticks
            self.calls.current_tick = tick
            self.calls.tick(
                tick, (encode_payload(AGENT, tick, began), encode_payload(CALLER, tick, began))
            )
            self.ticks = tick + 1
            self.busy_ns += cpu() - began_cpu

    def figures(self) -> dict[str, Any]:
        worst, self.worst_lag_ns = self.worst_lag_ns, 0  # worst since the last report
        return {
            "ticks": self.ticks,
            "late_ticks": self.late_ticks,
            "worst_lag_ms": round(worst / 1e6, 2),
            "busy_s": round(self.busy_ns / 1e9, 4),
            "legs": self.calls.legs,
            "time_ns": time.monotonic_ns(),
        }

    async def aclose(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def serve_commands(calls: Calls, ticker: Ticker) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return {}
        command = json.loads(line)
        name = command["cmd"]
        if name == "grow":
            reply = await calls.grow(int(command["n"]))
            gc.collect()
            gc.freeze()  # the calls live until the end: the collector need not scan them again
        elif name == "stats":
            reply = ticker.figures() | calls.figures()
        elif name == "quit":
            await ticker.aclose()
            return await calls.aclose()
        else:
            reply = {"error": f"unknown command {name!r}"}
        print(json.dumps(reply), flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("siprec", "twilio"), required=True)
    parser.add_argument("--sip", default="", help="the SRS's UDP host:port (siprec)")
    parser.add_argument("--url", default="", help="ws://…/ingest/twilio (twilio)")
    parser.add_argument("--secret", default="", help="the server's LIVE_INGEST_SECRET (twilio)")
    parser.add_argument("--concurrency", type=int, default=16, help="call set-ups in flight")
    args = parser.parse_args()
    run_id = secrets.token_hex(3)
    calls: Calls
    if args.mode == "siprec":
        host, _, port = args.sip.rpartition(":")
        calls = SiprecCalls(host, int(port), run_id, args.concurrency)
    else:
        calls = TwilioStreams(args.url, args.secret, run_id, args.concurrency)
    await calls.start()
    ticker = Ticker(calls)
    ticker.start()
    print(json.dumps({"ready": True, "mode": args.mode}), flush=True)
    try:
        ended = await serve_commands(calls, ticker)
    finally:
        await ticker.aclose()
    print(json.dumps({"ok": True, **ended}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

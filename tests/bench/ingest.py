"""Ingest benchmark: what N calls cost ``live`` with no listener, SIPREC against Twilio.

    .venv/bin/python -m tests.bench.ingest [--calls 50,100,200,400,600] [--seconds 10]
                                           [--rounds 2] [--out bench-results/ingest.json]
    .venv/bin/python -m tests.bench.ingest --quick

Three modes, interleaved per round (A B C A B C), each on a fresh ``live serve`` (SIPREC on,
an ingest secret) pinned to one core, with the call generator (``ingest_load.py``) on the
other: ``siprec`` (N SIPREC dialogs, 2 RTP legs each, nobody listening), ``siprec-listen``
(the same plus one listener per call, ``load.py``, over a smaller range of N) and ``twilio``
(N Twilio Media Streams WebSockets, nobody listening). The call count steps up; at each step,
after a warm-up, a window of ``--seconds`` measures the server's CPU (``/proc/PID/stat``),
the packets it ingested and lost (``/metrics``), the kernel's UDP receive drops, and the
generator's pacing and CPU. The step-up stops at the first point that fails. The
summary fits server CPU against N and against ingested packets/s (least squares): % of a
core per call, µs per packet, and calls per core. See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench import ingest_report, procstat
from tests.bench.child import Child, free_port
from tests.bench.ingest_point import Snapshot, figures, parse_metrics
from tests.bench.ingest_verdict import judge
from tests.bench.live_setup import INGEST_SECRET, make_supervisor, seed_data_dir, server_env
from tests.bench.run import environment
from tests.bench.siprec_sender import AGENT_AOR
from tests.bench.verdict import decisive

PORTS_PER_CALL = 4  # two legs, each an RTP/RTCP pair
LISTEN_KEYS = (
    "lost",
    "streams",
    "streams_with_loss",
    "min_stream_pps",
    "sender_pps_per_leg",
    "received",
    "latency_ms",
    "load_loop_lag_ms",
    "load_loop_stalled_ms",
    "unprotect_errors",
    "foreign_packets",
)


@dataclass(frozen=True)
class Processes:
    """What one server lifetime runs: the server, the call generator, the listeners if any."""

    base_url: str
    server: Child
    generator: Child
    load: Child | None


class IngestBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = sys.executable
        self.started = time.monotonic()
        self.log_dir = Path(args.out).resolve().parent / "bench-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.template = Path(tempfile.mkdtemp(prefix="live-bench-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
        self.cores: tuple[int, int] | None = None
        self.server_pin, self.load_pin = self._cores()
        self.token = ""
        self.points: list[dict[str, Any]] = []
        self.rounds: dict[str, list[dict[str, Any]]] = {m: [] for m in args.modes}
        self.runs: list[dict[str, Any]] = []

    def _cores(self) -> tuple[list[str], list[str]]:
        cores = sorted(os.sched_getaffinity(0))
        if self.args.no_pin or len(cores) < 2 or not shutil.which("taskset"):
            return [], []
        self.cores = (cores[0], cores[1])
        os.sched_setaffinity(0, {cores[1]})  # this orchestrator is mostly idle: off the server core
        return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def counts(self, mode: str) -> list[int]:
        counts: list[int] = self.args.listen_calls if mode == "siprec-listen" else self.args.calls
        return counts

    # --- one server lifetime ---------------------------------------------------------------

    async def session(self, mode: str, round_no: int) -> list[dict[str, Any]]:
        args = self.args
        port, sip_port = free_port(), free_port()
        tag = f"ingest-{mode}{round_no}-{port}"
        base_url = f"http://127.0.0.1:{port}"
        data_dir = Path(tempfile.mkdtemp(prefix="live-bench-data-"))
        seed_data_dir(self.template, data_dir)
        env = (
            self.env
            | server_env(data_dir)
            | {
                "LIVE_SIPREC_LISTEN": f"127.0.0.1:{sip_port}",
                "LIVE_SIPREC_ALLOW": "127.0.0.1",
                "LIVE_SIPREC_AGENT_AOR": AGENT_AOR,
                "LIVE_RTP_PORTS": args.rtp_ports,
                "LIVE_RTP_ADDRESS": "127.0.0.1",
            }
        )
        server = Child(
            f"{tag}-server",
            self.server_pin
            + [
                self.python,
                "-m",
                "tests.bench.serve_live",
                "serve",
                "--data",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            self.log_dir,
            capture=False,
        )
        if mode == "twilio":
            target = [
                "--mode",
                "twilio",
                "--url",
                f"ws://127.0.0.1:{port}/ingest/twilio",
                "--secret",
                INGEST_SECRET,
            ]
        else:
            target = ["--mode", "siprec", "--sip", f"127.0.0.1:{sip_port}"]
        generator = Child(
            f"{tag}-generator",
            self.load_pin + [self.python, "-m", "tests.bench.ingest_load", *target],
            self.env,
            self.log_dir,
            control=True,
        )
        load = None
        if mode == "siprec-listen":
            load = Child(
                f"{tag}-load",
                self.load_pin
                + [
                    self.python,
                    "-m",
                    "tests.bench.load",
                    "--base-url",
                    base_url,
                    "--token",
                    self.token,
                    "--concurrency",
                    str(args.concurrency),
                ],
                self.env,
                self.log_dir,
                control=True,
            )
        children = [c for c in (server, generator, load) if c is not None]
        points: list[dict[str, Any]] = []
        ended: dict[str, Any] = {}
        try:
            await server.start()
            await self._wait_ready(base_url, server)
            await generator.start()
            await generator.read(15)
            if load is not None:
                await load.start()
                await load.read(30)
            async with aiohttp.ClientSession() as http:
                for n in self.counts(mode):
                    grow = await generator.command({"cmd": "grow", "n": n}, 60 + n / 5)
                    call_ids = grow.pop("call_ids", [])
                    listen_grow = None
                    if load is not None:
                        listen_grow = await load.command(
                            {"cmd": "grow", "n": n, "calls": call_ids[:n]}, 60 + n
                        )
                    tries = []
                    for attempt in range(1 + args.confirm):
                        kind = "step" if attempt == 0 else "step+"
                        tries.append(
                            await self.measure(
                                http,
                                Processes(base_url, server, generator, load),
                                mode,
                                round_no,
                                kind,
                                n,
                                grow,
                                listen_grow,
                            )
                        )
                        print(ingest_report.format_point(tries[-1]), flush=True)
                        if tries[-1]["status"] == "ok":
                            break
                    point = decisive(tries)
                    for other in tries:
                        other["superseded"] = other is not point
                    points.extend(tries)
                    if point["status"] == "fail":  # an invalid point says nothing of the server
                        break
            if load is not None:
                await load.stop()
            ended = await generator.command({"cmd": "quit"}, 60)  # BYE / stop for every call
            assert generator.proc is not None
            await asyncio.wait_for(generator.proc.wait(), 15)
        finally:
            for child in reversed(children):
                await child.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
        self.runs.append(
            {"mode": mode, "round": round_no, "port": port, "ended": ended, "points": len(points)}
        )
        return points

    async def _wait_ready(self, base_url: str, server: Child, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if server.proc is not None and server.proc.returncode is not None:
                    raise RuntimeError(f"{server.name} exited (see {server.log_path})")
                try:
                    async with http.get(base_url + "/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{base_url} not ready after {timeout:g} s (see {server.log_path})")

    # --- one point -----------------------------------------------------------------------------

    async def measure(
        self,
        http: aiohttp.ClientSession,
        run: Processes,
        mode: str,
        round_no: int,
        kind: str,
        n: int,
        grow: dict[str, Any],
        listen_grow: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """One point: warm up, then a window of ``--seconds`` at ``n`` calls."""
        server, generator, load = run.server, run.generator, run.load
        args = self.args

        async def snapshot() -> Snapshot:
            async with http.get(f"{run.base_url}/metrics") as response:
                metrics = parse_metrics(await response.text())
            t_ns = time.monotonic_ns()
            server_cpu = procstat.cpu_seconds(server.pid)
            gen_cpu = procstat.cpu_seconds(generator.pid)
            load_cpu = procstat.cpu_seconds(load.pid) if load else 0.0
            cores = [procstat.core_busy_seconds(c) for c in self.cores or ()]
            gen = await generator.command({"cmd": "stats"}, 30)
            drops, queued = procstat.udp_sockets(server.pid)
            load_drops = sum(procstat.udp_sockets(c.pid)[0] for c in (generator, load) if c)
            return Snapshot(
                metrics=metrics,
                t_ns=t_ns,
                server_cpu=server_cpu,
                gen_cpu=gen_cpu,
                load_cpu=load_cpu,
                cores=cores,
                gen=gen,
                socket_drops=drops,
                socket_queued=queued,
                load_socket_drops=load_drops,
                rcvbuf_errors=procstat.udp_receive_errors(),
            )

        await asyncio.sleep(args.warmup)
        if load is not None:
            await load.command({"cmd": "reset"}, 30)
        s0 = await snapshot()
        await asyncio.sleep(args.seconds)
        s1 = await snapshot()
        point: dict[str, Any] = {"mode": mode, "round": round_no, "kind": kind}
        point |= figures(s0, s1, n, listening=load is not None)
        point["server_rss_kib"] = procstat.rss_kib(server.pid)
        point["setup"] = grow
        if load is not None:
            await asyncio.sleep(args.grace)
            stats = await load.command({"cmd": "stats", "t0": s0.t_ns, "t1": s1.t_ns}, 60)
            point["listen"] = {k: stats.get(k) for k in LISTEN_KEYS}
            point["listen_setup"] = listen_grow
        point["status"], point["reasons"] = judge(point, args.latency_target_ms)
        return point

    # --- the plan ------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        if "siprec-listen" in args.modes:
            self.token = make_supervisor(self.template, self.python, self.env)
        print(
            f"server pinned: {' '.join(self.server_pin) or 'no'}; generator + listeners pinned: "
            f"{' '.join(self.load_pin) or 'no'}; calls {args.calls}, with listeners {args.listen_calls}; "
            f"window {args.seconds:g} s; {args.rounds} round(s) of {', '.join(args.modes)}",
            flush=True,
        )
        print(ingest_report.POINT_HEADER, flush=True)
        for round_no in range(1, args.rounds + 1):
            for mode in args.modes:
                print(
                    f"--- {ingest_report.MODES[mode]}, round {round_no}, {self.elapsed():.0f} s elapsed",
                    flush=True,
                )
                points = await self.session(mode, round_no)
                self.points.extend(points)
                standing = [p for p in points if not p.get("superseded")]
                self.rounds[mode].append(
                    ingest_report.round_figures(standing, max(self.counts(mode)))
                )
        summary = ingest_report.summarize(self.rounds)
        print()
        print(ingest_report.format_summary(summary, args.modes, args.target), flush=True)
        return {
            "config": vars(args),
            "environment": environment(self.server_pin, self.load_pin),
            "summary": summary,
            "rounds": self.rounds,
            "points": self.points,
            "runs": self.runs,
            "elapsed_s": round(self.elapsed(), 1),
            "logs": str(self.log_dir),
        }

    def close(self) -> None:
        shutil.rmtree(self.template, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    def ints(text: str) -> list[int]:
        return sorted({int(x) for x in text.split(",") if x.strip()})

    parser.add_argument(
        "--calls",
        type=ints,
        default=None,
        help="call counts for the modes without listeners (default 50,100,200,400,600)",
    )
    parser.add_argument(
        "--listen-calls",
        type=ints,
        default=None,
        help="call counts with one listener per call (default 10,25,50,100)",
    )
    parser.add_argument(
        "--modes",
        type=lambda t: [m for m in t.split(",") if m],
        default=list(ingest_report.MODES),
        help="comma-separated: siprec, siprec-listen, twilio (run in this order each round)",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="measurement window per point (default 10)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of all modes, interleaved (default 2)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds between growing and measuring (default 2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 steps per mode, 3 s windows, 1 round (about 1.5 minutes)",
    )
    parser.add_argument(
        "--out",
        default="bench-results/ingest.json",
        help="JSON output (logs go to bench-logs/ next to it)",
    )
    parser.add_argument(
        "--confirm", type=int, default=1, help="re-measure a point that is not ok this many times"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=1.0,
        help="seconds after the window for late listener packets",
    )
    parser.add_argument(
        "--latency-target-ms", type=float, default=40.0, help="listener p99 a point must stay under"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="listener set-ups in flight")
    parser.add_argument(
        "--rtp-ports", default="30000-33999", help="the server's LIVE_RTP_PORTS (4 ports per call)"
    )
    parser.add_argument(
        "--target", type=int, default=500, help="unmonitored SIPREC calls per core to reach"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "calls": [50, 200] if quick else [50, 100, 200, 400, 600],
        "listen_calls": [10, 25] if quick else [10, 25, 50, 100],
        "seconds": 3.0 if quick else 10.0,
        "rounds": 1 if quick else 2,
        "warmup": 1.0 if quick else 2.0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    unknown = [m for m in args.modes if m not in ingest_report.MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}: pick from {', '.join(ingest_report.MODES)}")
    low, _, high = args.rtp_ports.partition("-")
    capacity = (int(high) - int(low) + 1) // PORTS_PER_CALL
    biggest = max(args.calls + args.listen_calls)
    if capacity < biggest:
        parser.error(
            f"--rtp-ports {args.rtp_ports} holds {capacity} calls (4 ports each), fewer than {biggest}"
        )
    return args


async def amain(args: argparse.Namespace) -> int:
    bench = IngestBench(args)
    try:
        result = await bench.run()
    finally:
        bench.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out} in {result['elapsed_s']:.0f} s (process logs in {result['logs']})")
    return 0


def main() -> int:
    return asyncio.run(amain(parse_args()))


if __name__ == "__main__":
    sys.exit(main())

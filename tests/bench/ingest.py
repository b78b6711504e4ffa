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
import re
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
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text as ``{'name{label=value,…}': value}``, summed over the ``leg`` label."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        kept = ",".join(f"{k}={v}" for k, v in _LABEL.findall(labels) if k != "leg")
        key = f"{name}{{{kept}}}" if kept else name
        out[key] = out.get(key, 0.0) + float(value)
    return out


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

        async def snapshot() -> dict[str, Any]:
            """Counters and CPU at one end of the window. The server's counters and CPU are
            read back to back (a busy server may take long to answer ``/metrics``, so the
            window starts and ends when it has); the generator's rate uses its own clock."""
            async with http.get(f"{run.base_url}/metrics") as response:
                counters = parse_metrics(await response.text())
            return {
                "metrics": counters,
                "t": time.monotonic_ns(),
                "cpu": procstat.cpu_seconds(server.pid),
                "gen_cpu": procstat.cpu_seconds(generator.pid),
                "load_cpu": procstat.cpu_seconds(load.pid) if load else 0.0,
                "cores": [procstat.core_busy_seconds(c) for c in self.cores or ()],
                "gen": await generator.command({"cmd": "stats"}, 30),
            }

        await asyncio.sleep(args.warmup)
        if load is not None:
            await load.command({"cmd": "reset"}, 30)
        drops0, _ = procstat.udp_sockets(server.pid)
        udp0 = procstat.udp_receive_errors()
        s0 = await snapshot()
        await asyncio.sleep(args.seconds)
        s1 = await snapshot()
        drops1, queued = procstat.udp_sockets(server.pid)
        udp1 = procstat.udp_receive_errors()
        t0, t1, m0, m1, g0, g1 = (
            s0["t"],
            s1["t"],
            s0["metrics"],
            s1["metrics"],
            s0["gen"],
            s1["gen"],
        )
        cpu0, cpu1, gen0, gen1 = s0["cpu"], s1["cpu"], s0["gen_cpu"], s1["gen_cpu"]
        load0, load1, cores0, cores1 = s0["load_cpu"], s1["load_cpu"], s0["cores"], s1["cores"]
        rss = procstat.rss_kib(server.pid)
        listen = None
        if load is not None:
            await asyncio.sleep(args.grace)
            stats = await load.command({"cmd": "stats", "t0": t0, "t1": t1}, 60)
            listen = {k: stats.get(k) for k in LISTEN_KEYS}

        def delta(key: str) -> int:
            return int(m1.get(key, 0.0) - m0.get(key, 0.0))

        window_s = (t1 - t0) / 1e9
        gen_window_s = (g1["time_ns"] - g0["time_ns"]) / 1e9
        sent = g1["packets_sent"] - g0["packets_sent"]
        ingested = delta("live_packets_ingested_total")
        server_cpu = cpu1 - cpu0
        # rates, each over its own clock's window
        ratio = (ingested / window_s) / (sent / gen_window_s) if sent and gen_window_s else None
        lost_detail = {
            "rtp_lost": delta("live_rtp_lost_total{source=siprec}"),
            "rtp_late": delta("live_rtp_late_total{source=siprec}"),
            "hub_late": delta("live_packets_late_total"),
            "twilio_dropped": delta("live_twilio_chunks_out_of_order_total{result=dropped}"),
            "frames_rejected": delta("live_ingest_frames_rejected_total"),
            "socket_drops": drops1 - drops0,
        }
        requests0, requests1 = g0.get("server_requests", {}), g1.get("server_requests", {})
        server_ended = (
            sum(requests1.values())
            - sum(requests0.values())
            + g1.get("streams_closed", 0)
            - g0.get("streams_closed", 0)
        )
        point: dict[str, Any] = {
            "mode": mode,
            "round": round_no,
            "kind": kind,
            "calls": n,
            "legs": g1["legs"],
            "window_s": round(window_s, 3),
            "server_cpu_s": round(server_cpu, 3),
            "server_cpu_util": round(server_cpu / window_s, 4),
            "ingested_pps": round(ingested / window_s, 1),
            "rtp_received_pps": round(
                delta("live_rtp_received_total{source=siprec}") / window_s, 1
            ),
            "sent_pps": round(sent / gen_window_s, 1),
            "sender_pps_per_leg": round(sent / gen_window_s / max(1, g1["legs"]), 2),
            "ingest_ratio": round(ratio, 4) if ratio is not None else None,
            # how much further behind the sender the server fell during the window
            "ingest_lag_ms": round((1 - ratio) * window_s * 1000, 1) if ratio is not None else None,
            "us_per_packet_point": round(server_cpu / ingested * 1e6, 2) if ingested else None,
            "core_pct_per_call_point": round(100 * server_cpu / window_s / n, 4),
            "lost": sum(lost_detail.values()),
            "lost_detail": lost_detail,
            "server_socket_drops": drops1 - drops0,
            "server_socket_queued_bytes": queued,
            "udp_rcvbuf_errors": udp1 - udp0,
            "server_ended_calls": server_ended,
            "server_rss_kib": rss,
            "gen_cpu_util": round((gen1 - gen0) / window_s, 4),
            "gen_us_per_packet": round((gen1 - gen0) / sent * 1e6, 2) if sent else None,
            "gen_busy": round((g1["busy_s"] - g0["busy_s"]) / gen_window_s, 4),
            "gen_late_ticks": g1["late_ticks"] - g0["late_ticks"],
            "gen_worst_lag_ms": g1["worst_lag_ms"],
            "gen_ticks_per_s": round((g1["ticks"] - g0["ticks"]) / gen_window_s, 2),
            "gen_send_errors": g1["send_errors"] - g0["send_errors"],
            "gen_backlog_bytes": g1.get("backlog_bytes"),
            "setup": grow,
        }
        if load is not None:
            point["load_cpu_util"] = round((load1 - load0) / window_s, 4)
            point["delivered_pps"] = round(delta("live_packets_delivered_total") / window_s, 1)
            point["listener_queue_drops"] = delta("live_packets_dropped_total")
            point["listen"] = listen
            point["listen_setup"] = listen_grow
        if self.cores:
            busy = [(b - a) / window_s for a, b in zip(cores0, cores1)]
            ours_on_load = point["gen_cpu_util"] + point.get("load_cpu_util", 0.0)
            point["other_cpu_server_core"] = round(max(0.0, busy[0] - point["server_cpu_util"]), 3)
            point["other_cpu_load_core"] = round(max(0.0, busy[1] - ours_on_load), 3)
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
    ints = lambda text: sorted({int(x) for x in text.split(",") if x.strip()})
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

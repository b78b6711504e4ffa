"""Benchmark: ``live`` (A) against a naive aiortc server (B), side by side, A B A B.

    .venv/bin/python -m tests.bench.run [--listeners 10,25,50,100] [--seconds 10]
                                        [--out bench-results/bench.json]

For each system and round: start the server in its own process (pinned to one core with
``taskset``), a Twilio Media Streams sender with one two-leg call (``sender.py``) and the load
generator (``load.py``), both pinned to another core. Step the number of listeners up (an
anchor point, the ``--listeners`` list, then x``--step`` up to ``--max-streams``) until a point
fails; at each step measure a window of ``--seconds``: server CPU from ``/proc/PID/stat``,
per-stream loss and rate, and send-to-receive latency (one clock). Optionally bisect the first
failure with a fresh server. Prints a line per point, a summary with B/A ratios, writes JSON.
See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench import procstat, report
from tests.bench.child import ROOT, Child, free_port
from tests.bench.live_setup import INGEST_SECRET, make_supervisor, seed_data_dir, server_env
from tests.bench.verdict import decisive, judge

CALL_ID = "CA-bench"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = sys.executable
        self.started = time.monotonic()
        self.log_dir = Path(args.out).resolve().parent / "bench-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.template = Path(tempfile.mkdtemp(prefix="live-bench-"))
        self.token = ""
        self.cores: tuple[int, int] | None = None  # (server core, load core) when pinned
        self.server_pin, self.load_pin = self._cores()
        self.points: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        self.rounds: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        self.runs: list[dict[str, Any]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}

    # --- setup ---------------------------------------------------------------------------

    def _cores(self) -> tuple[list[str], list[str]]:
        cores = sorted(os.sched_getaffinity(0))
        if self.args.no_pin or len(cores) < 2 or not shutil.which("taskset"):
            return [], []
        server, load = cores[0], cores[1]
        self.cores = (server, load)
        os.sched_setaffinity(
            0, {load}
        )  # this orchestrator is mostly idle; keep it off the server core
        return ["taskset", "-c", str(server)], ["taskset", "-c", str(load)]

    def prepare_users(self) -> None:
        """A supervisor with an API token, made with the real CLI (``live users add/token``)."""
        self.token = make_supervisor(self.template, self.python, self.env)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- one server lifetime -------------------------------------------------------------

    async def session(
        self, system: str, round_no: int, kind: str, counts: list[int]
    ) -> list[dict[str, Any]]:
        """Start system + sender + load, measure ``counts`` in order until one is not ok."""
        port = free_port()
        tag = f"{system}{round_no}-{kind}-{port}"
        base_url = f"http://127.0.0.1:{port}"
        data_dir = Path(tempfile.mkdtemp(prefix="live-bench-data-"))
        children: list[Child] = []
        points: list[dict[str, Any]] = []
        sender_figures: dict[str, Any] = {}
        try:
            if system == "A":
                seed_data_dir(self.template, data_dir)
                env = self.env | server_env(data_dir)
                argv = self.server_pin + [
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
                ]
            else:
                env = dict(self.env)
                argv = self.server_pin + [
                    self.python,
                    "-m",
                    "tests.bench.naive_server",
                    "--port",
                    str(port),
                ]
            server = Child(f"{tag}-server", argv, env, self.log_dir, capture=False)
            children.append(server)
            await server.start()
            await self._wait_http(base_url + ("/readyz" if system == "A" else "/healthz"), server)

            sender = Child(
                f"{tag}-sender",
                self.load_pin
                + [
                    self.python,
                    "-m",
                    "tests.bench.sender",
                    "--url",
                    f"ws://127.0.0.1:{port}/ingest/twilio",
                    "--call",
                    CALL_ID,
                    "--max-seconds",
                    "1800",
                    "--secret",
                    INGEST_SECRET,
                ],
                self.env,
                self.log_dir,
            )
            children.append(sender)
            await sender.start()
            await sender.read(15)
            await self._wait_call(base_url, server)

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
                    "--call",
                    CALL_ID,
                    "--concurrency",
                    str(self.args.concurrency),
                ],
                self.env,
                self.log_dir,
                control=True,
            )
            children.append(load)
            await load.start()
            await load.read(30)

            for n in counts:
                if (
                    kind == "step"
                    and n > max(self.args.listeners)
                    and self.elapsed() > self.args.budget_s
                ):
                    print(
                        f"    (time budget of {self.args.budget_s:g} s spent: no steps beyond the list)",
                        flush=True,
                    )
                    break
                point = await self.measure(
                    system, round_no, kind, n, server, sender, load, base_url
                )
                print(report.format_point(point), flush=True)
                tries = [point]
                for _ in range(self.args.confirm if point["status"] != "ok" else 0):
                    # Other tenants of a shared machine come in bursts: measure again before a
                    # point counts as failed.
                    tries.append(
                        await self.measure(
                            system, round_no, kind + "+", n, server, sender, load, base_url
                        )
                    )
                    print(report.format_point(tries[-1]), flush=True)
                    if tries[-1]["status"] == "ok":
                        break
                point = decisive(tries)
                for other in tries:
                    other["superseded"] = other is not point
                points.extend(tries)
                if point["status"] != "ok":
                    break
            await load.stop()
            await sender.stop()
            if sender.proc is not None and sender.proc.stdout is not None:
                tail = await sender.proc.stdout.read()
                for line in tail.decode().splitlines():
                    if '"stopped"' in line:
                        sender_figures = json.loads(line)
        finally:
            for child in reversed(children):
                await child.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
        self.runs.append(
            {
                "system": system,
                "round": round_no,
                "kind": kind,
                "port": port,
                "counts": counts,
                "sender": sender_figures,
                "points": points,
            }
        )
        return points

    async def _wait_http(self, url: str, server: Child, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if server.proc is not None and server.proc.returncode is not None:
                    raise RuntimeError(f"{server.name} exited (see {server.log_path})")
                try:
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{url} not ready after {timeout:g} s (see {server.log_path})")

    async def _wait_call(self, base_url: str, server: Child, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                async with http.get(f"{base_url}/api/calls", headers=headers) as response:
                    if response.status == 200 and any(
                        c.get("call_id") == CALL_ID for c in (await response.json())["calls"]
                    ):
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the call never showed up on {base_url} (see {server.log_path})")

    async def _live_counters(self, base_url: str) -> dict[str, int]:
        counters: dict[str, int] = {}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base_url}/metrics") as response,
        ):
            for line in (await response.text()).splitlines():
                if line.startswith(("live_packets_delivered_total", "live_packets_dropped_total")):
                    name, value = line.split()
                    counters[name] = int(float(value))
        return counters

    # --- one point -----------------------------------------------------------------------

    async def measure(
        self,
        system: str,
        round_no: int,
        kind: str,
        n: int,
        server: Child,
        sender: Child,
        load: Child,
        base_url: str,
    ) -> dict[str, Any]:
        args = self.args
        grow = await load.command({"cmd": "grow", "n": n}, 60 + n)
        if grow.get("listeners", n) > n:
            grow = await load.command({"cmd": "shrink", "n": n}, 60 + n)
        await asyncio.sleep(args.warmup)
        counters0 = await self._live_counters(base_url) if system == "A" else {}
        await load.command({"cmd": "reset"}, 30)
        udp0 = procstat.udp_receive_errors()
        t0 = time.monotonic_ns()
        cpu0, load0, send0 = (
            procstat.cpu_seconds(server.pid),
            procstat.cpu_seconds(load.pid),
            procstat.cpu_seconds(sender.pid),
        )
        cores0 = [procstat.core_busy_seconds(c) for c in self.cores or ()]
        await asyncio.sleep(args.seconds)
        t1 = time.monotonic_ns()
        cpu1, load1, send1 = (
            procstat.cpu_seconds(server.pid),
            procstat.cpu_seconds(load.pid),
            procstat.cpu_seconds(sender.pid),
        )
        cores1 = [procstat.core_busy_seconds(c) for c in self.cores or ()]
        udp1 = procstat.udp_receive_errors()
        rss = procstat.rss_kib(server.pid)
        await asyncio.sleep(args.grace)
        stats = await load.command({"cmd": "stats", "t0": t0, "t1": t1}, 60)
        counters1 = await self._live_counters(base_url) if system == "A" else {}

        window_s = (t1 - t0) / 1e9
        received = stats["received"]
        server_cpu = cpu1 - cpu0
        point: dict[str, Any] = {
            "system": system,
            "round": round_no,
            "kind": kind,
            "listeners": n,
            "streams": stats["streams"],
            "window_s": round(window_s, 3),
            "server_cpu_s": round(server_cpu, 3),
            "server_cpu_util": round(server_cpu / window_s, 4),
            "packets_per_s": round(received / window_s, 1),
            "us_per_packet_point": round(server_cpu / received * 1e6, 2) if received else None,
            "server_rss_kib": rss,
            "load_cpu_util": round((load1 - load0) / window_s, 4),
            "load_us_per_packet": round((load1 - load0) / received * 1e6, 2) if received else None,
            "sender_cpu_util": round((send1 - send0) / window_s, 4),
            "udp_receive_errors": udp1 - udp0,
            "setup_s": grow.get("setup_s"),
            "setup": grow,
            **{
                k: stats[k]
                for k in (
                    "load_loop_lag_ms",
                    "load_loop_stalled_ms",
                    "lost",
                    "streams_with_loss",
                    "worst_stream_loss",
                    "min_stream_pps",
                    "duplicates",
                    "sender_pps_per_leg",
                    "unprotect_errors",
                    "foreign_packets",
                )
            },
            "received": received,
            "latency_ms": stats.get("latency_ms"),
            "max_latency_ms_by_second": stats.get("max_latency_ms_by_second"),
        }
        if self.cores:
            # CPU that processes other than ours took on each pinned core: a noise indicator on
            # a shared machine (it delays our processes even when the figures are valid).
            busy = [(b - a) / window_s for a, b in zip(cores0, cores1)]
            point["other_cpu_server_core"] = round(max(0.0, busy[0] - point["server_cpu_util"]), 3)
            point["other_cpu_load_core"] = round(
                max(0.0, busy[1] - point["load_cpu_util"] - point["sender_cpu_util"]), 3
            )
        if counters0 and counters1:
            point["server_counters_delta"] = {
                k: counters1[k] - counters0.get(k, 0) for k in counters1
            }
        point["status"], point["reasons"] = judge(point, stats, grow, args.latency_target_ms)
        return point

    # --- the plan --------------------------------------------------------------------------

    def step_counts(self) -> list[int]:
        max_listeners = self.args.max_streams // 2
        counts = sorted(
            {
                c
                for c in ([self.args.anchor] if self.args.anchor else []) + self.args.listeners
                if 0 < c <= max_listeners
            }
        )
        c = counts[-1] if counts else 1
        while c < max_listeners and self.args.step > 1:
            c = min(max_listeners, math.ceil(c * self.args.step))
            counts.append(c)
        return counts

    async def round(self, system: str, round_no: int) -> None:
        print(
            f"--- {system} ({report.SYSTEMS[system]}) round {round_no}, {self.elapsed():.0f} s elapsed",
            flush=True,
        )
        steps = [
            p
            for p in await self.session(system, round_no, "step", self.step_counts())
            if not p.get("superseded")
        ]
        measured = list(steps)
        good = [p["listeners"] for p in steps if p["status"] == "ok"]
        bad = [p for p in steps if p["status"] == "fail"]
        lo = max(good) if good else 0
        hi = bad[0]["listeners"] if bad else None
        for _ in range(self.args.bisect):
            if hi is None or hi - lo <= max(1, lo // 10) or self.elapsed() > self.args.budget_s:
                break
            mid = (lo + hi) // 2
            tries = await self.session(system, round_no, "bisect", [mid])
            point = next((p for p in tries if not p.get("superseded")), None)
            if point is None or point["status"] == "invalid":
                break
            measured.append(point)
            if point["status"] == "ok":
                lo = mid
            else:
                hi = mid
        self.points[system].extend(measured)
        self.rounds[system].append(report.round_figures(measured, self.args.max_streams // 2))

    async def run(self) -> dict[str, Any]:
        self.prepare_users()
        systems = [s for s in ("A", "B") if s in self.args.systems]
        print(
            f"server pinned: {' '.join(self.server_pin) or 'no'}; load + sender pinned: {' '.join(self.load_pin) or 'no'}; "
            f"steps {self.step_counts()} listeners (2 streams each); window {self.args.seconds:g} s; "
            f"p99 target {self.args.latency_target_ms:g} ms",
            flush=True,
        )
        print(report.POINT_HEADER, flush=True)
        for round_no in range(1, self.args.rounds + 1):
            for system in systems:
                await self.round(system, round_no)
        counts = sorted(
            set(self.args.listeners) | ({self.args.anchor} if self.args.anchor else set())
        )
        summary = report.summarize({s: self.rounds[s] for s in systems}, self.points, counts)
        print()
        print(report.format_summary(summary, self.args.latency_target_ms, counts), flush=True)
        return {
            "config": dict(vars(self.args).items()),
            "environment": environment(self.server_pin, self.load_pin),
            "summary": summary,
            "rounds": self.rounds,
            "runs": self.runs,
            "elapsed_s": round(self.elapsed(), 1),
            "logs": str(self.log_dir),
        }

    def close(self) -> None:
        shutil.rmtree(self.template, ignore_errors=True)


def environment(server_pin: list[str], load_pin: list[str]) -> dict[str, Any]:
    import aiortc
    import av

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": procstat.cpu_model(),
        "cpus": os.cpu_count(),
        "server_pin": server_pin,
        "load_pin": load_pin,
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "av": av.__version__,
        "commit": commit,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    parser.add_argument(
        "--listeners",
        type=ints,
        default=[10, 25, 50, 100],
        help="listener counts to step through (each listener = 2 streams)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per point")
    parser.add_argument(
        "--out",
        default="bench-results/bench.json",
        help="JSON output (logs go next to it, in bench-logs/)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="A B rounds, alternating (medians are quoted)"
    )
    parser.add_argument("--systems", default="AB", help="A (live), B (naive aiortc) or AB")
    parser.add_argument(
        "--anchor", type=int, default=2, help="extra low listener count measured first (0: none)"
    )
    parser.add_argument(
        "--step",
        type=float,
        default=1.3,
        help="after the list, multiply the listener count by this until a failure",
    )
    parser.add_argument(
        "--max-streams",
        type=int,
        default=400,
        help="upper bound of the step-up (2 streams per listener)",
    )
    parser.add_argument(
        "--confirm",
        type=int,
        default=1,
        help="re-measure a failing point this many times; it fails only if every try fails",
    )
    parser.add_argument(
        "--bisect",
        type=int,
        default=1,
        help="fresh-server runs bisecting the first failure, per round",
    )
    parser.add_argument(
        "--latency-target-ms",
        type=float,
        default=40.0,
        help="p99 send-to-receive latency a point must stay under",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds between adding listeners and measuring"
    )
    parser.add_argument(
        "--grace", type=float, default=1.0, help="seconds after the window for late packets"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="listener setups in flight")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=540.0,
        help="after this many seconds, no more steps beyond the list and no bisection",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    return parser.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    bench = Bench(args)
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

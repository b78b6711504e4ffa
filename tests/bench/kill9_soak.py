"""Soak: ``kill -9`` at random points of listen start, listening and stop, many rounds.

    python -m tests.bench.kill9_soak --rounds 200 [--seed N] [--data DIR]

The same rounds and checks as tests/integration/test_kill9_rounds.py (tests/support/kill9.py:
after each restart ``live audit verify`` passes, every ``listen.started`` has exactly one end,
no end is dated outside the true bounds, the agent got every notice). Prints a line per
round, then a table by kill point (rounds, passed, failed, in flight: killed before the
listen or stop request answered, median width of the node-lost
``ended_after``..``ended_before`` bounds, median and total time); exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.kill9 import KILL_POINTS, Round, run_rounds


def table(results: list[tuple[Round, BaseException | None]]) -> str:
    lines = [
        (
            f"{'kill point':<12}{'rounds':>7}{'passed':>7}{'failed':>7}{'in flight':>10}"
            f"{'median bounds s':>16}{'median round s':>15}{'total s':>9}"
        )
    ]
    for point in (*KILL_POINTS, "all"):
        rows = [(r, e) for r, e in results if point in ("all", r.point)]
        if not rows:
            continue
        widths = [r.width for r, e in rows if e is None and r.width is not None]
        secs = [r.seconds for r, _ in rows]
        failed = sum(1 for _, e in rows if e is not None)
        width = f"{statistics.median(widths):.2f}" if widths else "-"
        lines.append(
            f"{point:<12}{len(rows):>7}{len(rows) - failed:>7}{failed:>7}{sum(r.in_flight for r, _ in rows):>10}"
            f"{width:>16}{statistics.median(secs):>15.2f}{sum(secs):>9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.kill9_soak", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="random choices (default: random, printed)")
    parser.add_argument("--data", type=Path, default=None, help="data directory (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    base = Path(tempfile.mkdtemp(prefix="live-kill9-")) if args.data is None else args.data
    data = base / "data" if args.data is None else args.data
    print(f"kill9 soak: {args.rounds} rounds, seed {seed}, data {data}", flush=True)

    def report(r: Round, error: BaseException | None) -> None:
        what = "ok" if error is None else f"FAILED: {error}"
        width = f"{r.width:.2f}" if r.width is not None else "-"
        flight = "in flight" if r.in_flight else ""
        print(f"round {r.number:>4} {r.point:<10} {flight:<9} {r.reason or '-':<10} bounds {width:>5} s  {r.seconds:5.2f} s  {what}", flush=True)

    began = time.monotonic()
    results = asyncio.run(run_rounds(data, seed, args.rounds, report=report))
    print()
    print(table(results))
    failed = sum(1 for _, e in results if e is not None)
    print(f"\nseed {seed}: {len(results) - failed} passed, {failed} failed, {time.monotonic() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

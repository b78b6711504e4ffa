"""``kill -9`` at random points of listen start, listening and stop: 20 rounds on one data
directory, each checked after the restart (tests/support/kill9.py says what is checked).

The seed is random unless ``LIVE_KILL9_SEED`` is set, and printed: a failure names it, and
``LIVE_KILL9_SEED=<seed>`` replays the same choices (timing on the machine still varies).
The 200-round soak with a table is ``python -m tests.bench.kill9_soak``.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from tests.support.kill9 import run_rounds

ROUNDS = 20


async def test_kill_9_at_random_points_of_start_listening_and_stop(tmp_path: Path) -> None:
    seed = int(os.environ.get("LIVE_KILL9_SEED") or random.randrange(2**32))
    print(f"kill9 seed {seed}")
    began = time.monotonic()
    results = await run_rounds(tmp_path / "data", seed, ROUNDS)
    failures = [f"{r.number} {r.point}: {error}" for r, error in results if error is not None]
    assert not failures, f"seed {seed}:\n" + "\n".join(failures)
    points = {r.point for r, _ in results}
    assert len(results) == ROUNDS and points <= {"start", "listening", "stop"}
    elapsed = time.monotonic() - began
    print(f"kill9 seed {seed}: {ROUNDS} rounds in {elapsed:.0f} s")
    assert elapsed < 180, f"seed {seed}: {ROUNDS} rounds took {elapsed:.0f} s"

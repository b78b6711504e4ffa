"""The pages and the server show durations by one rule: web/shared/duration.js, run by node,
gives what live/l10n/durations.py gives, for halves, hours and odd fractions alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from live.l10n import clock, spoken

ROOT = Path(__file__).resolve().parents[2]


def cases() -> list[dict[str, object]]:
    seconds = [n / 4 for n in range(500)]  # every quarter second: halves included
    seconds += [59.5, 599.5, 3599.49, 3599.5, 3600, 3725.5, 86_399.5, 123_456.7, -1.0]
    return [
        {"seconds": s, "clock": clock(s), "en": spoken(s, "en"), "de": spoken(s, "de")}
        for s in seconds
    ]


def test_the_pages_formatter_agrees_with_the_server(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (deploy/run-tests.sh installs it)"
    file = tmp_path / "durations.json"
    file.write_text(json.dumps(cases()), encoding="utf-8")
    done = subprocess.run(
        [node, "--test", str(ROOT / "tests/js/duration.test.mjs")],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env={**os.environ, "LIVE_JS_DURATIONS": str(file)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 2" in done.stdout and "# skipped 0" in done.stdout, done.stdout

"""``live demo`` as a newcomer runs it: links printed per role, simulated calls live."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.server import free_port


def test_demo_prints_links_and_runs_three_calls(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "live.cli", "demo", "--port", str(port), "--data", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        links: dict[str, str] = {}
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while len(links) < 3 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.match(r"^(supervisor|agent|auditor): (http://\S+)$", line.strip())
            if match:
                links[match.group(1)] = match.group(2)
        assert set(links) == {"supervisor", "agent", "auditor"}, links
        assert links["supervisor"].startswith(f"http://127.0.0.1:{port}/auth/link?token=")
        token = links["supervisor"].split("token=", 1)[1]
        calls: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/calls", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                calls = json.load(response)["calls"]
            if len(calls) >= 3:
                break
            time.sleep(0.2)
        assert len(calls) >= 3
        assert {c["source"] for c in calls} == {"twilio"}
        assert len({c["agent_id"] for c in calls}) == 3
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0

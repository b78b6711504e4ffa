"""``live demo``'s data as a newcomer meets it: links that survive a restart and say whom
they sign in as, and ``live audit`` run beside a demo finding the demo's ledger."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from live.auth import UserStore
from live.demo.links import TOKENS_FILE, demo_links
from tests.helpers import free_port
from tests.integration.test_audit_cli import _fill

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"^(supervisor|agent|auditor): (http://\S+)$")


def test_links_are_kept_per_data_dir_and_replaced_when_they_stop_working(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first = demo_links(UserStore(data / "users.json"), data, "http://127.0.0.1:8080")
    again = demo_links(UserStore(data / "users.json"), data, "http://127.0.0.1:8080")
    assert [link.url for link in again] == [link.url for link in first]
    assert stat.S_IMODE((data / TOKENS_FILE).stat().st_mode) == 0o600
    users = UserStore(data / "users.json")
    for link in again:
        holder = users.by_token(link.url.split("token=", 1)[1])
        assert holder is not None and holder.user_id == link.person.user_id
    agent = next(link for link in again if link.person.label == "agent")
    assert agent.who() == "signs in as Alex Agent (agent-1), the agent of the first simulated call (billing)"
    # A reset user store: the kept tokens no longer sign anyone in, so new ones are issued.
    (data / "users.json").unlink()
    fresh = demo_links(UserStore(data / "users.json"), data, "http://127.0.0.1:8080")
    assert all(a.url != b.url for a, b in zip(fresh, first, strict=True))
    assert all(UserStore(data / "users.json").by_token(link.url.split("token=", 1)[1]) for link in fresh)


def demo_links_printed(data: Path) -> tuple[dict[str, str], list[str]]:
    """Start ``live demo``, read its links and "signs in as" lines, stop it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "live.cli", "demo", "--port", str(port), "--data", str(data), "--siprec-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    links: dict[str, str] = {}
    who: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60  # a bound on a broken run, not a synchronisation
        while len(who) < 3 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if match := LINK.match(line.strip()):
                links[match.group(1)] = match.group(2)
            elif line.startswith("  signs in as "):
                who.append(line.strip())
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0
    return links, who


def test_demo_links_survive_a_restart_and_name_the_agent(tmp_path: Path) -> None:
    links, who = demo_links_printed(tmp_path / "demo")
    assert set(links) == {"supervisor", "agent", "auditor"}, links
    assert "signs in as Alex Agent (agent-1), the agent of the first simulated call (billing)" in who
    again, _ = demo_links_printed(tmp_path / "demo")  # on another free port: compare tokens
    assert {k: v.split("token=", 1)[1] for k, v in again.items()} == {
        k: v.split("token=", 1)[1] for k, v in links.items()
    }


def audit_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live.cli", "audit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_audit_beside_a_demo_uses_the_demos_ledger_and_says_so(tmp_path: Path) -> None:
    asyncio.run(_fill(tmp_path / "live-demo-data" / "ledger.sqlite3"))
    result = audit_in(tmp_path, "verify")
    assert result.returncode == 0, result.stderr
    assert "using the demo's in ./live-demo-data" in result.stderr
    assert not (tmp_path / "live-data").exists()
    # A ledger in ./live-data is the one used, silently.
    asyncio.run(_fill(tmp_path / "live-data" / "ledger.sqlite3"))
    result = audit_in(tmp_path, "verify")
    assert result.returncode == 0 and "demo" not in result.stderr


def test_audit_with_neither_ledger_fails_clearly(tmp_path: Path) -> None:
    result = audit_in(tmp_path, "verify")
    assert result.returncode == 1
    assert "there is no ledger at live-data/ledger.sqlite3" in result.stderr
    assert not (tmp_path / "live-data").exists()

"""How a benchmark sets up ``live serve``: one supervisor token, a fresh data dir, its settings.

The supervisor and its API token are made once per run with the real CLI (``live users add``,
``live users token``) in a template data dir; every server then starts from a fresh data dir
seeded with the template's user store and session key.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.bench.child import ROOT

INGEST_SECRET = "bench-ingest-secret"  # live serve trusts no loopback sender
USER = "bench-supervisor"


def make_supervisor(template: Path, python: str, env: dict[str, str]) -> str:
    """Add the benchmark's supervisor to ``template``; its API token."""
    cli = [python, "-m", "live.cli", "--log-level", "WARNING"]
    env = env | {"LIVE_DATA_DIR": str(template)}
    subprocess.run(
        cli + ["users", "add", USER, "--role", "supervisor", "--data", str(template)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        cli + ["users", "token", USER, "--data", str(template)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def seed_data_dir(template: Path, data_dir: Path) -> None:
    """Give a fresh server the template's users and session key."""
    for name in ("users.json", "session.key"):
        if (template / name).exists():
            shutil.copy2(template / name, data_dir / name)


def server_env(data_dir: Path) -> dict[str, str]:
    """The ``LIVE_*`` settings every benchmarked ``live serve`` gets."""
    return {
        "LIVE_INGEST_SECRET": INGEST_SECRET,
        # One supervisor token stands for every simulated listener.
        "LIVE_LISTENS_PER_SUPERVISOR": "100000",
        "LIVE_LISTENS_PER_MINUTE": "100000",
        "LIVE_LOG_LEVEL": "WARNING",
        "LIVE_DATA_DIR": str(data_dir),
    }

"""The ``live`` command as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from live.auth import UserStore

ROOT = Path(__file__).resolve().parents[2]


def live(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "live.cli", *args], capture_output=True, text=True, timeout=60)


def test_users_add_list_token_remove(tmp_path: Path) -> None:
    data = str(tmp_path)
    assert live("users", "add", "kim", "--role", "supervisor", "--name", "Kim K", "--teams", "billing,sales", "--data", data).returncode == 0
    listing = live("users", "list", "--data", data).stdout
    assert "kim\tsupervisor\tbilling,sales\tKim K" in listing
    token = live("users", "token", "kim", "--data", data).stdout.strip()
    user = UserStore(tmp_path / "users.json").by_token(token)
    assert user is not None and user.user_id == "kim"
    assert token not in (tmp_path / "users.json").read_text()  # only its hash is stored
    duplicate = live("users", "add", "kim", "--data", data)
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr
    assert live("users", "remove", "kim", "--data", data).returncode == 0
    assert UserStore(tmp_path / "users.json").by_token(token) is None


def test_policy_check_reports_lines(tmp_path: Path) -> None:
    good = live("policy", "check", str(ROOT / "deploy" / "policy.example.toml"))
    assert good.returncode == 0, good.stderr
    assert "is valid" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "1"\npurposes = []\n')
    result = live("policy", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:2: purposes:" in result.stderr


def test_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "live.cli", "users", "list", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"LIVE_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 1
    assert "port" in result.stderr


def test_serve_refuses_loopback_ingest_trust(tmp_path: Path) -> None:
    """Only `live demo` lets loopback senders ingest without a secret."""
    result = subprocess.run(
        [sys.executable, "-m", "live.cli", "serve", "--data", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "LIVE_INGEST_LOOPBACK_TRUST": "1"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "ingest_loopback_trust" in result.stderr and "LIVE_INGEST_SECRET" in result.stderr

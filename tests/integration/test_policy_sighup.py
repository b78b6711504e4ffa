"""``live serve`` reloads the policy file on SIGHUP; a bad file keeps the policy in force."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

from tests.integration.test_policy_enforced import policy_text
from tests.support.process import live_cli, start_serve
from tests.support.wait import wait_for_blocking


def policy_version(base_url: str, token: str) -> str:
    request = urllib.request.Request(f"{base_url}/api/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(json.load(response)["policy_version"])


def wait_version(base_url: str, token: str, version: str) -> str:
    wait_for_blocking(
        lambda: policy_version(base_url, token) == version, 30, f"policy version {version}"
    )
    return version


def test_sighup_reloads_the_policy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live_cli(data, "users", "add", "ari", "--role", "admin")
    token = live_cli(data, "users", "token", "ari")
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text(version="h-1"), encoding="utf-8")
    proc = start_serve(data, {"LIVE_POLICY_FILE": str(policy)})
    try:
        assert policy_version(proc.base_url, token) == "h-1"
        policy.write_text(policy_text(version="h-2"), encoding="utf-8")
        proc.process.send_signal(signal.SIGHUP)
        assert wait_version(proc.base_url, token, "h-2") == "h-2"

        policy.write_text('version = "h-3"\npurposes = []\n', encoding="utf-8")
        proc.process.send_signal(signal.SIGHUP)
        wait_for_blocking(lambda: "policy not reloaded" in proc.log(), 30, "the refused reload in the log")
        assert proc.process.poll() is None
        assert policy_version(proc.base_url, token) == "h-2"
        assert "policy not reloaded" in proc.log()
    finally:
        assert proc.stop() == 0, proc.log()

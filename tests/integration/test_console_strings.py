"""Every refusal the server can answer the console with has words in English and German.

The codes are collected from the code itself (the policy's reasons and every ``code=`` the
listen, stop, consent and payment-pause paths can raise), so a new refusal without a
translation fails here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from live.errors import BusUnavailable, LedgerUnavailable, ServiceUnavailable, TooManyRequests
from live.policy.decide import Reason

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (
    "live/listens/service.py",
    "live/calls/registry.py",
    "live/policy_holder.py",
    "live/server/api.py",
    "live/server/schemas.py",  # the codes of bad request bodies (``error_code = "…"``)
    "live/server/security.py",
    "live/server/abuse.py",
)


def server_codes() -> set[str]:
    codes = {r.value for r in Reason if r is not Reason.OK}
    codes |= {cls.code for cls in (BusUnavailable, LedgerUnavailable, ServiceUnavailable, TooManyRequests)}
    for source in SOURCES:
        codes |= set(re.findall(r'code\s*=\s*"([a-z_]+)"', (ROOT / source).read_text(encoding="utf-8")))
    return codes


def console_strings() -> dict[str, dict[str, str]]:
    node = shutil.which("node")
    assert node is not None, "node is needed (deploy/run-tests.sh installs it)"
    module = (ROOT / "web/console/strings.js").as_uri()
    out = subprocess.run(
        [node, "--input-type=module", "-e", f"import {{ STRINGS }} from '{module}'; console.log(JSON.stringify(STRINGS))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(json.loads(out))


def test_every_refusal_code_is_translated() -> None:
    codes = server_codes()
    assert {"outside_team", "quota_agent_month", "too_many_listens", "csrf", "ledger_unavailable"} <= codes
    strings = console_strings()
    for lang in ("en", "de"):
        missing = sorted(c for c in codes if f"error.{c}" not in strings[lang])
        assert not missing, f"{lang}: no words for {missing}"
    # Really translated, not copied.
    assert all(strings["en"][f"error.{c}"] != strings["de"][f"error.{c}"] for c in codes)

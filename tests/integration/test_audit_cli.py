"""``live audit …`` as an auditor runs it: a separate process over a real ledger file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from live.audit import SqliteLedger

# 2026-03-02 09:00:00 UTC
T0 = 1_772_442_000.0


def audit(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``live audit ARGS`` (run as ``python -m live.cli audit``)."""
    return subprocess.run(
        [sys.executable, "-m", "live.cli", "audit", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


async def _fill(path: Path) -> str:
    ledger = SqliteLedger(path, checkpoint_interval_s=0, checkpoint_every=4)
    async with ledger:
        for n in range(6):
            agent = "agent-7" if n % 2 == 0 else "agent-8"
            at = T0 + n * 3600
            await ledger.append(
                "listen.started",
                actor="sam",
                at=at,
                session_id=f"ls_{n}",
                call_id=f"CA{n}",
                agent_id=agent,
                user_id="sam",
                display_name="Sam Supervisor",
                purpose="quality",
                legs=["agent", "caller"],
                node_id="node-a",
                started_at=at,
                policy_version="bv-1",
            )
            await ledger.append(
                "listen.ended",
                actor="system",
                at=at + 95,
                session_id=f"ls_{n}",
                call_id=f"CA{n}",
                agent_id=agent,
                reason="stopped",
                ended_at=at + 95,
                duration_s=95.0,
            )
        await ledger.append(
            "listen.refused",
            actor="kim",
            at=T0 + 10,
            call_id="CA9",
            agent_id="agent-7",
            purpose="quality",
            reason="outside your teams",
            code="outside_team",
            role="supervisor",
            user_id="kim",
        )
        await ledger.sign_checkpoint()
        return ledger.verifier_key()


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, str]:
    """A data directory holding a ledger (13 entries) and its signing key."""
    key = asyncio.run(_fill(tmp_path / "ledger.sqlite3"))
    return tmp_path, key


def export_made(data_dir: Path) -> list[dict[str, object]]:
    with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT fields FROM ledger_entries WHERE kind = 'export.made' ORDER BY seq"
        )
        return [json.loads(r[0]) for r in rows]


def test_verify_ok(data: tuple[Path, str]) -> None:
    data_dir, key = data
    result = audit("verify", "--data", str(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "entries      13 (tree size 13)" in result.stdout
    assert "checkpoints  4" in result.stdout
    assert f"key          {key}" in result.stdout
    assert "OK: every entry and checkpoint verifies" in result.stdout
    as_json = json.loads(audit("verify", "--json", "--data", str(data_dir)).stdout)
    assert as_json["ok"] is True and as_json["tree_size"] == 13


@pytest.mark.parametrize("column", ["fields", "leaf_hash"])
def test_verify_names_the_first_tampered_entry(data: tuple[Path, str], column: str) -> None:
    data_dir, _ = data
    with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
        (value,) = db.execute(f"SELECT {column} FROM ledger_entries WHERE seq = 5").fetchone()
        raw = bytearray(value.encode() if isinstance(value, str) else value)
        index = raw.index(b"95") if column == "fields" else 7
        raw[index] ^= 0x01  # one flipped bit: "95" -> "85", or a different hash byte
        new = raw.decode() if isinstance(value, str) else bytes(raw)
        db.execute(f"UPDATE ledger_entries SET {column} = ? WHERE seq = 5", (new,))
    result = audit("verify", "--data", str(data_dir))
    assert result.returncode == 1
    assert "first bad entry: 5" in result.stdout
    assert "entry 5:" in result.stdout
    report = json.loads(audit("verify", "--json", "--data", str(data_dir)).stdout)
    assert report["ok"] is False and report["first_bad_seq"] == 5


def test_verify_catches_a_deleted_entry(data: tuple[Path, str]) -> None:
    data_dir, _ = data
    with sqlite3.connect(data_dir / "ledger.sqlite3") as db:
        db.execute("DELETE FROM ledger_entries WHERE seq = 3")
    result = audit("verify", "--data", str(data_dir))
    assert result.returncode == 1
    assert "first bad entry: 3" in result.stdout


def test_verify_without_a_ledger_fails_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    result = audit("verify", "--data", str(empty))
    assert result.returncode == 1
    assert "there is no ledger" in result.stderr
    assert not empty.exists()


def test_export_in_three_formats_and_verify_the_bundle(data: tuple[Path, str]) -> None:
    data_dir, key = data
    out = data_dir / "out"
    out.mkdir()
    bundle = out / "agent-7.jsonl"
    for fmt, path in (
        ("jsonl", bundle),
        ("csv", out / "agent-7.csv"),
        ("pdf", out / "agent-7.pdf"),
    ):
        result = audit(
            "export",
            "--agent",
            "agent-7",
            "--format",
            fmt,
            "--out",
            str(path),
            "--data",
            str(data_dir),
        )
        assert result.returncode == 0, result.stderr
        assert "agent-7" in result.stderr

    header, *lines = [json.loads(line) for line in bundle.read_text().splitlines()]
    assert header["verifier_key"] == key and header["scope"]["agent_id"] == "agent-7"
    assert len(lines) == 7  # three sessions (start + end) and one refusal
    assert "Sam" not in bundle.read_text()  # listeners by role only: no personal details

    rows = list(csv.DictReader(io.StringIO((out / "agent-7.csv").read_text())))
    assert [r["session_id"] for r in rows] == ["ls_0", "ls_2", "ls_4"]
    assert {r["listener"] for r in rows} == {"Sam Supervisor"}  # the built-in policy discloses names
    assert {r["duration"] for r in rows} == {"1:35"} and {r["policy_version"] for r in rows} == {
        "bv-1"
    }
    assert [r["time"] for r in rows] == ["09:00:00", "11:00:00", "13:00:00"]

    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "agent-7.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Listening in on the calls of agent-7" in text and "3 listen sessions" in text
    assert key in text.replace("\n", "")

    # Every export is on record, and the log still verifies.
    made = export_made(data_dir)
    assert [(m["format"], m["agent_id"], m["entries"]) for m in made] == [
        ("jsonl", "agent-7", 7),
        ("csv", "agent-7", 3),
        ("pdf", "agent-7", 3),
    ]
    assert all(m["scope"] == "agent" and m["role"] == "operator" for m in made)
    assert audit("verify", "--data", str(data_dir)).returncode == 0

    checked = audit("verify-bundle", str(bundle), "--key", key)
    assert checked.returncode == 0, checked.stdout
    assert "ok: 7 entries" in checked.stdout and "warning" not in checked.stdout
    assert "3 listen.started" in checked.stdout
    own_key = audit("verify-bundle", str(bundle))  # the key inside the bundle
    assert (
        own_key.returncode == 0
        and "warning: checked with the key inside the bundle" in own_key.stdout
    )
    from_stdin = audit("verify-bundle", "-", "--key", key, stdin=bundle.read_text())
    assert from_stdin.returncode == 0


def test_verify_bundle_fails_on_a_modified_bundle(data: tuple[Path, str]) -> None:
    data_dir, key = data
    bundle = data_dir / "b.jsonl"
    assert (
        audit(
            "export",
            "--agent",
            "agent-8",
            "--format",
            "jsonl",
            "--out",
            str(bundle),
            "--data",
            str(data_dir),
        ).returncode
        == 0
    )
    lines = bundle.read_text().splitlines()
    entry = json.loads(lines[2])
    assert entry["seq"] == 3
    # Shorten a listen in its leaf: the proof no longer leads to the signed root.
    entry["leaf"] = entry["leaf"].replace('"duration_s":95', '"duration_s":9')
    lines[2] = json.dumps(entry)
    modified = data_dir / "modified.jsonl"
    modified.write_text("\n".join(lines) + "\n")
    result = audit("verify-bundle", str(modified), "--key", key)
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "entry 3" in result.stdout

    dropped = data_dir / "dropped.jsonl"
    dropped.write_text("\n".join(bundle.read_text().splitlines()[:-1]) + "\n")
    result = audit("verify-bundle", str(dropped), "--key", key)
    assert result.returncode == 1 and "lines were removed" in result.stdout

    other_key = "other.log+01234567+AUq0GnP7aMjvUULGlRIfMKPkx3yD46SuIUSMQa2DRoBX"
    result = audit("verify-bundle", str(bundle), "--key", other_key)
    assert result.returncode == 1 and "checkpoint does not verify" in result.stdout


def quiet_policy(directory: Path) -> Path:
    """The built-in policy with ``[disclosure] listener_names = false``."""
    default = (Path(__file__).resolve().parents[2] / "live/policy/default.toml").read_text(encoding="utf-8")
    path = directory / "quiet-policy.toml"
    path.write_text(default.replace("listener_names = true", "listener_names = false"), encoding="utf-8")
    return path


def test_export_with_names_and_a_period(data: tuple[Path, str]) -> None:
    data_dir, _ = data
    (data_dir / "users.json").write_text(
        json.dumps({"users": {"sam": {"display_name": "Sam Supervisor", "role": "supervisor"}}})
    )
    result = audit(
        "export",
        "--agent",
        "agent-7",
        "--format",
        "csv",
        "--out",
        "-",
        "--from",
        "2026-03-02T10:00:00+00:00",
        "--to",
        "2026-03-02",
        "--data",
        str(data_dir),
        env={"LIVE_POLICY_FILE": str(quiet_policy(data_dir))},
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # The policy in force discloses no listener names: roles only, unless asked.
    assert [(r["session_id"], r["listener"]) for r in rows] == [
        ("ls_2", "supervisor"),
        ("ls_4", "supervisor"),
    ]
    named = audit(
        "export",
        "--agent",
        "agent-7",
        "--format",
        "csv",
        "--out",
        "-",
        "--listener-names",
        "--tz",
        "Europe/Berlin",
        "--data",
        str(data_dir),
    )
    rows = list(csv.DictReader(io.StringIO(named.stdout)))
    assert {r["listener"] for r in rows} == {"Sam Supervisor"}
    assert rows[0]["time"] == "10:00:00" and rows[0]["timezone"] == "Europe/Berlin"
    # The built-in policy discloses names: that is the default without a flag.
    default = audit("export", "--agent", "agent-7", "--format", "csv", "--out", "-", "--data", str(data_dir))
    assert {r["listener"] for r in csv.DictReader(io.StringIO(default.stdout))} == {"Sam Supervisor"}
    hidden = audit(
        "export", "--agent", "agent-7", "--format", "csv", "--out", "-", "--no-listener-names", "--data", str(data_dir)
    )
    assert {r["listener"] for r in csv.DictReader(io.StringIO(hidden.stdout))} == {"supervisor"}


def test_report_pdf_and_csv_with_a_team_map(data: tuple[Path, str]) -> None:
    data_dir, _ = data
    teams = data_dir / "agents.toml"
    teams.write_text(
        '[teams.billing]\nagents = ["agent-7"]\n[teams.support]\nagents = ["agent-8"]\n'
    )
    result = audit(
        "report",
        "--month",
        "2026-03",
        "--format",
        "csv",
        "--out",
        "-",
        "--team-map",
        str(teams),
        "--data",
        str(data_dir),
    )
    assert result.returncode == 0, result.stderr
    rows = {r["team"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert (rows["billing"]["listens"], rows["billing"]["refused"]) == ("3", "1")
    assert (rows["support"]["listens"], rows["support"]["minutes"]) == ("3", "4.8")
    assert rows["total"]["listens"] == "6"

    pdf = data_dir / "report.pdf"
    result = audit(
        "report",
        "--month",
        "2026-03",
        "--format",
        "pdf",
        "--out",
        str(pdf),
        "--teams-file",
        str(teams),
        "--lang",
        "de",
        "--data",
        str(data_dir),
    )
    assert result.returncode == 0, result.stderr
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Bericht zum Mithören für den Betriebsrat: 2026-03" in text
    assert "billing" in text and "support" in text and "agents.toml" in text

    without_map = audit(
        "report", "--month", "2026-03", "--format", "csv", "--out", "-", "--data", str(data_dir)
    )
    assert [r["team"] for r in csv.DictReader(io.StringIO(without_map.stdout))] == ["all", "total"]
    assert [m["scope"] for m in export_made(data_dir)] == ["team-report"] * 3


def test_bad_arguments_are_clear_errors(data: tuple[Path, str]) -> None:
    data_dir, _ = data
    bad_month = audit(
        "report", "--month", "2026-3", "--format", "csv", "--out", "-", "--data", str(data_dir)
    )
    assert bad_month.returncode == 1 and "month must be YYYY-MM" in bad_month.stderr
    bad_date = audit(
        "export",
        "--agent",
        "a",
        "--format",
        "csv",
        "--out",
        "-",
        "--from",
        "soon",
        "--data",
        str(data_dir),
    )
    assert bad_date.returncode == 1 and "is not a date" in bad_date.stderr
    bad_zone = audit(
        "export",
        "--agent",
        "a",
        "--format",
        "csv",
        "--out",
        "-",
        "--tz",
        "Mars/Base",
        "--data",
        str(data_dir),
    )
    assert bad_zone.returncode == 1 and "time zone" in bad_zone.stderr
    bad_format = audit(
        "export", "--agent", "a", "--format", "xml", "--out", "-", "--data", str(data_dir)
    )
    assert bad_format.returncode == 2  # argparse: usage error
    assert export_made(data_dir) == []  # nothing was exported, nothing recorded

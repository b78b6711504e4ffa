"""``live audit verify`` with explicit trust: ``--key``, ``--witness``, ``--checkpoint``,
``LIVE_LEDGER_TRUSTED_KEYS``; the loud fallback to the key file; ``rotate-key``."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from live.audit.checkpoint import CheckpointSigner
from live.audit.cosignature import WitnessSigner, add_signature_lines
from live.audit.keys import KEY_FILE
from tests.integration.test_audit_cli import _fill, audit


def _ledger_dir(tmp_path: Path) -> tuple[Path, str]:
    key = asyncio.run(_fill(tmp_path / "ledger.sqlite3"))
    return tmp_path, key


def test_without_a_trusted_key_the_fallback_is_loud(tmp_path: Path) -> None:
    data, key = _ledger_dir(tmp_path)
    fallback = audit("verify", "--data", str(data))
    assert fallback.returncode == 0
    assert "WARNING: no trusted key was given" in fallback.stdout
    assert "WARNING: no trusted key was given" in fallback.stderr
    given = audit("verify", "--data", str(data), "--key", key)
    assert given.returncode == 0 and "WARNING" not in given.stdout + given.stderr
    from_env = audit("verify", "--data", str(data), env={"LIVE_LEDGER_TRUSTED_KEYS": key})
    assert from_env.returncode == 0 and "WARNING" not in from_env.stdout


def test_a_replaced_key_file_and_re_signed_log_fails_against_the_trusted_key(
    tmp_path: Path,
) -> None:
    data, key = _ledger_dir(tmp_path / "a")
    origin = key.split("+")[0]
    (data / "ledger.sqlite3").unlink()
    (data / KEY_FILE).unlink()
    forged = asyncio.run(_fill(data / "ledger.sqlite3"))  # the same history, a new key
    assert forged != key and forged.split("+")[0] == origin
    assert audit("verify", "--data", str(data)).returncode == 0  # only the warning tells
    result = audit("verify", "--data", str(data), "--key", key)
    assert result.returncode == 1
    assert "first bad entry: 0" in result.stdout
    assert "the key file beside the log is not a trusted key" in result.stdout


def test_a_witness_checkpoint_catches_a_truncated_log(tmp_path: Path) -> None:
    data, key = _ledger_dir(tmp_path)
    witness = WitnessSigner.generate("council.example/w")
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        (note,) = db.execute(
            "SELECT note FROM ledger_checkpoints ORDER BY tree_size DESC, id DESC LIMIT 1"
        ).fetchone()
    body = note[: note.index("\n\n") + 1]
    state = tmp_path / "witness-state"
    state.mkdir()
    (state / "checkpoint").write_text(
        add_signature_lines(note, [witness.cosign(body, int(time.time()))])
    )
    ok = audit(
        "verify", "--data", str(data), "--witness", witness.key.encode(), "--checkpoint", str(state)
    )
    assert ok.returncode == 0, ok.stdout
    size = int(body.split("\n")[1])
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        db.execute("DELETE FROM ledger_entries WHERE seq >= ?", (size - 2,))
        db.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (size - 2,))
    assert audit("verify", "--data", str(data), "--key", key).returncode == 0  # unseen
    caught = audit(
        "verify", "--data", str(data), "--witness", witness.key.encode(), "--checkpoint", str(state)
    )
    assert caught.returncode == 1
    assert f"first bad entry: {size - 2}" in caught.stdout


def test_rotate_key_is_followed_with_the_old_key(tmp_path: Path) -> None:
    data, old = _ledger_dir(tmp_path)
    new_pem = tmp_path / "new.pem"
    new_pem.write_bytes(CheckpointSigner.generate("x").to_pem())
    rotated = audit("rotate-key", "--data", str(data), "--new-key", str(new_pem))
    assert rotated.returncode == 0, rotated.stderr
    assert "key.rotated at entry 13" in rotated.stdout
    result = audit("verify", "--data", str(data), "--key", old)
    assert result.returncode == 0, result.stdout
    assert "not a trusted key" not in result.stdout
    assert (data / KEY_FILE).read_bytes() == new_pem.read_bytes()

"""The embedded ledger as a file on disk: bytes flipped in the file, the key file, the origin."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from live.audit import Ledger, LedgerEntry, MerkleLedger, open_ledger
from live.audit.keys import KEY_FILE, load_or_create_key
from live.audit.ledger import PostgresLedger, SqliteLedger
from live.errors import ConfigError, LedgerUnavailable

T0 = 1_750_000_000.0


async def fill(ledger: MerkleLedger, n: int) -> None:
    for i in range(n):
        await ledger.append(
            "listen.started",
            actor="sup-3",
            at=T0 + i,
            session_id=f"ls_{i:03d}",
            call_id=f"CA{i:03d}",
            agent_id="agent-7",
            user_id="sup-3",
            display_name=f"Supervisor Number {i:03d}",
            purpose="quality",
            legs=["agent"],
            node_id="node-a",
            started_at=T0 + i,
        )


def flip_byte(path: Path, needle: bytes, offset: int = 0) -> None:
    """Change one byte of the database file where ``needle`` is (exactly once)."""
    data = bytearray(path.read_bytes())
    assert data.count(needle) == 1, data.count(needle)
    at = data.index(needle) + offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("needle", "offset", "code"),
    [
        (b'"purpose":"quality","session_id":"ls_011"', 12, "leaf_mismatch"),
        (b"Supervisor Number 011", 19, "details_mismatch"),
    ],
    ids=["entry", "details"],
)
async def test_one_flipped_byte_in_the_file_is_named(
    tmp_path: Path, needle: bytes, offset: int, code: str
) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path, checkpoint_interval_s=0, checkpoint_every=4)
    await ledger.open()
    await fill(ledger, 20)
    assert (await ledger.verify()).ok
    await ledger.aclose()  # the WAL is checkpointed into the file on close
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    flip_byte(path, needle, offset)
    await ledger.open()
    try:
        report = await ledger.verify()
    finally:
        await ledger.aclose()
    assert not report.ok
    assert report.first_bad_seq == 11
    assert report.problems[0].code == code
    assert report.problems[0].message.startswith("entry 11: ")


async def test_the_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    ledger = open_ledger("", tmp_path / "data" / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    key = ledger.verifier_key()
    await ledger.aclose()
    key_file = tmp_path / "data" / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    await ledger.open()
    assert ledger.verifier_key() == key
    await ledger.aclose()


def test_two_processes_creating_the_key_at_once_get_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    keys = [load_or_create_key(path, "log.example") for _ in range(2)]
    assert keys[0].verifier_key() == keys[1].verifier_key()
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temporary left behind


async def test_a_bad_key_file_refuses_to_open(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key")
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    with pytest.raises(LedgerUnavailable, match="signing key"):
        await ledger.open()


async def test_the_origin_is_fixed_when_the_log_is_created(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path, origin="cc.example/ledger", checkpoint_interval_s=0)
    await ledger.open()
    note = await ledger.checkpoint()
    await ledger.aclose()
    assert note.startswith("cc.example/ledger\n0\n")
    # Opened later without configuration (say the host was renamed): same origin.
    again = SqliteLedger(path, checkpoint_interval_s=0)
    await again.open()
    assert again.origin == "cc.example/ledger"
    assert again.verifier_key().startswith("cc.example/ledger+")
    await again.aclose()
    other = SqliteLedger(path, origin="other.example/ledger", checkpoint_interval_s=0)
    with pytest.raises(ConfigError, match="has origin 'cc.example/ledger'"):
        await other.open()


async def test_a_store_that_cannot_be_written_fails_closed(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    try:
        db = sqlite3.connect(tmp_path / "ledger.sqlite3")
        db.execute("DROP TABLE ledger_details")
        db.close()
        with pytest.raises(LedgerUnavailable):
            await fill(ledger, 1)
        # Nothing half-written is left in the tree: the next append rebuilds from storage.
        assert (await ledger.head())[0] == 0
    finally:
        await ledger.aclose()


async def test_open_ledger_selects_the_store(tmp_path: Path) -> None:
    assert isinstance(open_ledger("", tmp_path / "a.db"), SqliteLedger)
    sqlite = open_ledger(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "a.db")
    assert isinstance(sqlite, SqliteLedger) and sqlite.path == tmp_path / "b.db"
    assert sqlite.key_path == tmp_path / KEY_FILE
    pg = open_ledger("postgresql://u:secret@db.example/live", tmp_path / "a.db")
    assert isinstance(pg, PostgresLedger)
    assert "secret" not in pg.store.description
    with pytest.raises(LedgerUnavailable, match="unsupported"):
        open_ledger("mysql://x", tmp_path / "a.db")


async def test_the_service_contract_still_holds(tmp_path: Path) -> None:
    """What ``live.listens`` and ``live.housekeeping`` call, with the arguments it passes."""
    ledger: Ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    await ledger.open()
    try:
        seq = await ledger.append(
            "listen.started",
            actor="sup",
            at=T0,
            session_id="ls_1",
            call_id="CA1",
            agent_id="agent-1",
            user_id="sup",
            display_name="Sam",
            purpose="quality",
            legs=["agent", "caller"],
            node_id="node-8080",
            started_at=T0,
        )
        await ledger.append(
            "listen.ended",
            actor="system",
            at=T0 + 5,
            session_id="ls_1",
            call_id="CA1",
            agent_id="agent-1",
            reason="call-ended",
            ended_at=T0 + 5,
            duration_s=5.0,
            dropped_packets=0,
        )
        await ledger.heartbeat("node-8080", T0 + 6)
        assert await ledger.recover("node-8080", T0 + 7) == []
        entries = await ledger.entries(session_id="ls_1")
        assert all(isinstance(e, LedgerEntry) for e in entries)
        assert [e.seq for e in entries] == [seq, seq + 1]
        assert entries[0].to_json()["display_name"] == "Sam"
        assert entries[1].fields["reason"] == "call-ended"
        assert (await ledger.verify()).ok
    finally:
        await ledger.aclose()
    assert os.path.exists(tmp_path / KEY_FILE)

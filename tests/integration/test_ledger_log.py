"""The verifiable ledger on a real store, SQLite file and PostgreSQL: the same suite on both.

Every tampering test changes the stored rows the way someone with database access would
(behind the server's back, with plain SQL) and checks that ``verify`` fails and names the
first bad entry exactly.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from live.audit import EventError, MerkleLedger, open_ledger
from live.audit.canonical import CanonicalError, canonical_json
from live.audit.checkpoint import CheckpointSigner, verify_note
from live.audit.entry import leaf_bytes
from live.audit.keys import KEY_FILE, LogKey
from live.audit.merkle import leaf_hash
from live.audit.verify import VerifyReport
from live.errors import LedgerUnavailable
from tests import conftest_pg
from tests.support.wait import wait_for

postgres_server = conftest_pg.postgres_server
postgres_db_url = conftest_pg.postgres_db_url

T0 = 1_750_000_000.0


@dataclass
class Backend:
    """One real store, plus raw SQL access to it for tampering."""

    name: str
    url: str
    data_dir: Path

    def ledger(self, **options: Any) -> MerkleLedger:
        options.setdefault("checkpoint_every", 8)
        options.setdefault("checkpoint_interval_s", 0)
        return open_ledger(self.url, self.data_dir / "ledger.sqlite3", **options)

    async def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) outside the ledger; returns its rows."""
        if self.name == "sqlite":
            db = sqlite3.connect(self.data_dir / "ledger.sqlite3", isolation_level=None)
            try:
                return [tuple(r) for r in db.execute(query, args).fetchall()]
            finally:
                db.close()
        numbered = iter(range(1, 100))
        query = re.sub(r"\?", lambda _: f"${next(numbered)}", query)
        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", "", tmp_path)
    return Backend("postgres", request.getfixturevalue("postgres_db_url"), tmp_path)


@pytest.fixture
async def ledger(backend: Backend) -> AsyncIterator[MerkleLedger]:
    ledger = backend.ledger()
    await ledger.open()
    yield ledger
    await ledger.aclose()


async def listen(ledger: MerkleLedger, n: int, *, agent: str = "agent-7") -> None:
    """Append ``n`` listen sessions (a start and an end each)."""
    for i in range(n):
        at = T0 + i * 60
        session = f"ls_{i:04d}"
        await ledger.append(
            "listen.started",
            actor="sup-3",
            at=at,
            session_id=session,
            call_id=f"CA{i}",
            agent_id=agent,
            user_id="sup-3",
            display_name="Sam Supervisor",
            purpose="quality",
            legs=["agent", "caller"],
            node_id="node-a",
            started_at=at,
        )
        await ledger.append(
            "listen.ended",
            actor="sup-3",
            at=at + 30,
            session_id=session,
            call_id=f"CA{i}",
            agent_id=agent,
            reason="stopped",
            ended_at=at + 30,
            duration_s=30.0,
        )


async def reopened(backend: Backend, ledger: MerkleLedger) -> VerifyReport:
    """Close, reopen (the tree is rebuilt from storage) and verify."""
    await ledger.aclose()
    await ledger.open()
    return await ledger.verify()


def assert_fails_at(report: VerifyReport, seq: int, code: str) -> None:
    assert not report.ok, report
    assert report.first_bad_seq == seq, report.problems
    first = [p for p in report.problems if p.seq == seq]
    assert any(p.code == code for p in first), report.problems
    assert (
        f"entry {seq}" in report.problems[0].message
        or f"entries {seq}" in report.problems[0].message
    )


# --------------------------------------------------------------------------- the happy path


async def test_appends_verify_and_read_back(ledger: MerkleLedger) -> None:
    await listen(ledger, 10)
    report = await ledger.verify()
    assert report.ok, report.problems
    assert report.entries == report.tree_size == 20
    assert report.details_checked == 20  # a person acted in every entry
    started = await ledger.entries(kind="listen.started", agent_id="agent-7")
    assert [e.seq for e in started] == list(range(0, 20, 2))
    first = started[0]
    assert first.actor == "sup-3"
    assert first.fields["display_name"] == "Sam Supervisor"
    assert first.fields["purpose"] == "quality"
    assert first.to_json()["user_id"] == "sup-3"
    # The leaf holds the public part and the commitment only.
    assert b"Sam Supervisor" not in first.leaf() and b"sup-3" not in first.leaf()
    assert leaf_hash(first.leaf()) == first.leaf_hash
    assert [e.kind for e in await ledger.entries(session_id="ls_0003")] == [
        "listen.started",
        "listen.ended",
    ]


async def test_proofs_verify_against_signed_checkpoints(ledger: MerkleLedger) -> None:
    await listen(ledger, 3)
    old_note = await ledger.checkpoint()
    await listen(ledger, 5)
    new_note = await ledger.checkpoint()
    key = ledger.verifier_key()
    old = verify_note(old_note, key, origin=ledger.origin)
    new = verify_note(new_note, key, origin=ledger.origin)
    assert (old.size, new.size) == (6, 16)
    for seq in (0, 5):
        (await ledger.inclusion_proof(seq, old.size)).verify(old.root)
    for seq in (0, 7, 15):
        (await ledger.inclusion_proof(seq, new.size)).verify(new.root)
    (await ledger.consistency_proof(old.size, new.size)).verify(old.root, new.root)
    # The same note is returned while nothing new is appended.
    assert await ledger.checkpoint() == new_note


async def test_checkpoint_every_n_entries_and_at_open(backend: Backend) -> None:
    ledger = backend.ledger(checkpoint_every=4, checkpoint_interval_s=3600)
    await ledger.open()
    try:
        await listen(ledger, 5)  # 10 entries: checkpoints at open (0), 4, 8
        _, _, checkpoints = await ledger.store.read_all()
        sizes = [verify_note(c.note, ledger.verifier_key()).size for c in checkpoints]
        assert sizes == [0, 4, 8]
        assert all("\ntime " in c.note for c in checkpoints)
    finally:
        await ledger.aclose()


async def test_timer_signs_checkpoints_even_when_idle(backend: Backend) -> None:
    ledger = backend.ledger(checkpoint_interval_s=0.05)
    await ledger.open()
    try:
        await listen(ledger, 1)
        key = ledger.verifier_key()

        async def signed_thrice() -> list[Any] | None:
            _, _, checkpoints = await ledger.store.read_all()
            sizes = [verify_note(c.note, key).size for c in checkpoints]
            return checkpoints if sizes.count(2) >= 3 else None

        checkpoints = await wait_for(signed_thrice, 30, "three idle checkpoints of size 2")
    finally:
        await ledger.aclose()
    sizes = [verify_note(c.note, key).size for c in checkpoints]
    assert sizes.count(2) >= 3, sizes  # nothing appended, still signed again and again
    times = [c.signed_at for c in checkpoints]
    assert times == sorted(times)


async def start(ledger: MerkleLedger, n: int) -> int:
    """What the service does for one listen: append the start, then wait until a signed
    checkpoint covers it; returns the size of that checkpoint."""
    seq = await ledger.append(
        "listen.started", actor="sup-3", at=T0 + n, session_id=f"ls_{n}", agent_id="agent-7", purpose="quality"
    )
    size = await ledger.checkpoint_covering(seq)
    assert size > seq and ledger.signed_size >= size
    return size


async def test_concurrent_starts_share_one_signed_checkpoint(backend: Backend) -> None:
    ledger = backend.ledger(checkpoint_every=0, checkpoint_interval_s=3600)
    await ledger.open()  # signs the empty tree
    try:
        sizes = await asyncio.gather(*(start(ledger, n) for n in range(6)))
        _, _, checkpoints = await ledger.store.read_all()
        signed = [verify_note(c.note, ledger.verifier_key()).size for c in checkpoints]
        assert signed == [0, 6], signed  # one signature for the whole concurrent batch
        assert sizes == [6] * 6
        # Already covered: nothing is signed again.
        assert await ledger.checkpoint_covering(3) == 6
        assert len((await ledger.store.read_all())[2]) == 2
    finally:
        await ledger.aclose()


async def test_a_clean_close_signs_a_final_checkpoint_covering_the_last_entry(backend: Backend) -> None:
    ledger = backend.ledger(checkpoint_every=0, checkpoint_interval_s=3600)
    await ledger.open()
    await listen(ledger, 2)
    await ledger.aclose()
    reader = backend.ledger(checkpoint_every=0)  # timer off: a read-only tool signs nothing
    await reader.open()
    try:
        newest = await reader.store.latest_checkpoint()
        assert newest is not None and newest.tree_size == 4
        await reader.aclose()
        await reader.open()
        assert len((await reader.store.read_all())[2]) == 2  # at open and at close
    finally:
        await reader.aclose()


async def test_reopen_rebuilds_the_same_tree_with_the_same_key(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 4)
    size, root = await ledger.head()
    key = ledger.verifier_key()
    note = await ledger.checkpoint()
    await ledger.aclose()
    again = backend.ledger()
    await again.open()
    try:
        assert await again.head() == (size, root)
        assert again.verifier_key() == key
        assert await again.checkpoint() == note
        assert await again.append("notice.seen", actor="agent-7", at=T0, notice_id="n1") == size
    finally:
        await again.aclose()
    assert (backend.data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


async def test_recover_ends_open_sessions_at_the_last_heartbeat(ledger: MerkleLedger) -> None:
    await ledger.append(
        "listen.started",
        actor="sup-3",
        at=T0,
        session_id="ls_open",
        call_id="CA1",
        agent_id="agent-7",
        node_id="node-a",
        started_at=T0,
    )
    await ledger.append(
        "listen.started",
        actor="sup-4",
        at=T0,
        session_id="ls_other_node",
        call_id="CA2",
        agent_id="agent-8",
        node_id="node-b",
        started_at=T0,
    )
    await ledger.heartbeat("node-a", T0 + 42)
    assert await ledger.recover("node-a", T0 + 1000) == ["ls_open"]
    ended = await ledger.entries(session_id="ls_open", kind="listen.ended")
    assert len(ended) == 1
    assert ended[0].actor == "system"
    assert ended[0].fields["reason"] == "node-lost"
    assert ended[0].fields["ended_at"] == T0 + 42
    assert ended[0].fields["duration_s"] == 42
    assert await ledger.recover("node-a", T0 + 2000) == []
    assert (await ledger.verify()).ok


async def test_invalid_events_are_refused_before_anything_is_stored(ledger: MerkleLedger) -> None:
    with pytest.raises(EventError):
        await ledger.append("listen.bogus", actor="x", at=T0)
    with pytest.raises(CanonicalError):
        await ledger.append("leg.muted", actor="x", at=T0, session_id="s", leg=float("nan"))
    assert (await ledger.head())[0] == 0
    assert await ledger.append("leg.muted", actor="x", at=T0, session_id="s", leg="caller") == 0


# --------------------------------------------------------------------------- retention


async def test_retention_purge_keeps_the_log_verifying(ledger: MerkleLedger) -> None:
    await listen(ledger, 6)  # entries 0..11, at T0 .. T0+330
    old_note = await ledger.checkpoint()
    old = verify_note(old_note, ledger.verifier_key())
    erased = await ledger.erase_details(T0 + 151, at=T0 + 10_000)  # sessions 0, 1, 2
    assert erased == 6
    entries = await ledger.entries()
    purge = entries[-1]
    assert purge.kind == "purge.done" and purge.actor == "system"
    assert purge.fields == {"before": T0 + 151, "erased": 6}
    assert [e.details_erased for e in entries[:6]] == [True] * 6
    assert entries[0].actor == "user"  # what the leaf says; the name is gone
    assert "display_name" not in entries[0].fields and "user_id" not in entries[0].fields
    assert entries[0].fields["purpose"] == "quality"  # public fields stay
    assert entries[6].fields["display_name"] == "Sam Supervisor"  # newer: untouched
    # The old checkpoint still verifies and still includes the erased entries.
    (await ledger.inclusion_proof(0, old.size)).verify(old.root)
    report = await ledger.verify(held_checkpoints=[old_note])
    assert report.ok, report.problems
    assert report.details_erased == 6
    assert await ledger.erase_details(T0 + 151, at=T0 + 20_000) == 0  # idempotent
    assert (await ledger.verify()).ok


# --------------------------------------------------------------------------- tampering


async def test_one_changed_byte_in_an_entry_is_named(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 10)
    await backend.sql(
        "UPDATE ledger_entries SET fields = replace(fields, 'quality', 'qualitz') WHERE seq = ?", 6
    )
    report = await reopened(backend, ledger)
    assert_fails_at(report, 6, "leaf_mismatch")
    assert "changed after it was written" in report.problems[0].message
    # The checkpoint covering it no longer matches either.
    assert any(p.code == "checkpoint_inconsistent" for p in report.problems)


async def test_one_changed_byte_in_a_leaf_hash_is_named(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 5)
    [(digest,)] = await backend.sql("SELECT leaf_hash FROM ledger_entries WHERE seq = ?", 3)
    flipped = bytes([digest[0] ^ 1]) + bytes(digest[1:])
    await backend.sql("UPDATE ledger_entries SET leaf_hash = ? WHERE seq = ?", flipped, 3)
    report = await reopened(backend, ledger)
    assert_fails_at(report, 3, "leaf_mismatch")


async def test_one_changed_byte_in_personal_details_is_named(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 5)
    await backend.sql(
        "UPDATE ledger_details SET body = replace(body, 'Sam', 'Pam') WHERE seq = ?", 4
    )
    report = await reopened(backend, ledger)
    assert_fails_at(report, 4, "details_mismatch")
    assert report.problems[0].message.startswith("entry 4: its personal details do not match")
    assert len(report.problems) == 1  # the tree itself is intact


async def test_deleted_details_and_unlogged_erasure_are_named(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 5)
    await backend.sql("DELETE FROM ledger_details WHERE seq = ?", 7)
    await backend.sql(
        "UPDATE ledger_details SET salt = NULL, body = NULL, erased_at = 1 WHERE seq = ?", 2
    )
    report = await ledger.verify()
    assert_fails_at(report, 2, "erased_without_purge")
    assert {p.seq: p.code for p in report.problems} == {
        2: "erased_without_purge",
        7: "details_missing",
    }


async def test_a_deleted_entry_is_named_and_appends_are_refused(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 10)
    await backend.sql("DELETE FROM ledger_entries WHERE seq = ?", 9)
    report = await reopened(backend, ledger)
    assert_fails_at(report, 9, "missing_entries")
    assert report.problems[0].message == "entry 9 is missing (deleted)"
    assert any(p.code == "checkpoint_inconsistent" for p in report.problems)
    assert ledger.damage == "entry 9 is missing from storage"
    with pytest.raises(LedgerUnavailable, match="damaged"):  # fail closed
        await ledger.append("notice.seen", actor="agent-7", at=T0, notice_id="n1")


async def test_truncation_is_named(backend: Backend, ledger: MerkleLedger) -> None:
    await listen(ledger, 10)  # 20 entries, checkpoints at 8 and 16
    note = await ledger.checkpoint()  # size 20
    await backend.sql("DELETE FROM ledger_entries WHERE seq >= ?", 13)
    await backend.sql("DELETE FROM ledger_details WHERE seq >= ?", 13)
    report = await reopened(backend, ledger)
    assert not report.ok
    assert report.first_bad_seq == 13
    truncated = [p for p in report.problems if p.code == "truncated"]
    assert [p.message.split(":")[0] for p in truncated] == [
        "entries 13 to 15 are missing",
        "entries 13 to 19 are missing",
    ]
    assert "truncated" in truncated[0].message

    # Removing the stored checkpoints as well: a checkpoint held elsewhere still shows it.
    await backend.sql("DELETE FROM ledger_checkpoints WHERE tree_size > ?", 8)
    assert (await ledger.verify()).ok
    report = await ledger.verify(held_checkpoints=[note])
    assert report.first_bad_seq == 13 and report.problems[0].code == "truncated"
    assert report.problems[0].message.startswith("entries 13 to 19 are missing: held checkpoint 1")


async def test_reordered_entries_are_named(backend: Backend, ledger: MerkleLedger) -> None:
    await listen(ledger, 5)
    # Swap entries 4 and 5 completely (every column but seq).
    await backend.sql("UPDATE ledger_entries SET seq = -1 WHERE seq = 4")
    await backend.sql("UPDATE ledger_entries SET seq = 4 WHERE seq = 5")
    await backend.sql("UPDATE ledger_entries SET seq = 5 WHERE seq = -1")
    await backend.sql("UPDATE ledger_details SET seq = -1 WHERE seq = 4")
    await backend.sql("UPDATE ledger_details SET seq = 4 WHERE seq = 5")
    await backend.sql("UPDATE ledger_details SET seq = 5 WHERE seq = -1")
    report = await reopened(backend, ledger)
    assert_fails_at(report, 4, "leaf_mismatch")
    assert {p.seq for p in report.problems if p.code == "leaf_mismatch"} == {4, 5}


async def rewrite_tail(
    backend: Backend, ledger: MerkleLedger, start: int, attacker_key: LogKey | None
) -> None:
    """What an attacker with the database but not the key does: rewrite entries from
    ``start`` with recomputed leaf hashes (re-signed with ``signer`` if given, which is
    not the log's key), keeping the old signed checkpoints."""
    entries, _, _ = await ledger.store.read_all()
    for row in entries[start:]:
        fields = row.public_fields()
        if "purpose" in fields:
            fields["purpose"] = "complaint"
        text = canonical_json(fields).decode()
        digest = leaf_hash(
            leaf_bytes(row.seq, row.kind, row.at, row.actor, fields, row.details_commitment)
        )
        signature = attacker_key.sign_entry(ledger.origin, digest) if attacker_key else None
        await backend.sql(
            "UPDATE ledger_entries SET fields = ?, leaf_hash = ?, signature = ? WHERE seq = ?",
            text,
            digest,
            signature,
            row.seq,
        )


@pytest.mark.parametrize("resign", [False, True], ids=["unsigned", "own-key"])
async def test_rewritten_tail_with_recomputed_hashes_is_named(
    backend: Backend, ledger: MerkleLedger, resign: bool
) -> None:
    await listen(ledger, 10)  # 20 entries; checkpoints at 8 and 16 stay
    attacker = LogKey(ledger.origin, CheckpointSigner.generate("x").to_pem()) if resign else None
    await rewrite_tail(backend, ledger, 10, attacker)
    report = await reopened(backend, ledger)
    assert not report.ok
    assert report.first_bad_seq == 10
    first = report.problems[0]
    assert first.code == ("bad_entry_signature" if resign else "unsigned_entry")
    assert first.message.startswith("entry 10: ")
    if resign:
        assert "not a trusted key" in first.message
    # The old signed checkpoint of size 16 exposes it too, and says where.
    inconsistent = [p for p in report.problems if p.code == "checkpoint_inconsistent"]
    assert len(inconsistent) == 1
    assert "(size 16)" in inconsistent[0].message
    assert "an entry from 8 to 15 differs" in inconsistent[0].message


async def test_a_hidden_index_column_is_named(backend: Backend, ledger: MerkleLedger) -> None:
    await listen(ledger, 4)
    # Hide a listen from the agent's disclosure query without touching the leaf.
    await backend.sql("UPDATE ledger_entries SET agent_id = 'nobody' WHERE seq = ?", 2)
    assert [e.seq for e in await ledger.entries(agent_id="agent-7", kind="listen.started")] == [
        0,
        4,
        6,
    ]
    report = await ledger.verify()
    assert_fails_at(report, 2, "index_mismatch")


async def test_a_forged_checkpoint_is_named(backend: Backend, ledger: MerkleLedger) -> None:
    await listen(ledger, 5)
    [(cid, note)] = await backend.sql(
        "SELECT id, note FROM ledger_checkpoints WHERE tree_size = ?", 8
    )
    forged = note.replace("\n8\n", "\n7\n", 1)
    await backend.sql("UPDATE ledger_checkpoints SET note = ? WHERE id = ?", forged, cid)
    report = await ledger.verify()
    assert not report.ok
    [problem] = report.problems
    assert problem.code == "checkpoint_signature" and problem.checkpoint_id == cid
    assert "does not verify" in problem.message


async def test_other_nodes_keys_are_trusted_only_when_given(
    backend: Backend, ledger: MerkleLedger
) -> None:
    await listen(ledger, 2)
    first_key = ledger.verifier_key()
    other = backend.ledger(key_path=backend.data_dir / "other.pem")
    await ledger.aclose()
    await other.open()
    try:
        await listen(other, 2)
        report = await other.verify()
        assert not report.ok and report.first_bad_seq == 0  # signed by the first key
        report = await other.verify(trusted_keys=[first_key])
        assert report.ok, report.problems
    finally:
        await other.aclose()
    await ledger.open()


async def test_concurrent_appends_in_one_process_stay_ordered(ledger: MerkleLedger) -> None:
    seqs = await asyncio.gather(
        *(
            ledger.append("notice.seen", actor="agent-7", at=time.time(), notice_id=f"n{i}")
            for i in range(40)
        )
    )
    assert sorted(seqs) == list(range(40))
    assert (await ledger.verify()).ok


async def test_an_unreachable_postgres_is_unavailable(tmp_path: Path) -> None:
    ledger = open_ledger("postgresql://nobody@127.0.0.1:9/none", tmp_path / "a.db")
    with pytest.raises(LedgerUnavailable, match="cannot connect"):
        await asyncio.wait_for(ledger.open(), 20)

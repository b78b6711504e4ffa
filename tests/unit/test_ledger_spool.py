"""The ledger spool (architecture decision 10): an entry the ledger cannot take now is kept
durably and written later with its true time, once per session for ends; a crash is closed
with bounds (``ended_after`` the last proof of life, ``ended_before`` the restart).

The ledger is made unavailable for real: another connection holds SQLite's write lock (as a
stuck writer or a backup would), and the store's busy timeout is short.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from live.audit import MerkleLedger
from live.audit.keys import KEY_FILE
from live.audit.spool import SPOOL_FILE, LedgerSpool
from live.audit.store_sqlite import SqliteStore
from live.errors import LedgerUnavailable
from live.notices.text import after_call_text
from tests.support.wait import wait_for

T0 = 1_750_000_000.0


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[MerkleLedger]:
    store = SqliteStore(tmp_path / "ledger.sqlite3", busy_timeout_ms=50)
    async with MerkleLedger(store, key_path=tmp_path / KEY_FILE, checkpoint_interval_s=0) as opened:
        yield opened


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Hold the ledger's SQLite write lock from another connection: appends fail meanwhile."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("ROLLBACK")
    finally:
        db.close()


async def ends(ledger: MerkleLedger, session_id: str) -> list[tuple[float, dict[str, object]]]:
    return [(e.at, e.fields) for e in await ledger.entries(kind="listen.ended", session_id=session_id)]


async def test_an_end_the_ledger_refuses_is_spooled_and_written_later_with_its_time(
    ledger: MerkleLedger, tmp_path: Path
) -> None:
    spool = LedgerSpool(tmp_path / SPOOL_FILE, ledger)
    await spool.open()
    assert await spool.append("listen.ended", actor="system", at=T0, session_id="ls_ok", reason="stopped") == 0
    assert spool.problem is None
    with write_locked(tmp_path / "ledger.sqlite3"):
        seq = await spool.append(
            "listen.ended", actor="system", at=T0 + 3, session_id="ls_1", reason="stopped", ended_at=T0 + 3
        )
        assert seq is None
        assert spool.problem is not None and "locked" in spool.problem
        with pytest.raises(LedgerUnavailable):
            await spool.replay()
    await spool.aclose()
    assert await ends(ledger, "ls_1") == []

    # A restart: a new spool on the same file finds the entry and writes it, once.
    again = LedgerSpool(tmp_path / SPOOL_FILE, ledger)
    await again.open()
    assert await again.pending_sessions() == {"ls_1"}
    assert [e.session_id for e in await again.replay()] == ["ls_1"]
    assert await again.replay() == []
    assert await ends(ledger, "ls_1") == [
        (T0 + 3, {"session_id": "ls_1", "reason": "stopped", "ended_at": T0 + 3})
    ]
    assert again.problem is None
    await again.aclose()
    assert (await ledger.verify()).ok


async def test_a_spooled_end_already_on_record_is_not_written_twice(
    ledger: MerkleLedger, tmp_path: Path
) -> None:
    spool = LedgerSpool(tmp_path / SPOOL_FILE, ledger)
    await spool.open()
    with write_locked(tmp_path / "ledger.sqlite3"):
        await spool.append("listen.ended", actor="system", at=T0 + 1, session_id="ls_2", reason="stopped")
    # Meanwhile the end got on record another way (a commit the caller saw fail).
    await ledger.append("listen.ended", actor="system", at=T0 + 1, session_id="ls_2", reason="stopped")
    assert await spool.replay() == []
    assert await spool.pending() == []
    assert len(await ends(ledger, "ls_2")) == 1
    await spool.aclose()


async def test_the_retry_task_writes_the_spool_once_the_ledger_is_back(
    ledger: MerkleLedger, tmp_path: Path
) -> None:
    spool = LedgerSpool(tmp_path / SPOOL_FILE, ledger, first_retry_s=0.05, max_retry_s=0.2)
    await spool.open()
    spool.start()
    try:
        with write_locked(tmp_path / "ledger.sqlite3"):
            await spool.append("leg.muted", actor="system", at=T0 + 5, session_id="ls_3", leg="caller", reason="pci")
            await spool.append("listen.ended", actor="system", at=T0 + 6, session_id="ls_3", reason="stopped")
            assert len(await spool.pending()) == 2
        await wait_for(lambda: ends(ledger, "ls_3"), 30, "the spooled end on record")
        await wait_for(lambda: _empty(spool), 30, "the spool to empty")
        kinds = [(e.kind, e.at) for e in await ledger.entries(session_id="ls_3")]
        assert kinds == [("leg.muted", T0 + 5), ("listen.ended", T0 + 6)]
        assert spool.problem is None
    finally:
        await spool.aclose()


async def _empty(spool: LedgerSpool) -> bool:
    return not await spool.pending()


async def test_recover_writes_the_bounds_of_a_lost_session(ledger: MerkleLedger) -> None:
    for session_id, at in (("ls_seen", T0), ("ls_unseen", T0 + 10), ("ls_spooled", T0)):
        await ledger.append(
            "listen.started", actor="sup", at=at, session_id=session_id, call_id="CA1",
            agent_id="agent-1", node_id="node-a", started_at=at,
        )
    await ledger.heartbeat("node-a", T0 + 4)
    recovered = await ledger.recover(
        "node-a", T0 + 100, alive={"ls_seen": T0 + 7.5}, skip={"ls_spooled"}
    )
    assert sorted(recovered) == ["ls_seen", "ls_unseen"]
    (at, seen), = await ends(ledger, "ls_seen")
    assert at == T0 + 7.5
    assert (seen["reason"], seen["ended_after"], seen["ended_before"]) == ("node-lost", T0 + 7.5, T0 + 100)
    assert seen["ended_at"] == T0 + 7.5 and seen["duration_s"] == 7.5
    # Started after the node's last heartbeat, never seen alive: it ended after its start.
    (_, unseen), = await ends(ledger, "ls_unseen")
    assert (unseen["ended_after"], unseen["ended_before"], unseen["duration_s"]) == (T0 + 10, T0 + 100, 0)
    assert await ends(ledger, "ls_spooled") == []


async def test_proof_of_life_is_kept_per_session_until_it_ends(ledger: MerkleLedger, tmp_path: Path) -> None:
    spool = LedgerSpool(tmp_path / SPOOL_FILE, ledger)
    await spool.open()
    await spool.alive("node-a", T0, ["ls_a", "ls_b"])
    await spool.alive("node-a", T0 + 1, ["ls_a"])
    await spool.alive("node-b", T0 + 1, ["ls_c"])
    await spool.gone("ls_b")
    assert await spool.last_alive("node-a") == {"ls_a": T0 + 1}
    await spool.aclose()


def test_a_notice_of_a_lost_session_gives_the_bounds() -> None:
    zone = ZoneInfo("UTC")
    at = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
    item = {
        "call_started_at": at,
        "duration_s": 3.0,
        "purpose": "quality",
        "listener": "supervisor",
        "ended_after": at + 3,
        "ended_before": at + 600,
    }
    assert after_call_text(item, zone) == (
        "your call at 15:06 was listened to until between 15:06 and 15:16 "
        "(the server stopped unexpectedly) — purpose: Quality assurance — by supervisor"
    )
    item["ended_before"] = None
    assert "listened to for 3 s" in after_call_text(item, zone)


async def test_closing_waits_for_a_statement_a_cancelled_caller_left_running(
    ledger: MerkleLedger, tmp_path: Path
) -> None:
    """A caller cancelled while its statement runs in a thread must not have the connection
    closed beneath it (closing a connection during a statement crashes the interpreter)."""
    import asyncio
    import threading

    spool = LedgerSpool(tmp_path / SPOOL_FILE, ledger)
    await spool.open()
    inside, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def slow(db: sqlite3.Connection) -> int:
        inside.set()
        release.wait(timeout=30)
        try:
            count = int(db.execute("SELECT count(*) FROM spool_pending").fetchone()[0])
        except sqlite3.Error as exc:
            outcome.append(exc)
            raise
        outcome.append(count)
        return count

    caller = asyncio.create_task(spool._run(slow))
    await asyncio.to_thread(inside.wait, 30)
    caller.cancel()
    closing = asyncio.create_task(spool.aclose())
    await wait_for(lambda: spool._db is None, 30, "the spool to begin closing")
    release.set()
    await closing
    assert outcome == [0], "the connection was closed beneath a running statement"
    with pytest.raises(LedgerUnavailable):
        await spool.pending()

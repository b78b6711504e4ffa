"""The embedded store: one SQLite file, WAL, ``synchronous=FULL``, one writer thread.

Write-ahead audit (architecture decision 4) needs an append to be on disk when it returns:
in WAL mode with ``synchronous=FULL`` every commit is fsynced. ``sqlite3`` blocks, so every
statement runs on one dedicated thread, and an ``asyncio.Lock`` keeps one append
transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) from interleaving with other statements on
the shared connection. ``BEGIN IMMEDIATE`` also takes SQLite's write lock, so a second
process on the same file waits (``busy_timeout``) instead of forking the log.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LedgerUnavailable
from .entry import CheckpointRow, DetailsRow, EntryRow
from .store import ENTRY_COLUMNS, LeafRow, StoreWriter, entry_filters

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_entries (
    seq                INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,
    at                 REAL NOT NULL,
    actor              TEXT NOT NULL,
    fields             TEXT NOT NULL,
    details_commitment BLOB,
    leaf_hash          BLOB NOT NULL,
    signature          BLOB,
    session_id         TEXT,
    call_id            TEXT,
    agent_id           TEXT
);
CREATE INDEX IF NOT EXISTS ledger_entries_session ON ledger_entries(session_id);
CREATE INDEX IF NOT EXISTS ledger_entries_call ON ledger_entries(call_id);
CREATE INDEX IF NOT EXISTS ledger_entries_agent ON ledger_entries(agent_id, at);
CREATE INDEX IF NOT EXISTS ledger_entries_kind ON ledger_entries(kind, at);
CREATE TABLE IF NOT EXISTS ledger_details (
    seq       INTEGER PRIMARY KEY,
    salt      BLOB,
    body      TEXT,
    erased_at REAL
);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size INTEGER NOT NULL,
    signed_at REAL NOT NULL,
    note      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_heartbeats (
    node_id TEXT PRIMARY KEY,
    at      REAL NOT NULL
);
"""

_SELECT_ENTRIES = (
    "SELECT "
    + ", ".join(f"e.{c.strip()}" for c in ENTRY_COLUMNS.split(","))
    + ", d.seq, d.salt, d.body, d.erased_at"
    " FROM ledger_entries e LEFT JOIN ledger_details d ON d.seq = e.seq"
)


def _entry(row: tuple[Any, ...]) -> EntryRow:
    return EntryRow(
        seq=int(row[0]),
        kind=str(row[1]),
        at=float(row[2]),
        actor=str(row[3]),
        fields=str(row[4]),
        details_commitment=_blob(row[5]),
        leaf_hash=_blob(row[6]) or b"",
        signature=_blob(row[7]),
        session_id=row[8],
        call_id=row[9],
        agent_id=row[10],
    )


def _details(row: tuple[Any, ...]) -> DetailsRow | None:
    if row[0] is None:
        return None
    return DetailsRow(
        seq=int(row[0]),
        salt=_blob(row[1]),
        body=None if row[2] is None else str(row[2]),
        erased_at=None if row[3] is None else float(row[3]),
    )


def _blob(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):  # a tampered or hand-edited cell; keep it comparable
        return value.encode("utf-8")
    return bytes(value)


class SqliteStore:
    """A ``LedgerStore`` in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()
                if not mode or str(mode[0]).lower() != "wal":
                    raise sqlite3.OperationalError(f"WAL mode is not available ({mode})")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
            except BaseException:
                db.close()
                raise
            return db

        try:
            self._db = await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise LedgerUnavailable(f"cannot open the ledger at {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        if self._executor is None:
            return
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer thread; callers hold ``self._lock``."""
        if self._executor is None or self._db is None:
            raise LedgerUnavailable("the ledger is not open")
        db = self._db

        def call() -> T:
            try:
                return fn(db)
            except sqlite3.Error as exc:
                raise LedgerUnavailable(f"the ledger could not be used: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            return await self._run(fn)

    # -- the append transaction

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[StoreWriter]:
        async with self._lock:
            await self._run(lambda db: db.execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteWriter(self)
                await self._run(lambda db: db.execute("COMMIT"))
            except BaseException:
                # Shielded: a cancelled append must still end its transaction.
                await asyncio.shield(self._run(_rollback))
                raise

    # -- reads and small writes

    async def meta(self, key: str, default: str) -> str:
        def get_or_set(db: sqlite3.Connection) -> str:
            db.execute(
                "INSERT INTO ledger_meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                (key, default),
            )
            row = db.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
            return str(row[0])

        return await self._locked(get_or_set)

    async def leaves_from(self, start: int) -> list[LeafRow]:
        return await self._locked(lambda db: _leaves_from(db, start))

    async def read_entries(
        self,
        *,
        kind: str | None = None,
        session_id: str | None = None,
        call_id: str | None = None,
        agent_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> list[tuple[EntryRow, DetailsRow | None]]:
        where, args = entry_filters(
            "?",
            kind=kind,
            session_id=session_id,
            call_id=call_id,
            agent_id=agent_id,
            since=since,
            until=until,
            start=start,
            stop=stop,
        )

        def read(db: sqlite3.Connection) -> list[tuple[EntryRow, DetailsRow | None]]:
            rows = db.execute(f"{_SELECT_ENTRIES}{where} ORDER BY e.seq", args).fetchall()
            return [(_entry(r[:11]), _details(r[11:])) for r in rows]

        return await self._locked(read)

    async def read_all(self) -> tuple[list[EntryRow], list[DetailsRow], list[CheckpointRow]]:
        def read(
            db: sqlite3.Connection,
        ) -> tuple[list[EntryRow], list[DetailsRow], list[CheckpointRow]]:
            db.execute("BEGIN")  # one read snapshot for all three tables
            try:
                entries = [
                    _entry(r)
                    for r in db.execute(
                        f"SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq"
                    ).fetchall()
                ]
                details = [
                    d
                    for r in db.execute(
                        "SELECT seq, salt, body, erased_at FROM ledger_details ORDER BY seq"
                    ).fetchall()
                    if (d := _details(r)) is not None
                ]
                checkpoints = [
                    CheckpointRow(int(r[0]), int(r[1]), float(r[2]), str(r[3]))
                    for r in db.execute(
                        "SELECT id, tree_size, signed_at, note FROM ledger_checkpoints ORDER BY id"
                    ).fetchall()
                ]
            finally:
                db.execute("COMMIT")
            return entries, details, checkpoints

        return await self._locked(read)

    async def latest_checkpoint(self) -> CheckpointRow | None:
        def read(db: sqlite3.Connection) -> CheckpointRow | None:
            r = db.execute(
                "SELECT id, tree_size, signed_at, note FROM ledger_checkpoints"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
            return (
                None if r is None else CheckpointRow(int(r[0]), int(r[1]), float(r[2]), str(r[3]))
            )

        return await self._locked(read)

    async def open_sessions(self) -> list[EntryRow]:
        def read(db: sqlite3.Connection) -> list[EntryRow]:
            rows = db.execute(
                f"SELECT {ENTRY_COLUMNS} FROM ledger_entries s"
                " WHERE s.kind = 'listen.started' AND s.session_id IS NOT NULL"
                " AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.kind = 'listen.ended'"
                " AND e.session_id = s.session_id) ORDER BY s.seq"
            ).fetchall()
            return [_entry(r) for r in rows]

        return await self._locked(read)

    async def heartbeat(self, node_id: str, at: float) -> None:
        await self._locked(
            lambda db: db.execute(
                "INSERT INTO ledger_heartbeats(node_id, at) VALUES (?, ?)"
                " ON CONFLICT(node_id) DO UPDATE SET at = excluded.at",
                (node_id, at),
            )
        )

    async def last_heartbeat(self, node_id: str) -> float | None:
        def read(db: sqlite3.Connection) -> float | None:
            row = db.execute(
                "SELECT at FROM ledger_heartbeats WHERE node_id = ?", (node_id,)
            ).fetchone()
            return None if row is None else float(row[0])

        return await self._locked(read)


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


def _leaves_from(db: sqlite3.Connection, start: int) -> list[LeafRow]:
    rows = db.execute(
        "SELECT seq, leaf_hash FROM ledger_entries WHERE seq >= ? ORDER BY seq", (start,)
    ).fetchall()
    return [(int(r[0]), _blob(r[1]) or b"") for r in rows]


class _SqliteWriter:
    """Statements inside ``SqliteStore.writer()``; the store's lock is held throughout."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def leaves_from(self, start: int) -> list[LeafRow]:
        return await self._store._run(lambda db: _leaves_from(db, start))

    async def insert_entry(self, entry: EntryRow, details: DetailsRow | None) -> None:
        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT INTO ledger_entries({ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.seq,
                    entry.kind,
                    entry.at,
                    entry.actor,
                    entry.fields,
                    entry.details_commitment,
                    entry.leaf_hash,
                    entry.signature,
                    entry.session_id,
                    entry.call_id,
                    entry.agent_id,
                ),
            )
            if details is not None:
                db.execute(
                    "INSERT INTO ledger_details(seq, salt, body, erased_at) VALUES (?,?,?,?)",
                    (details.seq, details.salt, details.body, details.erased_at),
                )

        await self._store._run(insert)

    async def insert_checkpoint(self, tree_size: int, signed_at: float, note: str) -> int:
        def insert(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO ledger_checkpoints(tree_size, signed_at, note) VALUES (?, ?, ?)",
                (tree_size, signed_at, note),
            )
            return int(cursor.lastrowid or 0)

        return await self._store._run(insert)

    async def erase_details(self, before: float, erased_at: float) -> int:
        def erase(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "UPDATE ledger_details SET salt = NULL, body = NULL, erased_at = ?"
                " WHERE body IS NOT NULL"
                " AND seq IN (SELECT seq FROM ledger_entries WHERE at < ?)",
                (erased_at, before),
            )
            return int(cursor.rowcount)

        return await self._store._run(erase)

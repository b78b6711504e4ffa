"""Where revocations are kept durably: the shared database, read by every node.

One append-only table, ``auth_revocations`` (``id``, ``kind``, ``subject``, ``at``,
``expires_at``), beside the ledger's tables: in PostgreSQL when the ledger is there
(``LIVE_LEDGER_URL=postgresql://…``, ``revocation_store_postgres``), else in SQLite in the data
directory (``DATA_DIR/sessions.sqlite3``), which the ``live users`` command also writes.
Nodes read what was added after the last ``id`` they saw (``read_after``); ids become visible
in increasing order (SQLite has one writer; PostgreSQL appends under an advisory lock), so a
cursor never skips a row committed late. Expired rows are deleted (``purge``). Every failure
is a ``RevocationsUnavailable``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from ..errors import RevocationsUnavailable
from .revocations import Revocation, RevocationKind

SQLITE_FILE = "sessions.sqlite3"

T = TypeVar("T")

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    at         REAL NOT NULL,
    expires_at REAL
);
"""

# Tables of the node-local file before revocations were shared: moved into the log once.
_LEGACY = (
    ("revoked_session", "SELECT 'session', session_id, expires_at, expires_at FROM revoked_session"),
    ("revoked_user", "SELECT 'user', user_id, not_before, NULL FROM revoked_user"),
)


class RevocationStore(Protocol):
    description: str
    """Where the store is, for messages (never contains a password)."""

    async def open(self) -> None:
        """Connect and create the table if needed."""

    async def aclose(self) -> None: ...

    async def add(self, revocations: Sequence[Revocation]) -> None:
        """Append ``revocations`` durably (committed when this returns)."""

    async def read_after(self, cursor: int, now: float) -> tuple[list[Revocation], int]:
        """Unexpired revocations with ``id > cursor``, and the cursor to read after next."""

    async def purge(self, now: float) -> int:
        """Delete what has expired; returns how many rows."""


def row_revocation(kind: str, subject: str, at: float, expires_at: float | None) -> Revocation | None:
    """A stored row as a ``Revocation``; ``None`` for a kind this version does not know."""
    try:
        return Revocation(RevocationKind(kind), subject, float(at), None if expires_at is None else float(expires_at))
    except ValueError:
        return None


def open_revocation_store(ledger_url: str, data_dir: Path) -> RevocationStore:
    """The store beside the ledger: PostgreSQL for a ``postgres(ql)://`` ledger, else SQLite."""
    if ledger_url.startswith(("postgresql://", "postgres://")):
        from .revocation_store_postgres import PostgresRevocationStore

        return PostgresRevocationStore(ledger_url)
    return SqliteRevocationStore(data_dir / SQLITE_FILE)


class SqliteRevocationStore:
    """Revocations in one SQLite file (WAL), shared by the processes of one machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is not None:
            return

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=5000")
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SQLITE_SCHEMA)
                _move_legacy(db)
            except BaseException:
                db.close()
                raise
            return db

        try:
            self._db = await asyncio.to_thread(connect)
        except (sqlite3.Error, OSError) as exc:
            raise RevocationsUnavailable(f"cannot open the revocations at {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.to_thread(db.close)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            db = self._db
            if db is None:
                raise RevocationsUnavailable("the revocations are not open")
            try:
                return await asyncio.to_thread(fn, db)
            except sqlite3.Error as exc:
                raise RevocationsUnavailable(f"the revocations could not be used: {exc}") from exc

    async def add(self, revocations: Sequence[Revocation]) -> None:
        rows = [(r.kind.value, r.subject, r.at, r.expires_at) for r in revocations]

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO auth_revocations (kind, subject, at, expires_at) VALUES (?, ?, ?, ?)", rows)

        await self._run(insert)

    async def read_after(self, cursor: int, now: float) -> tuple[list[Revocation], int]:
        def read(db: sqlite3.Connection) -> tuple[list[Revocation], int]:
            rows = db.execute(
                "SELECT id, kind, subject, at, expires_at FROM auth_revocations WHERE id > ? ORDER BY id", (cursor,)
            ).fetchall()
            found = [row_revocation(*row[1:]) for row in rows]
            return [r for r in found if r is not None and not r.expired(now)], max((int(row[0]) for row in rows), default=cursor)

        return await self._run(read)

    async def purge(self, now: float) -> int:
        def delete(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM auth_revocations WHERE expires_at <= ?", (now,)).rowcount

        return await self._run(delete)


def _move_legacy(db: sqlite3.Connection) -> None:
    tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, select in _LEGACY:
        if table in tables:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(f"INSERT INTO auth_revocations (kind, subject, at, expires_at) {select}")
                db.execute(f"DROP TABLE {table}")

"""The local spool: ledger entries that could not be written yet, and proof of life.

Architecture decision 10: an end that cannot be written waits in a durable spool and is
written later with its true time; where the true end is unknowable, the entry says so with
bounds. ``LedgerSpool`` keeps, in one SQLite file in the data directory (``spool.sqlite3``,
``synchronous=FULL``: every commit is fsynced before ``append`` returns):

* ``spool_pending``: entries whose ``append`` failed (ledger down, disk full), with their
  original ``at`` and fields, written to the ledger in order by ``replay`` (at start, before
  ``recover``, so a true end wins over ``node-lost``) and by a retry task with exponential
  backoff while the node runs. A spooled ``listen.ended`` is written at most once per
  session: ``replay`` drops it if the ledger already holds an end for that session (an
  append whose commit succeeded although the caller saw an error).
* a reserve of free pages in the file and a persistent rollback journal (``RESERVE_BYTES``):
  with the embedded ledger the spool shares the data disk, and "disk full" must not take
  the spool down with the ledger. Writes reuse the reserved pages and the journal's space,
  so they need no new blocks from a full disk (while the reserve lasts: hundreds of entries).
* ``spool_alive``: the last proof of life of every running listen session, refreshed at
  least every second (``alive``). After a crash, ``recover`` dates a lost session's end
  between this time and the restart.

``listen.started`` is never spooled: a start that cannot be written refuses the listen
(decision 4, fail closed). The spool is for entries about what already happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..errors import LedgerUnavailable, LiveError

log = logging.getLogger(__name__)

T = TypeVar("T")

SPOOL_FILE = "spool.sqlite3"
RESERVE_BYTES = 256 * 1024
FIRST_RETRY_S = 0.25
MAX_RETRY_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    fields TEXT NOT NULL,
    session_id TEXT,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS spool_reserve (body BLOB);
CREATE TABLE IF NOT EXISTS spool_alive (
    session_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    seen_at REAL NOT NULL
);
"""

UNIQUE_PER_SESSION = frozenset({"listen.ended"})
"""Kinds written at most once per session: a replay never writes a second one."""


class SpoolTarget(Protocol):
    """What the spool writes to and asks (the ``Ledger``)."""

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int: ...

    async def entries(
        self,
        *,
        kind: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        since: float | None = None,
    ) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class SpooledEntry:
    """One entry waiting for the ledger, as it was first meant to be written."""

    spool_id: int
    kind: str
    actor: str
    at: float
    fields: dict[str, Any]

    @property
    def session_id(self) -> str | None:
        value = self.fields.get("session_id")
        return value if isinstance(value, str) else None


class LedgerSpool:
    """Appends that never get lost: to the ledger, or else to the spool until they can be.

    ``problem`` is why the ledger cannot be written right now (``None`` once a write
    succeeds): ``/readyz`` reports it."""

    def __init__(
        self,
        path: Path,
        ledger: SpoolTarget,
        *,
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
    ) -> None:
        self.path = path
        self.ledger = ledger
        self.problem: str | None = None
        self.waiting = 0
        """Entries in the spool (as of the last write or read of it), for ``/metrics``."""
        self._first = first_retry_s
        self._max = max_retry_s
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._replay_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (create) the spool file. ``LedgerUnavailable`` if it cannot be."""
        if self._db is not None:
            return

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=PERSIST")
                db.execute("PRAGMA journal_size_limit=-1")
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(SCHEMA)
                _reserve(db, RESERVE_BYTES)
            except BaseException:
                db.close()
                raise
            return db

        try:
            self._db = await asyncio.to_thread(connect)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerUnavailable(f"cannot open the ledger spool at {self.path}: {exc}") from exc

    def start(self) -> None:
        """Start retrying pending entries in the background (backoff doubling up to
        ``max_retry_s``; a ledger write that succeeds elsewhere retries at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._retry(), name="ledger-spool")
            self._wake.set()

    async def aclose(self) -> None:
        """Stop retrying (pending entries stay in the file for the next start) and close."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._replay_lock:
            db, self._db = self._db, None
            if db is not None:
                # A cancelled caller's thread may still be using the connection: close it
                # under the same lock, never beneath a running statement.
                await asyncio.to_thread(self._close, db)

    def _close(self, db: sqlite3.Connection) -> None:
        with self._db_lock:
            db.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise LedgerUnavailable("the ledger spool is not open")

        def call() -> T:
            with self._db_lock:
                if self._db is not db:
                    raise LedgerUnavailable("the ledger spool is closed")
                try:
                    return fn(db)
                except sqlite3.Error as exc:
                    raise LedgerUnavailable(f"the ledger spool could not be used: {exc}") from exc

        return await asyncio.to_thread(call)

    # --- appending -------------------------------------------------------------------------

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int | None:
        """Append to the ledger; if it cannot be written, keep the entry in the spool (durably)
        and retry later. Returns the ``seq`` if written now, ``None`` if spooled.

        ``LedgerUnavailable`` only if neither the ledger nor the spool could keep it."""
        try:
            seq = await self.ledger.append(kind, actor=actor, at=at, **fields)
        except LedgerUnavailable as exc:
            self.failed(exc.message)
            await self._keep(kind, actor, at, fields, exc.message)
            log.warning("ledger unavailable, %s spooled for later: %s", kind, exc.message)
            self._wake.set()
            return None
        self.succeeded()
        return seq

    async def _keep(self, kind: str, actor: str, at: float, fields: dict[str, Any], error: str) -> None:
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        session = fields.get("session_id")

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO spool_pending (kind, actor, at, fields, session_id, error)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (kind, actor, at, body, session if isinstance(session, str) else None, error),
            )
            self.waiting += 1

        await self._run(insert)

    def failed(self, reason: str) -> None:
        """A write to the ledger failed (an append, a heartbeat): not ready."""
        self.problem = reason

    def succeeded(self) -> None:
        """A write to the ledger succeeded: wake the retry task if entries wait."""
        if self.problem is not None:
            self.problem = None
            self._wake.set()

    # --- reading and replaying -------------------------------------------------------------

    async def pending(self) -> list[SpooledEntry]:
        """Entries waiting for the ledger, oldest first."""

        def read(db: sqlite3.Connection) -> list[SpooledEntry]:
            rows = db.execute(
                "SELECT id, kind, actor, at, fields FROM spool_pending ORDER BY id"
            ).fetchall()
            self.waiting = len(rows)
            return [SpooledEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

        return await self._run(read)

    async def pending_sessions(self) -> set[str]:
        """Sessions with an entry of a once-per-session kind waiting (their end is known)."""
        return {
            e.session_id
            for e in await self.pending()
            if e.kind in UNIQUE_PER_SESSION and e.session_id is not None
        }

    async def replay(self) -> list[SpooledEntry]:
        """Write pending entries in order until one fails; returns those now on record.

        ``LedgerUnavailable`` if the first one that could not be written failed (the rest
        stay, in order)."""
        done: list[SpooledEntry] = []
        async with self._replay_lock:
            for entry in await self.pending():
                if await self._on_record(entry):
                    await self._drop(entry.spool_id)
                    continue
                try:
                    await self.ledger.append(entry.kind, actor=entry.actor, at=entry.at, **entry.fields)
                except LedgerUnavailable as exc:
                    self.failed(exc.message)
                    raise
                except LiveError as exc:  # an entry the ledger will never take: say so, drop it
                    log.error("spooled %s %d refused by the ledger: %s", entry.kind, entry.spool_id, exc.message)
                    await self._drop(entry.spool_id)
                    continue
                await self._drop(entry.spool_id)
                done.append(entry)
                log.info("spooled %s of %s written with its time %s", entry.kind, entry.session_id, entry.at)
            if done:
                self.succeeded()
        return done

    async def _on_record(self, entry: SpooledEntry) -> bool:
        """Whether a once-per-session entry like this one is already in the ledger."""
        if entry.kind not in UNIQUE_PER_SESSION or entry.session_id is None:
            return False
        return bool(await self.ledger.entries(kind=entry.kind, session_id=entry.session_id))

    async def _drop(self, spool_id: int) -> None:
        def delete(db: sqlite3.Connection) -> None:
            if db.execute("DELETE FROM spool_pending WHERE id = ?", (spool_id,)).rowcount:
                self.waiting = max(0, self.waiting - 1)

        await self._run(delete)

    async def _retry(self) -> None:
        delay = self._first
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.replay()
            except LiveError as exc:
                log.warning("spooled ledger entries wait (retry in %.1f s): %s", delay, exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max)
                self._wake.set()
                continue
            except Exception:  # task boundary: keep retrying, say why
                log.exception("replaying the ledger spool failed")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max)
                self._wake.set()
                continue
            delay = self._first

    # --- proof of life ---------------------------------------------------------------------

    async def alive(self, node_id: str, at: float, session_ids: Iterable[str]) -> None:
        """Record that every session in ``session_ids`` (running on ``node_id``) is alive at
        ``at``. Call at least every second while sessions run."""
        rows = [(s, node_id, at) for s in session_ids]
        if not rows:
            return

        def upsert(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT INTO spool_alive (session_id, node_id, seen_at) VALUES (?, ?, ?)"
                    " ON CONFLICT(session_id) DO UPDATE SET seen_at = excluded.seen_at",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(upsert)

    async def gone(self, session_id: str) -> None:
        """Forget a session's proof of life (its end is on record or spooled)."""
        await self._run(lambda db: db.execute("DELETE FROM spool_alive WHERE session_id = ?", (session_id,)))

    async def last_alive(self, node_id: str) -> dict[str, float]:
        """The last proof of life of each session of ``node_id`` not known to have ended."""

        def read(db: sqlite3.Connection) -> dict[str, float]:
            rows = db.execute(
                "SELECT session_id, seen_at FROM spool_alive WHERE node_id = ?", (node_id,)
            ).fetchall()
            return {str(r[0]): float(r[1]) for r in rows}

        return await self._run(read)


def _reserve(db: sqlite3.Connection, size: int) -> None:
    """Keep ``size`` bytes of free pages in the file and as much room in its persistent
    journal: write a blob, rewrite it (the journal grows to hold it), delete it (its pages
    stay on the free list: no auto-vacuum)."""
    page = int(db.execute("PRAGMA page_size").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    if free * page >= size:
        return
    try:
        for statement in (
            "INSERT INTO spool_reserve (body) VALUES (zeroblob(?))",
            "UPDATE spool_reserve SET body = zeroblob(?)",
        ):
            db.execute("BEGIN")
            db.execute(statement, (size,))
            db.execute("COMMIT")
        db.execute("BEGIN")
        db.execute("DELETE FROM spool_reserve")
        db.execute("COMMIT")
    except sqlite3.Error as exc:  # a full disk now: start with what the spool has
        if db.in_transaction:
            db.execute("ROLLBACK")
        log.warning("could not reserve room in the ledger spool: %s", exc)

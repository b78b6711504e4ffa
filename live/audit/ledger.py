"""The ledger contract and its embedded SQLite store.

Write-ahead audit (architecture decision 4): ``append`` returns only once the entry is on
disk (SQLite in WAL mode with ``synchronous=FULL``: the commit is fsynced). Any failure is a
``LedgerUnavailable``, which the service turns into a refused listen (fail closed).

All writes go through one thread (``sqlite3`` is blocking; one writer keeps the order of
entries the order of ``append`` calls).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from ..errors import LedgerUnavailable

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    at         REAL NOT NULL,
    actor      TEXT NOT NULL,
    session_id TEXT,
    call_id    TEXT,
    agent_id   TEXT,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_session ON entries(session_id);
CREATE INDEX IF NOT EXISTS entries_agent ON entries(agent_id, at);
CREATE TABLE IF NOT EXISTS heartbeats (
    node_id TEXT PRIMARY KEY,
    at      REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    kind: str
    at: float
    actor: str
    fields: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "at": self.at, "actor": self.actor, **self.fields}


class Ledger(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int:
        """Durably append one entry; returns its sequence number. ``LedgerUnavailable``."""

    async def heartbeat(self, node_id: str, at: float) -> None:
        """Record that ``node_id`` is alive at ``at`` (used to date ends after a crash)."""

    async def recover(self, node_id: str, now: float) -> list[str]:
        """End every session of ``node_id`` that has a start but no end (reason ``node-lost``,
        at the node's last heartbeat); returns their session ids."""

    async def entries(
        self, *, kind: str | None = None, session_id: str | None = None, agent_id: str | None = None
    ) -> list[LedgerEntry]: ...


def _body(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SqliteLedger:
    """The embedded store: one SQLite file, WAL, ``synchronous=FULL``, one writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None or self._db is None:
            raise LedgerUnavailable("the ledger is not open")
        db = self._db

        def call() -> T:
            try:
                return fn(db)
            except sqlite3.Error as exc:
                raise LedgerUnavailable(f"the ledger could not be written: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
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
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int:
        body = _body(fields)

        def write(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO entries(kind, at, actor, session_id, call_id, agent_id, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, at, actor, fields.get("session_id"), fields.get("call_id"), fields.get("agent_id"), body),
            )
            return int(cursor.lastrowid or 0)

        return await self._run(write)

    async def heartbeat(self, node_id: str, at: float) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO heartbeats(node_id, at) VALUES (?, ?)"
                " ON CONFLICT(node_id) DO UPDATE SET at = excluded.at",
                (node_id, at),
            )
        )

    async def recover(self, node_id: str, now: float) -> list[str]:
        def find(db: sqlite3.Connection) -> tuple[list[tuple[str, str]], float | None]:
            rows = db.execute(
                "SELECT s.session_id, s.body FROM entries s WHERE s.kind = 'listen.started'"
                " AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.kind = 'listen.ended'"
                " AND e.session_id = s.session_id) ORDER BY s.seq"
            ).fetchall()
            beat = db.execute("SELECT at FROM heartbeats WHERE node_id = ?", (node_id,)).fetchone()
            return [(str(r[0]), str(r[1])) for r in rows], (float(beat[0]) if beat else None)

        open_sessions, last_beat = await self._run(find)
        recovered = []
        for session_id, body in open_sessions:
            started = json.loads(body)
            if started.get("node_id", node_id) != node_id:
                continue
            ended_at = max(last_beat or now, float(started.get("started_at", 0)))
            await self.append(
                "listen.ended",
                actor="system",
                at=ended_at,
                session_id=session_id,
                call_id=started.get("call_id"),
                agent_id=started.get("agent_id"),
                reason="node-lost",
                ended_at=ended_at,
                duration_s=round(ended_at - float(started.get("started_at", ended_at)), 3),
            )
            recovered.append(session_id)
        return recovered

    async def entries(
        self, *, kind: str | None = None, session_id: str | None = None, agent_id: str | None = None
    ) -> list[LedgerEntry]:
        clauses, args = [], []
        for column, value in (("kind", kind), ("session_id", session_id), ("agent_id", agent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""

        def read(db: sqlite3.Connection) -> list[LedgerEntry]:
            rows = db.execute(
                f"SELECT seq, kind, at, actor, body FROM entries{where} ORDER BY seq", args
            ).fetchall()
            return [LedgerEntry(int(r[0]), str(r[1]), float(r[2]), str(r[3]), json.loads(r[4])) for r in rows]

        return await self._run(read)


def open_ledger(url: str, default_path: Path) -> Ledger:
    """Select the store from a connection string (``sqlite:///path``, or empty = default)."""
    if not url or url.startswith("sqlite:///"):
        return SqliteLedger(Path(url[len("sqlite:///") :]) if url else default_path)
    raise LedgerUnavailable(f"unsupported ledger url {url.split(':', 1)[0]!r}")

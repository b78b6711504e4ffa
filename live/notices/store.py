"""The durable notice table, a notice kept until its agent has seen it.

Embedded, one SQLite file (``NoticeStore``); in a cluster, the ledger's PostgreSQL database
(``store_postgres.PostgresNoticeStore``), so a notice is made once and its delivered/seen
state is the same on every node. ``open_notice_store`` picks the one beside the ledger.

A notice about one listen carries a key (``notice_key``: session and mode), unique in the
table: a second attempt to make it (two nodes, a recovery racing a late end) finds the first.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import LedgerUnavailable
from ..types import new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    notice_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    mode TEXT NOT NULL,            -- after_call | digest | live
    created_at REAL NOT NULL,
    text TEXT NOT NULL,
    data TEXT NOT NULL,            -- JSON: session ids, purpose, listener label, times
    delivered_at REAL,
    seen_at REAL,
    notice_key TEXT                -- session:mode for a notice about one listen, else NULL
);
CREATE INDEX IF NOT EXISTS notices_agent ON notices (agent_id, seen_at);
CREATE TABLE IF NOT EXISTS digest_items (
    session_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    data TEXT NOT NULL,
    ended_at REAL NOT NULL
);
"""
# After the columns exist (a file from before ``notice_key`` gains it in ``open``).
KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS notices_key ON notices (notice_key)"


def notice_key(session_id: str, mode: str) -> str:
    """The unique key of the notice of ``mode`` about the listen ``session_id``."""
    return f"{session_id}:{mode}"


def like_pattern(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching ``text`` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: str
    agent_id: str
    mode: str
    created_at: float
    text: str
    data: dict[str, Any]
    delivered_at: float | None = None
    seen_at: float | None = None

    def text_in(self, lang: str) -> str:
        """The notice's words in ``lang`` where stored (``texts``), else as first written."""
        texts = self.data.get("texts")
        if isinstance(texts, dict) and isinstance(texts.get(lang), str):
            return str(texts[lang])
        return self.text

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        """The notice for its reader: ``text`` in ``lang`` (as first written without one)."""
        return {
            "id": self.notice_id,
            "mode": self.mode,
            "created_at": self.created_at,
            "text": self.text if lang is None else self.text_in(lang),
            "delivered_at": self.delivered_at,
            "seen_at": self.seen_at,
            **{k: v for k, v in self.data.items() if k not in ("id", "mode", "text")},
        }


class NoticeTable(Protocol):
    """What the notice board keeps notices in: ``NoticeStore`` or ``PostgresNoticeStore``."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def add(
        self, agent_id: str, mode: str, text: str, data: dict[str, Any], at: float, *, key: str | None = None
    ) -> tuple[Notice, bool]:
        """Keep a new notice; with ``key``, at most one: ``(the one kept, whether it is new)``."""
        ...

    async def has_session(self, session_id: str) -> bool: ...

    async def get(self, notice_id: str) -> Notice | None: ...

    async def of_agent(self, agent_id: str, *, unseen_only: bool = False) -> list[Notice]: ...

    async def mark_delivered(self, notice_id: str, at: float) -> bool: ...

    async def mark_seen(self, notice_id: str, at: float) -> bool: ...

    async def add_digest_item(self, agent_id: str, session_id: str, data: dict[str, Any], ended_at: float) -> None: ...

    async def take_digest_items(self) -> dict[str, list[dict[str, Any]]]: ...


def open_notice_store(ledger_url: str, path: Path) -> NoticeTable:
    """The store beside the ledger: PostgreSQL for a ``postgres(ql)://`` ledger, else SQLite
    at ``path``."""
    if ledger_url.startswith(("postgresql://", "postgres://")):
        from .store_postgres import PostgresNoticeStore

        return PostgresNoticeStore(ledger_url)
    return NoticeStore(path)


def _notice(row: sqlite3.Row) -> Notice:
    return Notice(
        row["notice_id"],
        row["agent_id"],
        row["mode"],
        row["created_at"],
        row["text"],
        json.loads(row["data"]),
        row["delivered_at"],
        row["seen_at"],
    )


class NoticeStore:
    """Notices per agent in ``path``; every call runs in a worker thread (one connection,
    serialised by a lock), so the event loop never waits for the disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._db_lock = threading.Lock()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(notices)")}
            if "notice_key" not in columns:  # a file from before notices had keys
                db.execute("ALTER TABLE notices ADD COLUMN notice_key TEXT")
            db.execute(KEY_INDEX)
            return db

        try:
            self._db = await asyncio.to_thread(connect)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"cannot open the notice store {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(self._close, db)

    def _close(self, db: sqlite3.Connection) -> None:
        # A cancelled caller's thread may still be using the connection: never close it
        # beneath a running statement.
        with self._db_lock:
            db.close()

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self._db is None:
            raise LedgerUnavailable("the notice store is closed")
        db = self._db
        def call() -> list[sqlite3.Row]:
            with self._db_lock:
                if self._db is not db:
                    raise LedgerUnavailable("the notice store is closed")
                return db.execute(sql, params).fetchall()

        async with self._lock:
            try:
                return await asyncio.to_thread(call)
            except sqlite3.Error as exc:
                raise LedgerUnavailable(f"notice store: {exc}") from exc

    async def add(
        self, agent_id: str, mode: str, text: str, data: dict[str, Any], at: float, *, key: str | None = None
    ) -> tuple[Notice, bool]:
        notice = Notice(new_id("nt"), agent_id, mode, at, text, data)
        rows = await self._run(
            "INSERT INTO notices (notice_id, agent_id, mode, created_at, text, data, notice_key)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (notice_key) DO NOTHING RETURNING notice_id",
            (notice.notice_id, agent_id, mode, at, text, json.dumps(data, sort_keys=True), key),
        )
        if rows:
            return notice, True
        kept = await self._run("SELECT * FROM notices WHERE notice_key = ?", (key,))
        if not kept:
            raise LedgerUnavailable(f"notice store: the notice {key!r} is neither new nor kept")
        return _notice(kept[0]), False

    async def has_session(self, session_id: str) -> bool:
        """Whether a notice (or a pending digest item) names the listen ``session_id``."""
        rows = await self._run(
            "SELECT 1 FROM notices WHERE data LIKE ? ESCAPE '\\'"
            " UNION ALL SELECT 1 FROM digest_items WHERE session_id = ? LIMIT 1",
            (like_pattern(session_id), session_id),
        )
        return bool(rows)

    async def get(self, notice_id: str) -> Notice | None:
        rows = await self._run("SELECT * FROM notices WHERE notice_id = ?", (notice_id,))
        return _notice(rows[0]) if rows else None

    async def of_agent(self, agent_id: str, *, unseen_only: bool = False) -> list[Notice]:
        sql = "SELECT * FROM notices WHERE agent_id = ?"
        if unseen_only:
            sql += " AND seen_at IS NULL"
        rows = await self._run(sql + " ORDER BY created_at, notice_id", (agent_id,))
        return [_notice(r) for r in rows]

    async def mark_delivered(self, notice_id: str, at: float) -> bool:
        """Set the delivery time once; true when this call set it."""
        rows = await self._run(
            "UPDATE notices SET delivered_at = ? WHERE notice_id = ? AND delivered_at IS NULL "
            "RETURNING notice_id",
            (at, notice_id),
        )
        return bool(rows)

    async def mark_seen(self, notice_id: str, at: float) -> bool:
        rows = await self._run(
            "UPDATE notices SET seen_at = ? WHERE notice_id = ? AND seen_at IS NULL RETURNING notice_id",
            (at, notice_id),
        )
        return bool(rows)

    async def add_digest_item(self, agent_id: str, session_id: str, data: dict[str, Any], ended_at: float) -> None:
        await self._run(
            "INSERT OR REPLACE INTO digest_items (session_id, agent_id, data, ended_at) VALUES (?,?,?,?)",
            (session_id, agent_id, json.dumps(data, sort_keys=True), ended_at),
        )

    async def take_digest_items(self) -> dict[str, list[dict[str, Any]]]:
        """Every pending digest item, per agent, removed from the table."""
        rows = await self._run("DELETE FROM digest_items RETURNING agent_id, data, ended_at")
        items: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: r["ended_at"]):
            items.setdefault(row["agent_id"], []).append(json.loads(row["data"]))
        return items

"""Notices in the PostgreSQL database of the ledger, shared by every node (asyncpg).

One table for the cluster: a notice is made once (its ``notice_key`` is unique), and marking
it delivered or seen on one node is what every other node reads. Each update sets its time
only while unset (``… IS NULL``), so of two nodes racing, exactly one records it.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ..audit.store_postgres import PG_ERRORS as _ERRORS
from ..audit.store_postgres import open_side_pool, redact
from ..errors import LedgerUnavailable
from ..types import new_id
from .store import Notice, like_pattern

SCHEMA_LOCK = int.from_bytes(b"live.ntc", "big")
"""Advisory lock key serialising schema creation by nodes starting together."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    notice_id    TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    mode         TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    text         TEXT NOT NULL,
    data         TEXT NOT NULL,
    delivered_at DOUBLE PRECISION,
    seen_at      DOUBLE PRECISION,
    notice_key   TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS notices_agent ON notices (agent_id, seen_at);
CREATE TABLE IF NOT EXISTS notice_digest_items (
    session_id TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL,
    data       TEXT NOT NULL,
    ended_at   DOUBLE PRECISION NOT NULL
);
"""



def _notice(row: Any) -> Notice:
    return Notice(
        str(row["notice_id"]),
        str(row["agent_id"]),
        str(row["mode"]),
        float(row["created_at"]),
        str(row["text"]),
        json.loads(row["data"]),
        row["delivered_at"],
        row["seen_at"],
    )


class PostgresNoticeStore:
    """A ``NoticeTable`` in PostgreSQL; its own small pool beside the ledger's."""

    def __init__(self, url: str, *, command_timeout_s: float = 5.0) -> None:
        self.url = url
        self.description = redact(url)
        self._timeout = command_timeout_s
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._pool = await open_side_pool(
            self.url,
            SCHEMA,
            SCHEMA_LOCK,
            timeout_s=self._timeout,
            fail=lambda why: LedgerUnavailable(f"the notice store: {why}"),
        )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise LedgerUnavailable("the notice store is closed")
        return self._pool

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            return list(await self._ready().fetch(sql, *args))
        except _ERRORS as exc:
            raise LedgerUnavailable(f"notice store: {exc}") from exc

    async def add(
        self, agent_id: str, mode: str, text: str, data: dict[str, Any], at: float, *, key: str | None = None
    ) -> tuple[Notice, bool]:
        notice = Notice(new_id("nt"), agent_id, mode, at, text, data)
        rows = await self._fetch(
            "INSERT INTO notices (notice_id, agent_id, mode, created_at, text, data, notice_key)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (notice_key) DO NOTHING RETURNING notice_id",
            notice.notice_id, agent_id, mode, at, text, json.dumps(data, sort_keys=True), key,
        )
        if rows:
            return notice, True
        kept = await self._fetch("SELECT * FROM notices WHERE notice_key = $1", key)
        if not kept:
            raise LedgerUnavailable(f"notice store: the notice {key!r} is neither new nor kept")
        return _notice(kept[0]), False

    async def has_session(self, session_id: str) -> bool:
        """Whether a notice (or a pending digest item) names the listen ``session_id``."""
        rows = await self._fetch(
            "SELECT 1 FROM notices WHERE data LIKE $1 ESCAPE '\\'"
            " UNION ALL SELECT 1 FROM notice_digest_items WHERE session_id = $2 LIMIT 1",
            like_pattern(session_id), session_id,
        )
        return bool(rows)

    async def get(self, notice_id: str) -> Notice | None:
        rows = await self._fetch("SELECT * FROM notices WHERE notice_id = $1", notice_id)
        return _notice(rows[0]) if rows else None

    async def of_agent(self, agent_id: str, *, unseen_only: bool = False) -> list[Notice]:
        sql = "SELECT * FROM notices WHERE agent_id = $1"
        if unseen_only:
            sql += " AND seen_at IS NULL"
        rows = await self._fetch(sql + " ORDER BY created_at, notice_id", agent_id)
        return [_notice(r) for r in rows]

    async def mark_delivered(self, notice_id: str, at: float) -> bool:
        """Set the delivery time once, cluster-wide; true when this call set it."""
        rows = await self._fetch(
            "UPDATE notices SET delivered_at = $1 WHERE notice_id = $2 AND delivered_at IS NULL"
            " RETURNING notice_id",
            at, notice_id,
        )
        return bool(rows)

    async def mark_seen(self, notice_id: str, at: float) -> bool:
        rows = await self._fetch(
            "UPDATE notices SET seen_at = $1 WHERE notice_id = $2 AND seen_at IS NULL RETURNING notice_id",
            at, notice_id,
        )
        return bool(rows)

    async def add_digest_item(self, agent_id: str, session_id: str, data: dict[str, Any], ended_at: float) -> None:
        await self._fetch(
            "INSERT INTO notice_digest_items (session_id, agent_id, data, ended_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (session_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, data = EXCLUDED.data,"
            " ended_at = EXCLUDED.ended_at",
            session_id, agent_id, json.dumps(data, sort_keys=True), ended_at,
        )

    async def take_digest_items(self) -> dict[str, list[dict[str, Any]]]:
        """Every pending digest item, per agent, removed from the table (by one node only:
        two nodes running the digest at once each take what the other did not)."""
        rows = await self._fetch("DELETE FROM notice_digest_items RETURNING agent_id, data, ended_at")
        items: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: float(r["ended_at"])):
            items.setdefault(str(row["agent_id"]), []).append(json.loads(row["data"]))
        return items

"""Revocations in the PostgreSQL database of the ledger, shared by every node (asyncpg).

``BIGSERIAL`` ids are handed out in order but may commit out of order, and a reader that saw
id 7 before id 6 committed would never look at 6 again. Appends therefore take
``pg_advisory_xact_lock(APPEND_LOCK)`` before drawing their ids and hold it until they commit,
so every id a reader sees was committed after all smaller ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from ..audit.store_postgres import PG_ERRORS as _ERRORS
from ..audit.store_postgres import open_side_pool, redact
from ..errors import RevocationsUnavailable
from .revocation_store import row_revocation
from .revocations import Revocation

APPEND_LOCK = int.from_bytes(b"live.rvk", "big")
"""Advisory lock key serialising appends (any 64-bit constant; this one spells it)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_revocations (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    at         DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION
);
"""



class PostgresRevocationStore:
    """A ``RevocationStore`` in PostgreSQL; its own small pool beside the ledger's."""

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
            APPEND_LOCK,
            timeout_s=self._timeout,
            fail=lambda why: RevocationsUnavailable(f"the revocations: {why}"),
        )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RevocationsUnavailable("the revocations are not open")
        return self._pool

    async def add(self, revocations: Sequence[Revocation]) -> None:
        rows = [(r.kind.value, r.subject, r.at, r.expires_at) for r in revocations]
        try:
            async with self._ready().acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
                await conn.executemany(
                    "INSERT INTO auth_revocations (kind, subject, at, expires_at) VALUES ($1, $2, $3, $4)", rows
                )
        except _ERRORS as exc:
            raise RevocationsUnavailable(f"the revocations could not be written: {exc}") from exc

    async def read_after(self, cursor: int, now: float) -> tuple[list[Revocation], int]:
        try:
            rows: list[Any] = await self._ready().fetch(
                "SELECT id, kind, subject, at, expires_at FROM auth_revocations WHERE id > $1 ORDER BY id", cursor
            )
        except _ERRORS as exc:
            raise RevocationsUnavailable(f"the revocations could not be read: {exc}") from exc
        found = [row_revocation(r["kind"], r["subject"], r["at"], r["expires_at"]) for r in rows]
        return [r for r in found if r is not None and not r.expired(now)], max((int(r["id"]) for r in rows), default=cursor)

    async def purge(self, now: float) -> int:
        try:
            status = await self._ready().execute("DELETE FROM auth_revocations WHERE expires_at <= $1", now)
        except _ERRORS as exc:
            raise RevocationsUnavailable(f"the revocations could not be purged: {exc}") from exc
        return int(str(status).rsplit(" ", 1)[-1] or 0)

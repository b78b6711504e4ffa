"""The shared store: PostgreSQL through asyncpg, so several nodes append to one log.

One log must never fork: two nodes may not both write entry ``n``. Every append
transaction therefore starts with ``pg_advisory_xact_lock(APPEND_LOCK)``, which serialises
appenders across all connections and processes until their commit; inside it the log reads
the leaves other nodes appended since it last looked, assigns the next ``seq`` and inserts
(the primary key on ``seq`` would reject a duplicate anyway). The lock is released only
after the commit is visible, so the next appender always sees every earlier entry.

One log per database: the tables are ``ledger_*`` in the connection's search path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ..errors import LedgerUnavailable, LiveError
from .entry import CheckpointRow, DetailsRow, EntryRow
from .store import ENTRY_COLUMNS, LeafRow, StoreWriter, entry_filters

APPEND_LOCK = int.from_bytes(b"live.ldg", "big")
"""Advisory lock key serialising appends (any 64-bit constant; this one spells it)."""

SCHEMA_LOCK = APPEND_LOCK + 1
"""Advisory lock key serialising schema creation by nodes starting together."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_entries (
    seq                BIGINT PRIMARY KEY,
    kind               TEXT NOT NULL,
    at                 DOUBLE PRECISION NOT NULL,
    actor              TEXT NOT NULL,
    fields             TEXT NOT NULL,
    details_commitment BYTEA,
    leaf_hash          BYTEA NOT NULL,
    signature          BYTEA,
    session_id         TEXT,
    call_id            TEXT,
    agent_id           TEXT
);
CREATE INDEX IF NOT EXISTS ledger_entries_session ON ledger_entries(session_id);
CREATE INDEX IF NOT EXISTS ledger_entries_call ON ledger_entries(call_id);
CREATE INDEX IF NOT EXISTS ledger_entries_agent ON ledger_entries(agent_id, at);
CREATE INDEX IF NOT EXISTS ledger_entries_kind ON ledger_entries(kind, at);
CREATE TABLE IF NOT EXISTS ledger_details (
    seq       BIGINT PRIMARY KEY,
    salt      BYTEA,
    body      TEXT,
    erased_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    id        BIGSERIAL PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    signed_at DOUBLE PRECISION NOT NULL,
    note      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_heartbeats (
    node_id TEXT PRIMARY KEY,
    at      DOUBLE PRECISION NOT NULL
);
"""

# InternalClientError: a connection the server dropped mid-query (asyncpg reports a state
# clash rather than a connection error), as in a database outage.
PG_ERRORS = _ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)

_SELECT_ENTRIES = (
    "SELECT "
    + ", ".join(f"e.{c.strip()}" for c in ENTRY_COLUMNS.split(","))
    + ", d.seq AS d_seq, d.salt, d.body, d.erased_at"
    " FROM ledger_entries e LEFT JOIN ledger_details d ON d.seq = e.seq"
)


async def open_side_pool(
    url: str, schema: str, lock: int, *, timeout_s: float, fail: Callable[[str], LiveError]
) -> asyncpg.Pool:
    """A small pool (two connections) for a store that lives beside the ledger in its
    database (notices, revocations), its tables created under the advisory ``lock`` (nodes
    starting together would race on ``CREATE … IF NOT EXISTS``). ``fail(message)`` is the
    error raised when the database cannot be reached or the tables made."""
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2, command_timeout=timeout_s)
    except (*PG_ERRORS, ValueError) as exc:
        raise fail(f"cannot connect to {redact(url)}: {exc}") from exc
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
            await conn.execute(schema)
    except PG_ERRORS as exc:
        await pool.close()
        raise fail(f"cannot create its tables: {exc}") from exc
    return pool


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def _wrapped(what: str) -> Iterator[None]:
    try:
        yield
    except _ERRORS as exc:
        raise LedgerUnavailable(f"the ledger could not {what}: {exc}") from exc


def _entry(r: Any) -> EntryRow:
    return EntryRow(
        seq=int(r["seq"]),
        kind=str(r["kind"]),
        at=float(r["at"]),
        actor=str(r["actor"]),
        fields=str(r["fields"]),
        details_commitment=None
        if r["details_commitment"] is None
        else bytes(r["details_commitment"]),
        leaf_hash=bytes(r["leaf_hash"]),
        signature=None if r["signature"] is None else bytes(r["signature"]),
        session_id=r["session_id"],
        call_id=r["call_id"],
        agent_id=r["agent_id"],
    )


def _details(r: Any, seq_column: str = "seq") -> DetailsRow | None:
    if r[seq_column] is None:
        return None
    return DetailsRow(
        seq=int(r[seq_column]),
        salt=None if r["salt"] is None else bytes(r["salt"]),
        body=r["body"],
        erased_at=r["erased_at"],
    )


def _checkpoint(r: Any) -> CheckpointRow:
    return CheckpointRow(int(r["id"]), int(r["tree_size"]), float(r["signed_at"]), str(r["note"]))


class PostgresStore:
    """A ``LedgerStore`` in a PostgreSQL database shared by every node."""

    def __init__(self, url: str, *, min_connections: int = 1, max_connections: int = 4) -> None:
        self.url = url
        self.description = redact(url)
        self._min = min_connections
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None

    # -- lifecycle

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.url, min_size=self._min, max_size=self._max, command_timeout=30
            )
        except (*_ERRORS, ValueError) as exc:
            raise LedgerUnavailable(
                f"cannot connect to the ledger at {self.description}: {exc}"
            ) from exc
        try:
            with _wrapped("create its tables"):
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                    await conn.execute(SCHEMA)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise LedgerUnavailable("the ledger is not open")
        return self._pool

    # -- the append transaction

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[StoreWriter]:
        pool = self._ready()
        with _wrapped("be written"):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
                yield _PostgresWriter(conn)

    # -- reads and small writes

    async def meta(self, key: str, default: str) -> str:
        pool = self._ready()
        with _wrapped("read its settings"):
            async with pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO ledger_meta(key, value) VALUES ($1, $2)"
                    " ON CONFLICT (key) DO NOTHING",
                    key,
                    default,
                )
                value = await conn.fetchval("SELECT value FROM ledger_meta WHERE key = $1", key)
        return str(value)

    async def leaves_from(self, start: int) -> list[LeafRow]:
        pool = self._ready()
        with _wrapped("be read"):
            async with pool.acquire() as conn:
                return await _leaves_from(conn, start)

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
            "$",
            kind=kind,
            session_id=session_id,
            call_id=call_id,
            agent_id=agent_id,
            since=since,
            until=until,
            start=start,
            stop=stop,
        )
        pool = self._ready()
        with _wrapped("be read"):
            async with pool.acquire() as conn:
                rows = await conn.fetch(f"{_SELECT_ENTRIES}{where} ORDER BY e.seq", *args)
        return [(_entry(r), _details(r, "d_seq")) for r in rows]

    async def read_all(self) -> tuple[list[EntryRow], list[DetailsRow], list[CheckpointRow]]:
        pool = self._ready()
        with _wrapped("be read"):
            async with (
                pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                entries = await conn.fetch(
                    f"SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY seq"
                )
                details = await conn.fetch(
                    "SELECT seq, salt, body, erased_at FROM ledger_details ORDER BY seq"
                )
                checkpoints = await conn.fetch(
                    "SELECT id, tree_size, signed_at, note FROM ledger_checkpoints ORDER BY id"
                )
        return (
            [_entry(r) for r in entries],
            [d for r in details if (d := _details(r)) is not None],
            [_checkpoint(r) for r in checkpoints],
        )

    async def latest_checkpoint(self) -> CheckpointRow | None:
        pool = self._ready()
        with _wrapped("be read"):
            async with pool.acquire() as conn:
                r = await conn.fetchrow(
                    "SELECT id, tree_size, signed_at, note FROM ledger_checkpoints"
                    " ORDER BY id DESC LIMIT 1"
                )
        return None if r is None else _checkpoint(r)

    async def open_sessions(self) -> list[EntryRow]:
        pool = self._ready()
        with _wrapped("be read"):
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT {ENTRY_COLUMNS} FROM ledger_entries s"
                    " WHERE s.kind = 'listen.started' AND s.session_id IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM ledger_entries e"
                    " WHERE e.kind = 'listen.ended' AND e.session_id = s.session_id)"
                    " ORDER BY s.seq"
                )
        return [_entry(r) for r in rows]

    async def heartbeat(self, node_id: str, at: float) -> None:
        pool = self._ready()
        with _wrapped("be written"):
            async with pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO ledger_heartbeats(node_id, at) VALUES ($1, $2)"
                    " ON CONFLICT (node_id) DO UPDATE SET at = excluded.at",
                    node_id,
                    at,
                )

    async def last_heartbeat(self, node_id: str) -> float | None:
        pool = self._ready()
        with _wrapped("be read"):
            async with pool.acquire() as conn:
                value = await conn.fetchval(
                    "SELECT at FROM ledger_heartbeats WHERE node_id = $1", node_id
                )
        return None if value is None else float(value)


async def _leaves_from(conn: Any, start: int) -> list[LeafRow]:
    rows = await conn.fetch(
        "SELECT seq, leaf_hash FROM ledger_entries WHERE seq >= $1 ORDER BY seq", start
    )
    return [(int(r["seq"]), bytes(r["leaf_hash"])) for r in rows]


class _PostgresWriter:
    """Statements inside ``PostgresStore.writer()``, on its locked connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def leaves_from(self, start: int) -> list[LeafRow]:
        with _wrapped("be read"):
            return await _leaves_from(self._conn, start)

    async def insert_entry(self, entry: EntryRow, details: DetailsRow | None) -> None:
        with _wrapped("be written"):
            await self._conn.execute(
                f"INSERT INTO ledger_entries({ENTRY_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
            )
            if details is not None:
                await self._conn.execute(
                    "INSERT INTO ledger_details(seq, salt, body, erased_at)"
                    " VALUES ($1, $2, $3, $4)",
                    details.seq,
                    details.salt,
                    details.body,
                    details.erased_at,
                )

    async def insert_checkpoint(self, tree_size: int, signed_at: float, note: str) -> int:
        with _wrapped("be written"):
            value = await self._conn.fetchval(
                "INSERT INTO ledger_checkpoints(tree_size, signed_at, note)"
                " VALUES ($1, $2, $3) RETURNING id",
                tree_size,
                signed_at,
                note,
            )
        return int(value)

    async def erase_details(self, before: float, erased_at: float) -> int:
        with _wrapped("be written"):
            status = await self._conn.execute(
                "UPDATE ledger_details SET salt = NULL, body = NULL, erased_at = $1"
                " WHERE body IS NOT NULL"
                " AND seq IN (SELECT seq FROM ledger_entries WHERE at < $2)",
                erased_at,
                before,
            )
        return int(str(status).rsplit(" ", 1)[-1])

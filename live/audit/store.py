"""The storage interface under the Merkle log: one contract, two engines.

``SqliteStore`` (embedded, one writer) and ``PostgresStore`` (several nodes, one log)
implement it. A store knows nothing about hashing or signing: it keeps rows in order and
gives the log one exclusive *append transaction* at a time (``writer()``), across every
process that shares the store, inside which the log reads the leaves appended by others,
assigns the next ``seq`` and inserts. Every failure is a ``LedgerUnavailable``.

Tables (the same in both engines, prefixed ``ledger_`` so they can share a database):

* ``ledger_entries``: one row per leaf (``EntryRow``), ``seq`` the primary key, indexed
  copies of ``session_id``, ``call_id``, ``agent_id``;
* ``ledger_details``: personal details beside the leaf (``DetailsRow``);
* ``ledger_checkpoints``: every signed checkpoint (``CheckpointRow``);
* ``ledger_meta``: the log's origin, fixed when the store is created;
* ``ledger_heartbeats``: last sign of life per node, to date ends after a crash.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .entry import CheckpointRow, DetailsRow, EntryRow

LeafRow = tuple[int, bytes]
"""``(seq, stored leaf hash)``."""


class StoreWriter(Protocol):
    """The exclusive append transaction: commits when the ``writer()`` block ends."""

    async def leaves_from(self, start: int) -> list[LeafRow]:
        """Stored leaf hashes with ``seq >= start``, in order."""

    async def insert_entry(self, entry: EntryRow, details: DetailsRow | None) -> None: ...

    async def insert_checkpoint(self, tree_size: int, signed_at: float, note: str) -> int:
        """Store a signed checkpoint; returns its id."""

    async def erase_details(self, before: float, erased_at: float) -> int:
        """Erase the details of every entry with ``at < before`` that still has them;
        returns how many were erased."""


class LedgerStore(Protocol):
    """Where a Merkle log keeps its rows."""

    description: str
    """Where the store is, for messages (never contains a password)."""

    async def open(self) -> None:
        """Connect and create the tables if needed."""

    async def aclose(self) -> None: ...

    def writer(self) -> AbstractAsyncContextManager[StoreWriter]:
        """The exclusive append transaction (serialised across processes)."""

    async def meta(self, key: str, default: str) -> str:
        """The stored value of ``key``, storing ``default`` first if there is none."""

    async def leaves_from(self, start: int) -> list[LeafRow]:
        """Committed leaf hashes with ``seq >= start``, in order (no lock taken)."""

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
        """Entries matching every given filter (``since <= at < until``,
        ``start <= seq < stop``), with their details, in ``seq`` order."""

    async def read_all(self) -> tuple[list[EntryRow], list[DetailsRow], list[CheckpointRow]]:
        """Every entry, details record and checkpoint, from one consistent snapshot."""

    async def latest_checkpoint(self) -> CheckpointRow | None: ...

    async def open_sessions(self) -> list[EntryRow]:
        """``listen.started`` entries whose session has no ``listen.ended`` entry."""

    async def heartbeat(self, node_id: str, at: float) -> None: ...

    async def last_heartbeat(self, node_id: str) -> float | None: ...


ENTRY_COLUMNS = (
    "seq, kind, at, actor, fields, details_commitment, leaf_hash, signature,"
    " session_id, call_id, agent_id"
)
"""The ``ledger_entries`` columns in ``EntryRow`` order."""


def entry_filters(
    placeholder: str,
    *,
    kind: str | None = None,
    session_id: str | None = None,
    call_id: str | None = None,
    agent_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    start: int = 0,
    stop: int | None = None,
) -> tuple[str, list[object]]:
    """A ``WHERE`` clause over ``e.`` columns and its arguments, for ``read_entries``.

    ``placeholder`` is ``"?"`` (SQLite) or ``"$"`` (PostgreSQL, numbered ``$1, $2, ...``).
    """
    clauses: list[str] = []
    args: list[object] = []

    def add(condition: str, value: object) -> None:
        args.append(value)
        mark = "?" if placeholder == "?" else f"${len(args)}"
        clauses.append(condition.replace("?", mark))

    for column, value in (
        ("kind", kind),
        ("session_id", session_id),
        ("call_id", call_id),
        ("agent_id", agent_id),
    ):
        if value is not None:
            add(f"e.{column} = ?", value)
    if since is not None:
        add("e.at >= ?", since)
    if until is not None:
        add("e.at < ?", until)
    if start:
        add("e.seq >= ?", start)
    if stop is not None:
        add("e.seq < ?", stop)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

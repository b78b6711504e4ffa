"""The ledger contract the service uses, its two stores, and ``open_ledger``.

Write-ahead audit (architecture decision 4): ``append`` returns only once the entry is
durably stored; any failure is a ``LedgerUnavailable``, which the service turns into a
refused listen (fail closed). The implementation is ``MerkleLedger`` (``log``), a
verifiable Merkle log (decision 5) over SQLite (embedded) or PostgreSQL (several nodes,
decision 6).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..errors import LedgerUnavailable
from .entry import LedgerEntry
from .keys import KEY_FILE
from .log import DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_INTERVAL_S, MerkleLedger
from .proofs import ConsistencyProof, InclusionProof
from .store_postgres import PostgresStore
from .store_sqlite import SqliteStore
from .verify import VerifyReport

__all__ = [
    "KEY_FILE",
    "Ledger",
    "LedgerEntry",
    "MerkleLedger",
    "PostgresLedger",
    "SqliteLedger",
    "open_ledger",
]


class Ledger(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int:
        """Durably append one entry; returns its sequence number. ``LedgerUnavailable``."""

    async def heartbeat(self, node_id: str, at: float) -> None:
        """Record that ``node_id`` is alive at ``at`` (used to date ends after a crash)."""

    async def recover(
        self,
        node_id: str,
        now: float,
        *,
        alive: Mapping[str, float] | None = None,
        skip: Collection[str] = (),
    ) -> list[str]:
        """End every session of ``node_id`` that has a start but no end (reason ``node-lost``,
        ``ended_after`` its last proof of life, ``ended_before`` ``now``), except those in
        ``skip``; returns their session ids."""

    async def entries(
        self,
        *,
        kind: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        since: float | None = None,
    ) -> list[LedgerEntry]: ...

    async def checkpoint(self) -> str:
        """The latest signed checkpoint note covering the current tree (signing one if needed)."""

    async def checkpoint_covering(self, seq: int) -> int:
        """Return once a signed checkpoint covers entry ``seq`` (one signature per batch of
        concurrent callers); returns its tree size. ``LedgerUnavailable``."""

    async def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``tree_size`` entries."""

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes."""

    def verifier_key(self) -> str:
        """The public key checkpoints verify under (c2sp.org/signed-note verifier key)."""

    async def erase_details(self, before: float, *, retention_days: float | None = None) -> int:
        """Erase personal details of entries before ``before``; logged as ``purge.done``."""

    async def verify(self) -> VerifyReport:
        """Rebuild the tree from storage and check everything; names the first bad entry."""


class SqliteLedger(MerkleLedger):
    """The embedded ledger: one SQLite file; the signing key beside it."""

    def __init__(self, path: Path, *, key_path: Path | None = None, **options: Any) -> None:
        self.path = path
        super().__init__(SqliteStore(path), key_path=key_path or path.parent / KEY_FILE, **options)


class PostgresLedger(MerkleLedger):
    """The shared ledger: one PostgreSQL database for every node; the key on each node."""

    def __init__(self, url: str, *, key_path: Path, **options: Any) -> None:
        super().__init__(PostgresStore(url), key_path=key_path, **options)


def open_ledger(
    url: str,
    default_path: Path,
    *,
    key_path: Path | None = None,
    origin: str | None = None,
    key_name: str | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
    trusted_keys: tuple[str, ...] = (),
) -> MerkleLedger:
    """Select the store from a connection string and build the ledger (not yet opened).

    ``url``: empty (SQLite at ``default_path``), ``sqlite:///path``, or
    ``postgresql://...`` / ``postgres://...`` (asyncpg). The signing key is ``key_path``,
    by default ``ledger-signing.pem`` in the directory of ``default_path`` (the data
    directory).
    """
    key = key_path or default_path.parent / KEY_FILE
    options: dict[str, Any] = {
        "origin": origin,
        "key_name": key_name,
        "checkpoint_every": checkpoint_every,
        "checkpoint_interval_s": checkpoint_interval_s,
        "trusted_keys": trusted_keys,
    }
    if not url or url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :]) if url else default_path
        return SqliteLedger(path, key_path=key, **options)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLedger(url, key_path=key, **options)
    raise LedgerUnavailable(f"unsupported ledger url {url.split(':', 1)[0]!r}")

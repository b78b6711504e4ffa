"""The verifiable ledger: a Merkle log of typed events, signed, over a ``LedgerStore``.

``MerkleLedger`` is what the service talks to (the ``Ledger`` protocol). It

* turns ``append(kind, actor=, at=, **fields)`` into a typed event (``events``), splits
  off the personal details, builds the leaf (``entry``), signs it, and inserts it in one
  store transaction that also assigns its ``seq`` (= its index in the tree, from 0);
  ``append`` returns only after the commit is durable (write-ahead audit, decision 4);
* keeps the RFC 9162 tree in memory (``MerkleTree``), rebuilt from the stored leaf hashes
  at ``open`` and caught up with entries other nodes appended (PostgreSQL) inside every
  append transaction and before every proof;
* signs a C2SP checkpoint every ``checkpoint_every`` entries (in the same transaction as
  the entry that completes the batch), on a timer every ``checkpoint_interval_s`` seconds
  whether or not anything was appended, once at ``open``, and on demand; every checkpoint
  carries a ``time`` line (``timeline``) and is stored;
* serves inclusion and consistency proofs, the verifier key, retention purges
  (``erase_details``), crash recovery (``recover``) and a full ``verify``.

If the stored leaves have a gap at ``open`` (an entry deleted), the log is *damaged*:
``verify`` still runs and names it, but appends are refused (fail closed), because new
entries could not be placed in a tree anyone can check.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from ..errors import ConfigError, LedgerUnavailable, LiveError
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    parse_verifier_key,
    verify_note,
)
from .entry import SALT_SIZE, DetailsRow, EntryRow, LedgerEntry, details_commitment, leaf_bytes
from .events import SYSTEM_ACTOR, EncodedEvent, check_time, encode_event, split_event
from .keys import LogKey, load_or_create_key, replace_key_file
from .merkle import EMPTY_ROOT, HASH_SIZE, MerkleTree, leaf_hash
from .proofs import ConsistencyProof, InclusionProof
from .store import LedgerStore, StoreWriter
from .timeline import time_line
from .verify import VerifyReport, verify_log

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CHECKPOINT_EVERY = 64
DEFAULT_CHECKPOINT_INTERVAL_S = 60.0


def default_origin() -> str:
    """``live.ledger/<host name>``: the origin a new log gets unless one is configured."""
    return f"live.ledger/{socket.gethostname() or 'localhost'}"


class MerkleLedger:
    """The verifiable ledger over one store (see the module docstring)."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        key_path: Path,
        origin: str | None = None,
        key_name: str | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        trusted_keys: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``origin`` is fixed when the store is created (default ``default_origin()``); a
        different configured origin later is refused. ``key_name`` defaults to the origin.
        ``checkpoint_every`` 0 or ``checkpoint_interval_s`` 0 turn that trigger off (the
        timer off also skips the checkpoint at ``open``: use it for read-only tools).
        ``trusted_keys`` are verifier keys of other nodes of the same log."""
        if checkpoint_every < 0 or checkpoint_interval_s < 0:
            raise ConfigError("checkpoint_every and checkpoint_interval_s must not be negative")
        self.store = store
        self.key_path = key_path
        self._configured_origin = origin
        self._key_name = key_name
        self._every = checkpoint_every
        self._interval = checkpoint_interval_s
        self._trusted = tuple(trusted_keys)
        self._clock = clock
        self._origin: str | None = None
        self._key: LogKey | None = None
        self._tree = MerkleTree()
        self._stale = True
        self._damage: str | None = None
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        # The size of the newest checkpoint this ledger signed and committed (0: none yet),
        # and one signed in the transaction under way, counted once it commits.
        self._signed_size = 0
        self._signing_size: int | None = None

    # --------------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Open the store, fix the origin, load or create the key, rebuild the tree.

        Raises ``LedgerUnavailable`` (storage, key file) or ``ConfigError`` (origin)."""
        if self._key is not None:
            return
        for trusted in self._trusted:  # fail at start, not in the middle of an audit
            try:
                parse_verifier_key(trusted)
            except CheckpointError as exc:
                raise ConfigError(f"trusted ledger key: {exc.message}") from exc
        proposed = _checked_origin(self._configured_origin or default_origin())
        await self.store.open()
        try:
            origin = _checked_origin(await self.store.meta("origin", proposed))
            if self._configured_origin is not None and origin != self._configured_origin:
                raise ConfigError(
                    f"the ledger at {self.store.description} has origin {origin!r}, "
                    f"not the configured {self._configured_origin!r}"
                )
            try:
                key = await asyncio.to_thread(
                    load_or_create_key, self.key_path, self._key_name or origin
                )
            except (OSError, CheckpointError) as exc:
                raise LedgerUnavailable(
                    f"cannot load the ledger signing key {self.key_path}: {exc}"
                ) from exc
            self._origin, self._key = origin, key
            async with self._lock:
                await self._refresh(self.store)
            if self._damage is not None:
                log.error("the ledger is damaged, appends are refused: %s", self._damage)
            elif self._interval:
                await self.sign_checkpoint()
        except BaseException:
            self._key = None
            await self.store.aclose()
            raise
        if self._interval:
            self._timer = asyncio.create_task(self._tick(), name="ledger-checkpoints")
        log.info(
            "ledger %s open at %s: %d entries, key %s",
            origin,
            self.store.description,
            self._tree.size,
            key.verifier_key(),
        )

    async def aclose(self) -> None:
        """Close the store; a ledger with its timer on (a server) first signs a final
        checkpoint covering its last entry (decision 10), so a clean shutdown leaves nothing
        unsigned that anyone could cut off unnoticed."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
        if self._interval and self._key is not None and self._damage is None:
            try:
                await self.checkpoint()
            except LiveError as exc:
                log.error("could not sign the final ledger checkpoint: %s", exc.message)
        async with self._lock:
            self._key = None
            self._stale = True
            await self.store.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _tick(self) -> None:
        """Sign a checkpoint every interval, even when idle: truncation and gaps show."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sign_checkpoint()
            except LiveError as exc:
                log.error("could not sign a timed ledger checkpoint: %s", exc.message)
            except Exception:  # task boundary: keep the timer alive, say why
                log.exception("could not sign a timed ledger checkpoint")

    # --------------------------------------------------------------------- identity

    @property
    def origin(self) -> str:
        """The log's origin (first line of every checkpoint)."""
        if self._origin is None:
            raise LedgerUnavailable("the ledger is not open")
        return self._origin

    def verifier_key(self) -> str:
        """The key to publish: ``<name>+<key ID>+<base64 key>`` (c2sp.org/signed-note)."""
        return self._open_key().verifier_key()

    @property
    def damage(self) -> str | None:
        """Why appends are refused (storage has a gap), or ``None``."""
        return self._damage

    def _open_key(self) -> LogKey:
        if self._key is None:
            raise LedgerUnavailable("the ledger is not open")
        return self._key

    # --------------------------------------------------------------------- the tree

    async def _refresh(self, source: StoreWriter | LedgerStore) -> None:
        """Bring the in-memory tree up to what the store holds (caller holds the lock)."""
        if self._stale:
            self._tree = MerkleTree()
            self._damage = None
            self._stale = False
        rows = await source.leaves_from(self._tree.size)
        for seq, digest in rows:
            if self._damage is not None:
                break
            if seq != self._tree.size:
                self._damage = f"entry {self._tree.size} is missing from storage"
            elif len(digest) != HASH_SIZE:
                self._damage = f"entry {seq} has a stored leaf hash of {len(digest)} bytes"
            else:
                self._tree.append(digest)

    async def _transaction(self, body: Callable[[StoreWriter], Awaitable[T]]) -> T:
        """Run ``body`` in the store's exclusive append transaction (caller holds the lock)."""
        self._open_key()
        self._signing_size = None
        try:
            async with self.store.writer() as writer:
                await self._refresh(writer)
                if self._damage is not None:
                    raise LedgerUnavailable(
                        f"the ledger is damaged ({self._damage}); run `live audit verify`",
                        code="ledger_damaged",
                    )
                result = await body(writer)
        except BaseException:
            # The tree may hold a leaf whose commit failed: rebuild it from storage.
            self._stale = True
            raise
        if self._signing_size is not None:  # committed: the checkpoint now exists
            self._signed_size = max(self._signed_size, self._signing_size)
        return result

    async def head(self) -> tuple[int, bytes]:
        """The current tree size and root hash (including other nodes' entries)."""
        async with self._lock:
            self._open_key()
            await self._refresh(self.store)
            return self._tree.size, self._tree.root()

    # --------------------------------------------------------------------- appending

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int:
        """Durably append one typed event; returns its ``seq`` (its leaf index, from 0).

        ``EventError`` / ``CanonicalError`` (400) for an invalid event; ``LedgerUnavailable``
        (503) if it could not be stored, in which case the caller must fail closed."""
        when = check_time(kind, at)
        event = encode_event(split_event(kind, actor, fields))  # invalid input fails here
        async with self._lock:
            return await self._transaction(lambda w: self._append_in(w, event, when))

    async def _append_in(self, writer: StoreWriter, event: EncodedEvent, at: float) -> int:
        key = self._open_key()
        seq = self._tree.size
        details: DetailsRow | None = None
        commitment: bytes | None = None
        if event.details_json is not None:
            salt = secrets.token_bytes(SALT_SIZE)
            commitment = details_commitment(salt, event.details_json)
            details = DetailsRow(seq=seq, salt=salt, body=event.details_json.decode("utf-8"))
        digest = leaf_hash(leaf_bytes(seq, event.kind, at, event.actor, event.public, commitment))
        row = EntryRow(
            seq=seq,
            kind=event.kind,
            at=at,
            actor=event.actor,
            fields=event.public_json.decode("utf-8"),
            details_commitment=commitment,
            leaf_hash=digest,
            signature=key.sign_entry(self.origin, digest),
            session_id=event.public.get("session_id"),
            call_id=event.public.get("call_id"),
            agent_id=event.public.get("agent_id"),
        )
        await writer.insert_entry(row, details)
        self._tree.append(digest)
        if self._every and self._tree.size % self._every == 0:
            await self._checkpoint_in(writer)
        return seq

    # --------------------------------------------------------------------- checkpoints

    async def _checkpoint_in(self, writer: StoreWriter) -> str:
        key = self._open_key()
        at = self._clock()
        size = self._tree.size
        note = key.signer.sign(self.origin, size, self._tree.root(), [time_line(at)])
        await writer.insert_checkpoint(size, at, note)
        self._signing_size = size
        return note

    @property
    def signed_size(self) -> int:
        """The tree size of the newest checkpoint this ledger signed (0 before any)."""
        return self._signed_size

    async def checkpoint_covering(self, seq: int) -> int:
        """Return once a checkpoint signed here covers entry ``seq``; returns its size.

        Group commit: callers waiting together queue on the ledger's lock, and the first
        to get it signs the whole tree, so the others find ``seq`` already covered and
        sign nothing. ``LedgerUnavailable`` if it cannot be signed (fail closed)."""
        if self._signed_size > seq:
            return self._signed_size
        async with self._lock:
            if self._signed_size <= seq:
                await self._transaction(self._checkpoint_in)
            return self._signed_size

    async def rotate_key(self, new_pem: bytes, *, actor: str = SYSTEM_ACTOR) -> tuple[int, str]:
        """Replace the signing key; returns the ``key.rotated`` entry's seq and the new
        verifier key.

        The ``key.rotated`` entry (naming old and new verifier keys) is signed by the old
        key and covered by a checkpoint signed by the old key, so anyone trusting only the
        old key can follow the rotation (``verify`` does). Then the key file is replaced
        atomically. A crash in between leaves the old key in use, which still verifies."""
        new = LogKey(self._key_name or self.origin, new_pem)  # validates before writing
        old = self._open_key()
        if new.verifier_key() == old.verifier_key():
            raise LiveError("the new key is the key in use", code="same_key")
        when = self._clock()
        event = encode_event(
            split_event(
                "key.rotated",
                actor,
                {"old_key": old.verifier_key(), "new_key": new.verifier_key()},
            )
        )
        async with self._lock:

            async def body(writer: StoreWriter) -> int:
                seq = await self._append_in(writer, event, when)
                await self._checkpoint_in(writer)
                return seq

            seq = await self._transaction(body)
            await asyncio.to_thread(replace_key_file, self.key_path, new_pem)
            self._key = new
        log.warning("ledger signing key rotated at entry %d: now %s", seq, new.verifier_key())
        return seq, new.verifier_key()

    async def sign_checkpoint(self) -> str:
        """Sign, store and return a fresh checkpoint of the current tree."""
        async with self._lock:
            return await self._transaction(self._checkpoint_in)

    async def checkpoint(self) -> str:
        """The latest signed checkpoint note, if it covers the current tree and is signed
        by this node's key; otherwise a freshly signed (and stored) one."""
        async with self._lock:
            key = self._open_key()
            await self._refresh(self.store)
            row = await self.store.latest_checkpoint()
            if row is not None:
                try:
                    cp = verify_note(row.note, key.signer.verifier(), origin=self.origin)
                except CheckpointError:
                    cp = None
                if cp is not None and cp.size == self._tree.size and cp.root == self._tree.root():
                    return row.note
            return await self._transaction(self._checkpoint_in)

    # --------------------------------------------------------------------- proofs

    async def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """PATH(seq, D[tree_size]) (RFC 9162 §2.1.3.1); ``tree_size`` defaults to the
        current size. ``TreeRangeError`` (400) if ``seq`` or ``tree_size`` is out of range."""
        async with self._lock:
            self._open_key()
            await self._refresh(self.store)
            size = self._tree.size if tree_size is None else tree_size
            hashes = self._tree.inclusion_proof(seq, size)
            return InclusionProof(seq, size, self._tree.leaf_hash(seq), tuple(hashes))

    async def consistency_proof(
        self, old_size: int, new_size: int | None = None
    ) -> ConsistencyProof:
        """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); ``new_size`` defaults to the
        current size. ``TreeRangeError`` (400) for sizes the tree does not have."""
        async with self._lock:
            self._open_key()
            await self._refresh(self.store)
            size = self._tree.size if new_size is None else new_size
            hashes = self._tree.consistency_proof(old_size, size)
            return ConsistencyProof(old_size, size, tuple(hashes))

    # --------------------------------------------------------------------- retention

    async def erase_details(
        self,
        before: float,
        *,
        actor: str = SYSTEM_ACTOR,
        at: float | None = None,
        retention_days: float | None = None,
    ) -> int:
        """Erase the personal details of every entry with ``at < before`` and append a
        ``purge.done`` entry saying so, in one transaction; returns how many were erased.

        Leaves, the tree and every checkpoint stay valid: the leaf holds only the salted
        commitment, and the salt goes with the details."""
        when = check_time("purge.done", self._clock() if at is None else at)
        cutoff = check_time("purge.done", before)

        async def purge(writer: StoreWriter) -> int:
            erased = await writer.erase_details(cutoff, when)
            fields: dict[str, Any] = {"before": cutoff, "erased": erased}
            if retention_days is not None:
                fields["retention_days"] = retention_days
            purge_event = encode_event(split_event("purge.done", actor, fields))
            await self._append_in(writer, purge_event, when)
            return erased

        async with self._lock:
            erased = await self._transaction(purge)
        log.info("erased the personal details of %d ledger entries before %s", erased, cutoff)
        return erased

    # --------------------------------------------------------------------- sessions

    async def heartbeat(self, node_id: str, at: float) -> None:
        """Record that ``node_id`` is alive at ``at`` (used to date ends after a crash)."""
        self._open_key()
        await self.store.heartbeat(node_id, at)

    async def recover(
        self,
        node_id: str,
        now: float,
        *,
        alive: Mapping[str, float] | None = None,
        skip: Collection[str] = (),
    ) -> list[str]:
        """End every session of ``node_id`` that has a start but no end; returns their ids.

        The true end of such a session is unknowable (the node died), so the entry says so
        (decision 10): reason ``node-lost``, ``ended_after`` the last proof of life of the
        session (``alive``, by session id; else the node's last heartbeat; never before its
        start) and ``ended_before`` ``now`` (the restart). ``ended_at`` (and the entry's
        time) is ``ended_after`` and ``duration_s`` the shortest duration it can have been,
        for readers that know no bounds. Sessions in ``skip`` (an end waits in the spool)
        are left alone."""
        self._open_key()
        open_sessions = await self.store.open_sessions()
        last_beat = await self.store.last_heartbeat(node_id)
        alive = alive or {}
        recovered: list[str] = []
        for row in open_sessions:
            try:
                started = row.public_fields()
            except ValueError:
                log.error("ledger entry %d is unreadable; run `live audit verify`", row.seq)
                continue
            if started.get("node_id", node_id) != node_id or row.session_id is None:
                continue
            if row.session_id in skip:
                continue
            started_at = _number(started.get("started_at"), row.at)
            seen = alive.get(row.session_id, last_beat)
            ended_after = min(max(seen if seen is not None else started_at, started_at), now)
            await self.append(
                "listen.ended",
                actor=SYSTEM_ACTOR,
                at=ended_after,
                session_id=row.session_id,
                call_id=started.get("call_id"),
                agent_id=started.get("agent_id"),
                node_id=node_id,
                reason="node-lost",
                ended_at=ended_after,
                ended_after=ended_after,
                ended_before=now,
                duration_s=round(ended_after - started_at, 3),
            )
            recovered.append(row.session_id)
        return recovered

    # --------------------------------------------------------------------- reading

    async def entries(
        self,
        *,
        kind: str | None = None,
        session_id: str | None = None,
        agent_id: str | None = None,
        call_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> list[LedgerEntry]:
        """Entries matching every given filter (``since <= at < until``,
        ``start <= seq < stop``), oldest first, with personal details while they exist."""
        self._open_key()
        rows = await self.store.read_entries(
            kind=kind,
            session_id=session_id,
            call_id=call_id,
            agent_id=agent_id,
            since=since,
            until=until,
            start=start,
            stop=stop,
        )
        return [LedgerEntry.from_rows(row, details) for row, details in rows]

    async def verify(
        self,
        *,
        trusted_keys: Sequence[str] = (),
        held_checkpoints: Sequence[str] = (),
        witnesses: Sequence[str] = (),
        trust_key_file: bool = True,
        checkpoint_interval_s: float | None = None,
    ) -> VerifyReport:
        """Rebuild and check everything stored (``verify.verify_log``).

        Trusted: this node's key (unless ``trust_key_file`` is false: then only the keys
        given, since whoever can rewrite the log can replace the key file beside it), the
        ``trusted_keys`` given at construction and here. ``witnesses`` are witness keys
        whose cosignatures make a held checkpoint trusted.
        ``held_checkpoints`` are signed notes kept elsewhere (an agent's, an auditor's).
        Gaps in checkpoint times are judged against ``checkpoint_interval_s`` (default:
        this ledger's timer; give the server's when verifying with the timer off)."""
        interval = checkpoint_interval_s if checkpoint_interval_s is not None else self._interval
        key = self._open_key()
        entries, details, checkpoints = await self.store.read_all()
        keys: list[VerifierKey | str] = [*self._trusted, *trusted_keys]
        if trust_key_file:
            keys.insert(0, key.signer.verifier())
        return await asyncio.to_thread(
            lambda: verify_log(
                origin=self.origin,
                entries=entries,
                details=details,
                checkpoints=checkpoints,
                keys=keys,
                held_checkpoints=held_checkpoints,
                witnesses=witnesses,
                now=self._clock(),
                checkpoint_interval_s=interval or None,
            )
        )


def _checked_origin(origin: str) -> str:
    """``origin`` if it can be a checkpoint's first line, else ``ConfigError``."""
    try:
        Checkpoint(origin, 0, EMPTY_ROOT).body()
    except CheckpointError as exc:
        raise ConfigError(f"ledger origin {origin!r}: {exc.message}") from exc
    return origin


def _number(value: object, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default

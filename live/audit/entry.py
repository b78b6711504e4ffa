"""A ledger entry: its leaf, its personal-details commitment, and how it is stored.

The leaf of entry ``seq`` (its position in the Merkle tree, from 0) is the RFC 8785
canonical JSON of::

    {"actor": <"system" | "user">, "at": <unix seconds>, "details_commitment": <hex | null>,
     "fields": {<public fields>}, "kind": <event kind>, "seq": <seq>}

and the tree holds ``leaf_hash(leaf)`` (RFC 9162 §2.1.1). ``details_commitment`` is
``SHA-256(salt || canonical_json(details))`` with a random 16-byte salt kept beside the
details; it is ``null`` when the entry has no personal details. The salt makes the
commitment useless for guessing details (a display name has little entropy) and is erased
with them.

Each entry also carries an *entry signature*: Ed25519 by the log's key over
``b"live.ledger entry\\x00" || origin || b"\\x00" || leaf hash``. It lets ``verify`` name
the exact entry someone rewrote, even when they recomputed its leaf hash: a checkpoint alone
only says that *some* entry below its size changed. (The NUL bytes keep the message from
ever being valid signed-note text, so it cannot be passed off as a checkpoint.)

Everything here is pure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .canonical import canonical_json
from .merkle import leaf_hash

SALT_SIZE = 16
"""Bytes of random salt per details record."""

ENTRY_SIGNATURE_CONTEXT = b"live.ledger entry\x00"


def leaf_bytes(
    seq: int,
    kind: str,
    at: float,
    actor: str,
    fields: dict[str, Any],
    details_commitment: bytes | None,
) -> bytes:
    """The canonical JSON leaf of one entry (module docstring)."""
    return canonical_json(
        {
            "seq": seq,
            "kind": kind,
            "at": at,
            "actor": actor,
            "fields": fields,
            "details_commitment": details_commitment.hex() if details_commitment else None,
        }
    )


def details_commitment(salt: bytes, details_json: bytes) -> bytes:
    """``SHA-256(salt || canonical_json(details))``: the commitment a leaf carries."""
    return hashlib.sha256(salt + details_json).digest()


def entry_signing_message(origin: str, leaf_digest: bytes) -> bytes:
    """What an entry signature signs: context, origin and the 32-byte leaf hash."""
    return ENTRY_SIGNATURE_CONTEXT + origin.encode("utf-8") + b"\x00" + leaf_digest


# --------------------------------------------------------------------------- stored rows


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One row of the entries table, exactly as stored (``verify`` trusts none of it)."""

    seq: int
    kind: str
    at: float
    actor: str
    fields: str
    """The public fields as canonical JSON text."""
    details_commitment: bytes | None
    leaf_hash: bytes
    signature: bytes | None
    """4-byte key ID followed by the 64-byte Ed25519 entry signature."""
    session_id: str | None = None
    call_id: str | None = None
    agent_id: str | None = None

    def public_fields(self) -> dict[str, Any]:
        """The public fields parsed (``ValueError`` if the stored text is not JSON)."""
        value = json.loads(self.fields)
        if not isinstance(value, dict):
            # ValueError like a JSON syntax error: both are bad stored data to the callers.
            raise ValueError("fields are not a JSON object")  # noqa: TRY004
        return value

    def leaf(self) -> bytes:
        """The leaf recomputed from the stored columns."""
        return leaf_bytes(
            self.seq, self.kind, self.at, self.actor, self.public_fields(), self.details_commitment
        )

    def computed_leaf_hash(self) -> bytes:
        return leaf_hash(self.leaf())


@dataclass(frozen=True, slots=True)
class DetailsRow:
    """The personal details of one entry; ``salt`` and ``body`` are ``None`` once erased."""

    seq: int
    salt: bytes | None
    body: str | None
    """Canonical JSON text of the details object."""
    erased_at: float | None = None

    @property
    def erased(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One stored signed checkpoint (``tree_size`` is a copy of the size in the note)."""

    id: int
    tree_size: int
    signed_at: float
    note: str


# --------------------------------------------------------------------------- read model


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One entry as the rest of the server sees it.

    ``actor`` and ``fields`` include the personal details while they exist (so within the
    retention period an entry reads as it was appended); afterwards ``actor`` is what the
    leaf says (``"user"`` or ``"system"``), ``fields`` holds only the public fields and
    ``details_erased`` is true.
    """

    seq: int
    kind: str
    at: float
    actor: str
    fields: dict[str, Any]
    public_actor: str = ""
    public_fields: dict[str, Any] = field(default_factory=dict)
    details_commitment: bytes | None = None
    details_erased: bool = False
    leaf_hash: bytes = b""
    details_json: str | None = field(default=None, repr=False)
    """The stored details (canonical JSON text) while they exist: what the commitment covers."""
    details_salt: bytes | None = field(default=None, repr=False)
    """Their salt; with ``details_json`` it opens ``details_commitment`` (exports)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            **self.fields,
        }

    def leaf(self) -> bytes:
        """The canonical JSON leaf of this entry (hash it with ``merkle.leaf_hash``)."""
        return leaf_bytes(
            self.seq,
            self.kind,
            self.at,
            self.public_actor,
            self.public_fields,
            self.details_commitment,
        )

    @classmethod
    def from_rows(cls, row: EntryRow, details: DetailsRow | None) -> LedgerEntry:
        """Read model of stored rows. Unreadable (tampered) JSON reads as empty rather than
        failing a query; ``verify`` is what reports it."""
        try:
            public = row.public_fields()
        except ValueError:
            public = {}
        merged = dict(public)
        actor = row.actor
        erased = False
        body = salt = None
        if details is not None and details.body is not None:
            body, salt = details.body, details.salt
            try:
                personal = json.loads(details.body)
            except ValueError:
                personal = None
            if isinstance(personal, dict):
                actor = str(personal.pop("actor", actor))
                merged.update(personal)
        elif row.details_commitment is not None:
            erased = True
        return cls(
            seq=row.seq,
            kind=row.kind,
            at=row.at,
            actor=actor,
            fields=merged,
            public_actor=row.actor,
            public_fields=public,
            details_commitment=row.details_commitment,
            details_erased=erased,
            leaf_hash=row.leaf_hash,
            details_json=body,
            details_salt=salt,
        )

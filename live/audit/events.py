"""The typed event kinds of the ledger, and which of their fields are personal details.

Every ledger entry is one of the kinds below. Its fields are split in two:

* **public fields** go into the leaf (and so into the Merkle tree and every signed
  checkpoint) and are kept for as long as the log exists;
* **personal details** are stored *beside* the leaf, committed in it by
  ``SHA-256(salt || canonical_json(details))``, and erased when the retention period ends
  (COMPLIANCE.md, "Retention"). The leaf, the tree and every checkpoint stay valid.

What is public is opt-in, per kind (``EventKind.public``). Everything else is personal:
a field nobody thought about is erasable by default, never published forever by accident.
The decisions, and why:

* ``agent_id`` is **public** (and an indexed column): the agent's right of access
  (GDPR Art. 15, EU Court C-579/21) and the works-council reports must find every listen
  on an agent's calls for as long as the log exists, also after retention. It is an account
  id, not a name.
* the **listener's identity is personal**: ``user_id``, ``display_name`` and the entry's
  actor when a person acted. The leaf's ``actor`` then says only ``"user"`` and the real
  actor id is the detail ``actor``. ``"system"`` (the server itself) stays as is. The court
  (C-579/21) gives the names of those who accessed data only where needed; after the
  retention period they are gone, while dates, purposes and legs heard remain provable.
* **caller data is personal**: caller number / ANI / DNIS, names, e-mail addresses;
* **free text is personal**: notes, comments, messages, the text of a notice.
* ids of sessions, calls, notices, exports and nodes, purposes, reasons, legs, times,
  durations, counts and policy versions are **public**: they are what an audit proves.

``ALWAYS_PERSONAL`` lists names that are personal whatever the kind; no kind may declare
them public (checked at import).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import BadRequest
from .canonical import canonical_json

SYSTEM_ACTOR = "system"
"""The actor of entries the server writes on its own (ends after a crash, purges, ...)."""

PERSON_ACTOR = "user"
"""What the leaf says as ``actor`` when a person acted; their id is the detail ``actor``."""

RESERVED_FIELDS = frozenset({"seq", "kind", "at", "actor", "fields", "details_commitment"})
"""Names that belong to the leaf itself and cannot be used as field names."""

INDEXED_FIELDS = ("session_id", "call_id", "agent_id")
"""Public fields copied into indexed columns for queries (and checked by ``verify``)."""

ALWAYS_PERSONAL = frozenset(
    {
        "user_id",
        "display_name",
        "user_name",
        "username",
        "name",
        "email",
        "caller",
        "caller_number",
        "caller_name",
        "ani",
        "dnis",
        "from_number",
        "to_number",
        "phone",
        "note",
        "notes",
        "comment",
        "text",
        "message",
        "recipient",
    }
)


class EventError(BadRequest):
    """An entry that is not a valid typed event (unknown kind, reserved or bad field)."""

    code = "bad_event"


@dataclass(frozen=True, slots=True)
class EventKind:
    """One kind of ledger entry: its name, what it records, and its public field names."""

    name: str
    description: str
    public: frozenset[str]


def _kind(name: str, description: str, *public: str) -> EventKind:
    return EventKind(name, description, frozenset(public))


_SESSION = ("session_id", "call_id", "agent_id", "node_id")

EVENT_KINDS: Mapping[str, EventKind] = MappingProxyType(
    {
        k.name: k
        for k in (
            _kind(
                "listen.started",
                "a supervisor started listening to a call (written before any audio flows)",
                *_SESSION,
                "purpose",
                "legs",
                "started_at",
                "policy_version",
                "team",
                "notice_mode",
                "role",
                "resumes",  # the session this one resumes after a restart or a lost connection
            ),
            _kind(
                "listen.ended",
                "a listen session ended, however it ended (reason says how)",
                *_SESSION,
                "reason",
                "ended_at",
                "ended_after",
                "ended_before",
                "duration_s",
                "dropped_packets",
                "first_packet_at",
                "last_packet_at",
                "heard_s",
            ),
            _kind(
                "listen.refused",
                "a listen request was refused by the policy or because it could not be logged",
                *_SESSION,
                "purpose",
                "reason",
                "code",
                "policy_version",
                "role",
            ),
            _kind(
                "leg.muted",
                "a leg stopped reaching a listener (consent revoked, PCI pause, ...)",
                *_SESSION,
                "leg",
                "reason",
            ),
            _kind(
                "leg.unmuted",
                "a leg reaches a listener again",
                *_SESSION,
                "leg",
                "reason",
            ),
            _kind(
                "notice.delivered",
                "a monitoring notice reached the agent",
                *_SESSION,
                "notice_id",
                "mode",
                "channel",
                "policy_version",
            ),
            _kind(
                "notice.seen",
                "the agent acknowledged a monitoring notice",
                "notice_id",
                "agent_id",
                "session_id",
                "call_id",
                "seen_at",
            ),
            _kind(
                "policy.changed",
                "the monitoring policy (the works-council profile) changed",
                "version",
                "previous_version",
                "sha256",
                "role",
            ),
            _kind(
                "export.made",
                "a disclosure export or report was produced",
                "export_id",
                "format",
                "scope",
                "agent_id",
                "team",
                "entries",
                "tree_size",
                "since",
                "until",
                "role",
            ),
            _kind(
                "purge.done",
                "personal details older than the retention period were erased",
                "before",
                "erased",
                "retention_days",
            ),
            _kind(
                "consent.changed",
                "the caller's consent state of a call changed",
                "call_id",
                "agent_id",
                "consent",
                "source",
            ),
            _kind(
                "key.rotated",
                "the log's signing key was replaced; signed by the old key, naming the new one",
                "old_key",
                "new_key",
            ),
            _kind("pci.paused", "a call entered a payment (PCI) pause", "call_id", "agent_id"),
            _kind("pci.resumed", "a call left its payment (PCI) pause", "call_id", "agent_id"),
            _kind(
                "checkpoint.inconsistent",
                "an agent's page found the log inconsistent with a checkpoint it kept",
                "agent_id",
                "problem",
                "kept_checkpoint",
                "served_checkpoint",
                "kept_size",
                "served_size",
            ),
        )
    }
)

for _k in EVENT_KINDS.values():  # a kind that publishes a personal field is a bug
    assert not (_k.public & ALWAYS_PERSONAL), _k.name
    assert not (_k.public & RESERVED_FIELDS), _k.name


@dataclass(frozen=True, slots=True)
class SplitEvent:
    """An event split for storage: what goes in the leaf, and what goes beside it."""

    kind: str
    actor: str
    """The leaf's actor: ``"system"`` or ``"user"`` (a person, named in ``details``)."""
    public: dict[str, Any]
    details: dict[str, Any]


def split_event(kind: str, actor: str, fields: Mapping[str, Any]) -> SplitEvent:
    """Check an event and split it into public fields and personal details.

    Raises ``EventError`` for an unknown kind, an empty actor, a reserved field name, or
    an indexed field (``session_id``, ``call_id``, ``agent_id``) that is not a string.
    Values must also have a canonical JSON form; that is checked when the leaf is built.
    """
    event_kind = EVENT_KINDS.get(kind)
    if event_kind is None:
        raise EventError(
            f"unknown ledger event kind {kind!r:.60}; known: {', '.join(sorted(EVENT_KINDS))}",
            kind=kind,
        )
    if not isinstance(actor, str) or not actor:
        raise EventError(f"{kind}: the actor must be a non-empty string", kind=kind)
    public: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, value in fields.items():
        if name in RESERVED_FIELDS:
            raise EventError(f"{kind}: {name!r} is reserved and cannot be a field", kind=kind)
        if not _FIELD_NAME.fullmatch(name):
            raise EventError(f"{kind}: bad field name {name!r:.60}", kind=kind)
        if name in event_kind.public and name not in ALWAYS_PERSONAL:
            public[name] = value
        else:
            details[name] = value
    for name in INDEXED_FIELDS:
        value = public.get(name)
        if value is not None and not isinstance(value, str):
            raise EventError(f"{kind}: {name} must be a string, got {value!r:.60}", kind=kind)
    if actor == SYSTEM_ACTOR:
        leaf_actor = SYSTEM_ACTOR
    else:
        leaf_actor = PERSON_ACTOR
        details["actor"] = actor
    return SplitEvent(kind=kind, actor=leaf_actor, public=public, details=details)


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """A split event with its canonical JSON parts, ready to become a leaf."""

    kind: str
    actor: str
    public: dict[str, Any]
    public_json: bytes
    details_json: bytes | None


def encode_event(event: SplitEvent) -> EncodedEvent:
    """Canonicalise both parts (``CanonicalError`` for values JSON cannot hold)."""
    return EncodedEvent(
        kind=event.kind,
        actor=event.actor,
        public=event.public,
        public_json=canonical_json(event.public),
        details_json=canonical_json(event.details) if event.details else None,
    )


def check_time(kind: str, at: float) -> float:
    """The entry time as a float; ``EventError`` unless it is a finite number."""
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise EventError(f"{kind}: the entry time must be a finite number, got {at!r:.40}")
    return float(at)


_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

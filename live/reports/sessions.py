"""Listen sessions: each ``listen.started`` ledger entry joined with its ``listen.ended``.

Pure: any list of ledger entries in, one ``ListenRecord`` per session out, in the order they
started. Everything people read about listens (disclosures, reports) starts here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..audit.entry import LedgerEntry


@dataclass(frozen=True, slots=True)
class ListenRecord:
    """One listen session: its ``listen.started`` entry joined with its ``listen.ended``.

    ``listener_id`` and ``listener_name`` are personal details: ``None`` once erased."""

    session_id: str
    call_id: str | None
    agent_id: str | None
    started_seq: int
    started_at: float
    purpose: str | None
    legs: tuple[str, ...]
    listener_id: str | None
    listener_name: str | None
    listener_role: str | None
    policy_version: str | None
    team: str | None
    node_id: str | None
    ended_seq: int | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    end_reason: str | None = None
    dropped_packets: int | None = None
    # What was heard: first and last packet handed to the listener (None: none was, or an
    # end written before these fields existed) and the time between them.
    first_packet_at: float | None = None
    last_packet_at: float | None = None
    heard_s: float | None = None
    ended_after: float | None = None
    ended_before: float | None = None

    @property
    def running(self) -> bool:
        return self.ended_seq is None

    @property
    def attempt(self) -> bool:
        """The listener's browser never connected (``setup-failed``): nothing was heard."""
        return self.end_reason == "setup-failed"

    @property
    def end_bounded(self) -> bool:
        """Whether the true end is unknowable (the node died, ``node-lost``) and only its
        bounds are on record: it ended between ``ended_after`` and ``ended_before``."""
        return self.ended_after is not None and self.ended_before is not None

    @property
    def longest_s(self) -> float | None:
        """The longest the session can have lasted (its duration when the end is known)."""
        if self.ended_before is not None:
            return max(0.0, self.ended_before - self.started_at)
        return self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "started_seq": self.started_seq,
            "started_at": self.started_at,
            "purpose": self.purpose,
            "legs": list(self.legs),
            "listener_id": self.listener_id,
            "listener_name": self.listener_name,
            "listener_role": self.listener_role,
            "policy_version": self.policy_version,
            "team": self.team,
            "node_id": self.node_id,
            "ended_seq": self.ended_seq,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "end_reason": self.end_reason,
            "dropped_packets": self.dropped_packets,
            "first_packet_at": self.first_packet_at,
            "last_packet_at": self.last_packet_at,
            "heard_s": self.heard_s,
            "ended_after": self.ended_after,
            "ended_before": self.ended_before,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def join_sessions(entries: Iterable[LedgerEntry]) -> list[ListenRecord]:
    """Listen sessions from ledger entries, in the order they started.

    Only ``listen.started`` entries make a session; the first ``listen.ended`` with the same
    ``session_id`` ends it. Other kinds are ignored, so any query result can be passed."""
    started: list[LedgerEntry] = []
    ended: dict[str, LedgerEntry] = {}
    for entry in entries:
        session_id = _text(entry.fields.get("session_id"))
        if session_id is None:
            continue
        if entry.kind == "listen.started":
            started.append(entry)
        elif entry.kind == "listen.ended":
            ended.setdefault(session_id, entry)
    records = []
    for entry in sorted(started, key=lambda e: e.seq):
        f = entry.fields
        session_id = str(f["session_id"])
        end = ended.get(session_id)
        e = end.fields if end is not None else {}
        legs = f.get("legs")
        at = _number(f.get("started_at"))
        dropped = _number(e.get("dropped_packets"))
        records.append(
            ListenRecord(
                session_id=session_id,
                call_id=_text(f.get("call_id")),
                agent_id=_text(f.get("agent_id")),
                started_seq=entry.seq,
                started_at=at if at is not None else entry.at,
                purpose=_text(f.get("purpose")),
                legs=tuple(str(x) for x in legs) if isinstance(legs, list) else (),
                listener_id=_text(f.get("user_id")) or _person(entry.actor),
                listener_name=_text(f.get("display_name")),
                listener_role=_text(f.get("role")),
                policy_version=_text(f.get("policy_version")),
                team=_text(f.get("team")),
                node_id=_text(f.get("node_id")),
                ended_seq=end.seq if end is not None else None,
                ended_at=(_number(e.get("ended_at")) or end.at) if end is not None else None,
                duration_s=_number(e.get("duration_s")),
                end_reason=_text(e.get("reason")),
                dropped_packets=int(dropped) if dropped is not None else None,
                first_packet_at=_number(e.get("first_packet_at")),
                last_packet_at=_number(e.get("last_packet_at")),
                heard_s=_number(e.get("heard_s")),
                ended_after=_number(e.get("ended_after")),
                ended_before=_number(e.get("ended_before")),
            )
        )
    return records


def _person(actor: str) -> str | None:
    """The entry's actor if it names a person (not ``user`` after erasure, not ``system``)."""
    return None if actor in ("user", "system", "") else actor

"""Revoked credentials: what a revocation says, and the set a node checks requests against.

Three kinds, each a ``Revocation`` record in the shared store (``revocation_store``):

* ``session``: one browser session (sign-out, or replaced at sign-in), until it would have
  expired anyway;
* ``user``: every browser session of a user issued at or before ``at`` (password change,
  ``live users signout``, a removed user), until the last of them would have expired;
* ``token``: one API token, by the SHA-256 the user store keeps of it, for good.

Pure: no I/O. ``RevokedSet`` is what a node has learnt; ``Revocation.to_json`` /
``from_json`` are the form sent through Redis between nodes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import BadRequest
from .sessions import BrowserSession

MAX_SUBJECT = 200
"""Longest subject accepted (session ids are 32 hex digits, digests 64, user ids short)."""


class RevocationKind(StrEnum):
    SESSION = "session"
    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class Revocation:
    kind: RevocationKind
    subject: str
    """The session id, the user id, or the token's SHA-256 (hex)."""
    at: float
    """When it was revoked; for ``user``: sessions issued at or before this are revoked."""
    expires_at: float | None
    """When nothing it covers can be presented any more (then it may be forgotten);
    ``None``: kept for good."""

    def __post_init__(self) -> None:
        if not self.subject or len(self.subject) > MAX_SUBJECT:
            raise BadRequest(f"a revocation's subject is 1 to {MAX_SUBJECT} characters")
        if not math.isfinite(self.at) or (self.expires_at is not None and not math.isfinite(self.expires_at)):
            raise BadRequest("a revocation's times are finite numbers")

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind.value, "subject": self.subject, "at": self.at, "expires_at": self.expires_at})

    @classmethod
    def from_json(cls, data: str | bytes) -> Revocation:
        """Parse ``to_json``'s form; anything else is a ``BadRequest``."""
        try:
            raw: Any = json.loads(data)
            if not isinstance(raw, dict) or set(raw) != {"kind", "subject", "at", "expires_at"}:
                raise ValueError("not a revocation object")
            subject, at, expires_at = raw["subject"], raw["at"], raw["expires_at"]
            if not isinstance(subject, str) or isinstance(at, bool) or not isinstance(at, (int, float)):
                raise ValueError("wrong field types")
            if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))):
                raise ValueError("wrong expiry type")
            kind = RevocationKind(raw["kind"])
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"not a revocation: {exc}") from exc
        return cls(kind, subject, float(at), None if expires_at is None else float(expires_at))


def session_revoked(session: BrowserSession, at: float) -> Revocation:
    """Sign-out of one session, remembered until the session would have expired."""
    return Revocation(RevocationKind.SESSION, session.session_id, at, session.expires_at)


def user_revoked(user_id: str, at: float, session_ttl_s: float) -> Revocation:
    """Every session of ``user_id`` issued until ``at``; the last of them expires by
    ``at + session_ttl_s``."""
    return Revocation(RevocationKind.USER, user_id, at, at + session_ttl_s)


def token_revoked(digest: str, at: float) -> Revocation:
    """An API token withdrawn, by its SHA-256; tokens do not expire, so neither does this."""
    return Revocation(RevocationKind.TOKEN, digest, at, None)


@dataclass(slots=True)
class RevokedSet:
    """Every revocation a node knows of, by kind, ready to check a credential against."""

    sessions: dict[str, float] = field(default_factory=dict)
    users: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def add(self, revocation: Revocation) -> None:
        subject = revocation.subject
        if revocation.kind is RevocationKind.SESSION:
            self.sessions[subject] = max(self.sessions.get(subject, 0.0), revocation.expires_at or math.inf)
        elif revocation.kind is RevocationKind.USER:
            if revocation.at >= self.users.get(subject, (-math.inf, None))[0]:
                self.users[subject] = (revocation.at, revocation.expires_at)
        else:
            self.tokens.add(subject)

    def session_revoked(self, session: BrowserSession) -> bool:
        if session.session_id in self.sessions:
            return True
        revoked = self.users.get(session.user_id)
        return revoked is not None and session.issued_at <= revoked[0]

    def token_revoked(self, digest: str) -> bool:
        return digest in self.tokens

    def purge(self, now: float) -> None:
        """Forget what covers nothing any more (what has expired)."""
        self.sessions = {s: e for s, e in self.sessions.items() if e > now}
        self.users = {u: (at, e) for u, (at, e) in self.users.items() if e is None or e > now}

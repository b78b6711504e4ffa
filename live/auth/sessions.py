"""Browser sessions: signed cookies (``live.auth.tokens``) plus server-side revocation.

The cookie carries a random session id, the user id, when it was issued and when it expires.
A local user's role and teams are re-read from the user store on every request, so a removed
user loses access at once; an OpenID Connect user has no local record, so the cookie carries
the role and teams the provider's ID token gave at sign-in (bounded by the session's
lifetime). Sign-out, a password change and ``live users signout`` revoke sessions on the
server (``Revocations``): a copied cookie is worth nothing afterwards. The CSRF token is
derived from the session id (HMAC under its own purpose key), so it changes with every
sign-in.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import Role
from .identity import Identity
from .tokens import SignedTokens


@dataclass(frozen=True, slots=True)
class BrowserSession:
    user_id: str
    session_id: str
    expires_at: float
    issued_at: float = 0.0
    # Only for users who are not in the local store (OpenID Connect): who they are.
    display_name: str = ""
    role: Role | None = None
    teams: tuple[str, ...] = ()

    def identity(self) -> Identity | None:
        """The identity the cookie itself carries (external sign-in), else ``None``."""
        if self.role is None:
            return None
        return Identity(self.user_id, self.display_name or self.user_id, self.role, self.teams, "session", self.session_id)


class SessionCodec:
    """Session cookies and their CSRF tokens, each signed for its own purpose (``tokens``)."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._cookies = SignedTokens(secret, "session")
        self._csrf = SignedTokens(secret, "csrf")
        self.ttl_s = ttl_s

    def issue(self, user_id: str, now: float, *, identity: Identity | None = None) -> tuple[str, BrowserSession]:
        """A fresh session (a new id every time: sign-in rotates the session)."""
        session = BrowserSession(
            user_id,
            secrets.token_hex(16),
            now + self.ttl_s,
            now,
            identity.display_name if identity else "",
            identity.role if identity else None,
            identity.teams if identity else (),
        )
        data: dict[str, Any] = {"u": session.user_id, "s": session.session_id, "i": now}
        if identity is not None:
            data.update(n=identity.display_name, r=identity.role.value, t=list(identity.teams))
        return self._cookies.seal(data, session.expires_at), session

    def read(self, cookie: str, now: float) -> BrowserSession | None:
        """The session a cookie this server issued stands for, unless it has expired."""
        opened = self._cookies.open(cookie, now)
        if opened is None:
            return None
        data = opened.fields
        try:
            role = Role(data["r"]) if "r" in data else None
            teams = data.get("t", [])
            if not isinstance(teams, list):
                return None
            return BrowserSession(
                str(data["u"]),
                str(data["s"]),
                opened.expires_at,
                float(data.get("i", 0.0)),
                str(data.get("n", "")),
                role,
                tuple(str(t) for t in teams),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def csrf_token(self, session_id: str) -> str:
        return self._csrf.tag(session_id.encode())

    def csrf_matches(self, session_id: str, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``session_id`` (compared in constant time)."""
        return token is not None and self._csrf.tag_matches(session_id.encode(), token)


class Revocations:
    """Sessions revoked before their expiry, kept until they would have expired anyway.

    Two kinds: one session (sign-out, replaced at sign-in) and every session of a user issued
    before a moment (password change, ``live users signout``). Kept in a small SQLite file in
    the data directory, so a restart forgets nothing and the ``live users`` command can revoke
    while the server runs; ``refresh()`` picks up what other processes wrote. Nodes of a
    cluster share revocations through Redis (``live.server.revocation_sync``).
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, float] = {}
        self._users: dict[str, float] = {}
        self._db: sqlite3.Connection | None = None
        self._version = -1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS revoked_session (session_id TEXT PRIMARY KEY, expires_at REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS revoked_user (user_id TEXT PRIMARY KEY, not_before REAL NOT NULL)"
            )
            self.refresh()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def refresh(self) -> None:
        """Re-read the file when another process (``live users``, another worker) changed it."""
        if self._db is None:
            return
        with self._lock:
            version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            if version == self._version:
                return
            self._version = version
            now = time.time()
            for sid, exp in self._db.execute("SELECT session_id, expires_at FROM revoked_session WHERE expires_at > ?", (now,)):
                self._sessions[str(sid)] = float(exp)
            for uid, nb in self._db.execute("SELECT user_id, not_before FROM revoked_user"):
                self._users[str(uid)] = max(self._users.get(str(uid), 0.0), float(nb))

    def revoke(self, session_id: str, expires_at: float) -> None:
        with self._lock:
            self._sessions[session_id] = expires_at
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO revoked_session VALUES (?, ?)", (session_id, expires_at)
                )

    def revoke_user(self, user_id: str, not_before: float) -> None:
        with self._lock:
            self._users[user_id] = max(self._users.get(user_id, 0.0), not_before)
            if self._db is not None:
                self._db.execute(
                    "INSERT INTO revoked_user VALUES (?, ?) ON CONFLICT(user_id) DO UPDATE SET "
                    "not_before = max(not_before, excluded.not_before)",
                    (user_id, not_before),
                )

    def merge(self, sessions: dict[str, float], users: dict[str, float]) -> None:
        """Revocations learnt from another node."""
        with self._lock:
            self._sessions.update(sessions)
            for uid, nb in users.items():
                self._users[uid] = max(self._users.get(uid, 0.0), nb)

    def is_revoked(self, session: BrowserSession) -> bool:
        if session.session_id in self._sessions:
            return True
        return session.issued_at <= self._users.get(session.user_id, 0.0)

    def purge(self, now: float) -> None:
        with self._lock:
            self._sessions = {s: e for s, e in self._sessions.items() if e > now}
            if self._db is not None:
                self._db.execute("DELETE FROM revoked_session WHERE expires_at <= ?", (now,))

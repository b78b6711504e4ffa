"""Browser sessions: signed cookies ``base64(json) . HMAC-SHA256`` plus server-side revocation.

The cookie carries a random session id, the user id, when it was issued and when it expires.
A local user's role and teams are re-read from the user store on every request, so a removed
user loses access at once; an OpenID Connect user has no local record, so the cookie carries
the role and teams the provider's ID token gave at sign-in (bounded by the session's
lifetime). Sign-out, a password change and ``live users signout`` revoke sessions on the
server (``Revocations``): a copied cookie is worth nothing afterwards. The CSRF token is
derived from the session id (HMAC), so it changes with every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..types import Role
from .identity import Identity


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._key = hashlib.sha256(b"live-session:" + secret.encode()).digest()
        self.ttl_s = ttl_s

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())

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
        data: dict[str, Any] = {"u": session.user_id, "s": session.session_id, "e": session.expires_at, "i": now}
        if identity is not None:
            data.update(n=identity.display_name, r=identity.role.value, t=list(identity.teams))
        body = json.dumps(data, separators=(",", ":")).encode()
        return f"{_b64(body)}.{self._sign(body)}", session

    def read(self, cookie: str, now: float) -> BrowserSession | None:
        try:
            encoded, signature = cookie.split(".", 1)
            body = _unb64(encoded)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            data = json.loads(body)
            role = Role(data["r"]) if "r" in data else None
            teams = data.get("t", [])
            if not isinstance(teams, list):
                return None
            session = BrowserSession(
                str(data["u"]),
                str(data["s"]),
                float(data["e"]),
                float(data.get("i", 0.0)),
                str(data.get("n", "")),
                role,
                tuple(str(t) for t in teams),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, session_id: str) -> str:
        return self._sign(b"csrf:" + session_id.encode())


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

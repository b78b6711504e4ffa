"""The embedded user store: a JSON file of users with hashed passwords and API tokens.

Tokens are random 32-byte values shown once (``live users token USER``); only their
SHA-256 is stored, so the file leaks no usable credential. Passwords use scrypt
(RFC 7914) with a per-user salt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.private import replace_private_file
from ..errors import BadRequest, Conflict, NotFound
from ..types import Role
from .identity import Identity

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual.hex(), digest)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class User:
    user_id: str
    display_name: str
    role: Role
    teams: tuple[str, ...] = ()
    password: str = ""
    tokens: list[str] = field(default_factory=list)

    def identity(self, via: str, session_id: str = "") -> Identity:
        return Identity(self.user_id, self.display_name, self.role, self.teams, via, session_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "role": self.role.value,
            "teams": list(self.teams),
            "password": self.password,
            "tokens": self.tokens,
        }


class UserStore:
    """Users kept in one JSON file; every change is written atomically (rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._by_token: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.load()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> None:
        """Pick up changes another process made (``live users remove`` while serving):
        a removed user or revoked token stops working at the next request."""
        if self._file_stamp() != self._stamp:
            with self._lock:
                try:
                    self.load()
                except (OSError, ValueError, KeyError):
                    pass  # a half-written file from an editor: keep the users we have

    def load(self) -> None:
        users: dict[str, User] = {}
        stamp = self._file_stamp()
        if self.path.exists():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for user_id, raw in data.get("users", {}).items():
                users[user_id] = User(
                    user_id,
                    raw.get("display_name", user_id),
                    Role(raw["role"]),
                    tuple(raw.get("teams", ())),
                    raw.get("password", ""),
                    list(raw.get("tokens", [])),
                )
        self._users = users
        self._by_token = {digest: u.user_id for u in users.values() for digest in u.tokens}
        self._stamp = stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"users": {uid: u.to_json() for uid, u in sorted(self._users.items())}}
        replace_private_file(self.path, json.dumps(payload, indent=2).encode("utf-8"))
        self._by_token = {digest: u.user_id for u in self._users.values() for digest in u.tokens}
        self._stamp = self._file_stamp()

    def get(self, user_id: str) -> User:
        self.refresh()
        user = self._users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}", code="unknown_user")
        return user

    def list(self) -> list[User]:
        self.refresh()
        return sorted(self._users.values(), key=lambda u: u.user_id)

    def add(
        self, user_id: str, role: Role, *, display_name: str = "", teams: tuple[str, ...] = (), password: str = ""
    ) -> User:
        if not user_id or not user_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise BadRequest("user ids are letters, digits, '-', '_' and '.'")
        with self._lock:
            if user_id in self._users:
                raise Conflict(f"user {user_id!r} exists")
            user = User(user_id, display_name or user_id, role, teams, hash_password(password) if password else "")
            self._users[user_id] = user
            self._save()
        return user

    def remove(self, user_id: str) -> None:
        with self._lock:
            self.get(user_id)
            del self._users[user_id]
            self._save()

    def set_password(self, user_id: str, password: str) -> None:
        with self._lock:
            self.get(user_id).password = hash_password(password)
            self._save()

    def issue_token(self, user_id: str) -> str:
        """A new API token for ``user_id``; shown once, stored as its SHA-256."""
        token = "lt_" + secrets.token_urlsafe(32)
        with self._lock:
            self.get(user_id).tokens.append(token_digest(token))
            self._save()
        return token

    def revoke_tokens(self, user_id: str) -> int:
        """Withdraw every API token of ``user_id``; returns how many there were."""
        with self._lock:
            user = self.get(user_id)
            count = len(user.tokens)
            user.tokens = []
            self._save()
        return count

    def by_token(self, token: str) -> User | None:
        self.refresh()
        user_id = self._by_token.get(token_digest(token))
        return self._users.get(user_id) if user_id else None

    def by_password(self, user_id: str, password: str) -> User | None:
        self.refresh()
        user = self._users.get(user_id)
        if user is None or not user.password or not check_password(password, user.password):
            return None
        return user

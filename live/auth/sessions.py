"""Browser sessions as signed cookies: ``base64(json) . HMAC-SHA256``.

The cookie carries the user id, a random session id and the expiry; the server re-reads the
user on every request, so a removed user loses access at once. The CSRF token is derived
from the session id (HMAC), so it changes with every sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrowserSession:
    user_id: str
    session_id: str
    expires_at: float


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

    def issue(self, user_id: str, now: float) -> tuple[str, BrowserSession]:
        session = BrowserSession(user_id, secrets.token_hex(16), now + self.ttl_s)
        body = json.dumps({"u": session.user_id, "s": session.session_id, "e": session.expires_at}).encode()
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
            session = BrowserSession(str(data["u"]), str(data["s"]), float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, session_id: str) -> str:
        return self._sign(b"csrf:" + session_id.encode())

"""SIP digest authentication of recording clients (RFC 3261 §22.4, RFC 7616, RFC 8760).

Optional: only when ``LIVE_SIPREC_DIGEST`` names users. Nonces are stateless: the time they
were issued and an HMAC of it under a per-process key, valid for ``NONCE_TTL_S``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

NONCE_TTL_S = 300
REALM = "live"
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def parse_credentials(value: str) -> dict[str, str]:
    """The parameters of an ``Authorization: Digest ...`` header (empty if not digest)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


class DigestAuthenticator:
    def __init__(self, users: dict[str, str], *, realm: str = REALM) -> None:
        self.users = users
        self.realm = realm
        self._key = secrets.token_bytes(32)

    def _nonce(self, issued: int) -> str:
        mac = hmac.new(self._key, str(issued).encode(), hashlib.sha256).hexdigest()[:32]
        return f"{issued}.{mac}"

    def challenge(self, now: float | None = None) -> str:
        """The ``WWW-Authenticate`` value of a 401."""
        nonce = self._nonce(int(now if now is not None else time.time()))
        return f'Digest realm="{self.realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'

    def _nonce_valid(self, nonce: str, now: float) -> bool:
        issued, _, _mac = nonce.partition(".")
        if not issued.isdigit():
            return False
        if not hmac.compare_digest(self._nonce(int(issued)), nonce):
            return False
        return 0 <= now - int(issued) <= NONCE_TTL_S

    def verify(self, method: str, authorization: str, now: float | None = None) -> str | None:
        """The authenticated user name, or ``None``."""
        params = parse_credentials(authorization)
        user = params.get("username", "")
        password = self.users.get(user)
        if password is None or params.get("realm") != self.realm:
            return None
        if not self._nonce_valid(params.get("nonce", ""), now if now is not None else time.time()):
            return None
        digest = _HASHES.get(params.get("algorithm", "MD5").upper())
        if digest is None:
            return None

        def h(text: str) -> str:
            return digest(text.encode()).hexdigest()

        ha1 = h(f"{user}:{self.realm}:{password}")
        ha2 = h(f"{method}:{params.get('uri', '')}")
        if params.get("qop") == "auth":
            expected = h(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = h(f"{ha1}:{params['nonce']}:{ha2}")
        return user if hmac.compare_digest(expected, params.get("response", "")) else None

"""Signed, expiring tokens for the browser: the session cookie, the OIDC login state, CSRF.

One format for every value this server hands a browser to give back unchanged::

    BASE64URL(JSON object) "." BASE64URL(HMAC-SHA256(purpose key, first part))

The JSON object is the caller's fields plus ``exp`` (when the token stops being accepted, in
seconds since the epoch). Nothing is encrypted: put nothing secret from the *user* in it.

Purpose binding: every purpose (``"session"``, ``"oidc-login"``, ...) signs with its own key,
derived from the server secret with HKDF-Expand (RFC 5869 section 2.3, SHA-256, info
``"live signed token" 0x00 purpose``), so a session cookie is no OIDC login state and an OIDC login state no session cookie, even
though both come from the same secret. The MAC is checked, in constant time, before anything
in the token is decoded.

``b64url_encode``/``b64url_decode`` are the project's one base64url codec (RFC 4648 section
5, without padding as RFC 7515 section 2 uses it); the decoder is strict.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
EXPIRES = "exp"  # the one field the token format itself reserves


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; ``ValueError`` for anything else.

    Strict: only the URL-safe alphabet, no padding, no impossible length and no stray bits in
    the last character (so every byte string has exactly one accepted spelling).
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the pattern above already excludes it
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


@dataclass(frozen=True, slots=True)
class OpenedToken:
    """The caller's fields of a token that verified, and when it expires."""

    fields: dict[str, Any]
    expires_at: float


class SignedTokens:
    """Seal and open tokens of one purpose with a key derived from ``secret``."""

    def __init__(self, secret: str | bytes, purpose: str) -> None:
        if not secret:
            raise ValueError("a signing secret must not be empty")
        if not purpose or "\0" in purpose:
            raise ValueError(f"bad token purpose {purpose!r}")
        raw = secret.encode() if isinstance(secret, str) else secret
        self.purpose = purpose
        info = b"live signed token\0" + purpose.encode()
        self._key = HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(raw)

    def tag(self, data: bytes) -> str:
        """``BASE64URL(HMAC-SHA256(purpose key, data))``: a MAC for values kept elsewhere."""
        return b64url_encode(hmac.new(self._key, data, hashlib.sha256).digest())

    def tag_matches(self, data: bytes, tag: str) -> bool:
        """Whether ``tag`` is ``tag(data)``, compared in constant time."""
        return hmac.compare_digest(self.tag(data).encode(), tag.encode("utf-8", "replace"))

    def seal(self, fields: Mapping[str, Any], expires_at: float) -> str:
        """A token carrying ``fields`` (JSON values; ``exp`` is reserved) until ``expires_at``."""
        if EXPIRES in fields:
            raise ValueError(f"{EXPIRES!r} is reserved for the token's expiry")
        body = json.dumps({**fields, EXPIRES: expires_at}, separators=(",", ":")).encode()
        encoded = b64url_encode(body)
        return f"{encoded}.{self.tag(encoded.encode('ascii'))}"

    def open(self, token: str, now: float) -> OpenedToken | None:
        """The fields of a token this purpose sealed and that has not expired, else ``None``.

        ``None`` for every kind of failure (wrong MAC, other purpose, expired, garbage): the
        caller treats them all as "no token", and an attacker learns nothing from which.
        """
        if not isinstance(token, str):
            return None
        encoded, dot, tag = token.partition(".")
        if not dot or not self.tag_matches(encoded.encode("utf-8", "replace"), tag):
            return None
        try:
            fields = json.loads(b64url_decode(encoded))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
            return None
        if not isinstance(fields, dict):
            return None
        expires_at = fields.pop(EXPIRES, None)
        if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
            return None
        return OpenedToken(fields, float(expires_at)) if expires_at > now else None

"""Browser sessions: signed cookies (``live.auth.tokens``) plus server-side revocation.

The cookie carries a random session id, the user id, when it was issued and when it expires.
A local user's role and teams are re-read from the user store on every request, so a removed
user loses access at once; an OpenID Connect user has no local record, so the cookie carries
the role and teams the provider's ID token gave at sign-in (bounded by the session's
lifetime). Sign-out, a password change and ``live users signout`` revoke sessions on the
server, on every node (``revocation_service``): a copied cookie is worth nothing afterwards.
The CSRF token is derived from the session id (HMAC under its own purpose key), so it
changes with every sign-in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
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

"""Who is asking: cookie sessions and bearer tokens, CSRF and Origin checks."""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiohttp import web

from ..auth import Identity
from ..auth.users import token_digest
from ..errors import Forbidden, NotFound, Unauthorized
from ..types import Role
from .state import STATE

SESSION_COOKIE = "live_session"
CSRF_HEADER = "X-CSRF-Token"


def identify(request: web.Request) -> Identity | None:
    """Who the request's bearer token or session cookie stands for; ``None`` without one.

    A node that cannot currently know every revocation answers a request that brings a
    valid-looking credential with 503 ``revocations_unavailable`` (fail closed)."""
    state = request.app[STATE]
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("malformed Authorization header", code="bad_token")
        user = state.users.by_token(token.strip())
        # Withdrawn on any node (the shared revocations), or unknown here: refused alike.
        if user is None or state.revocations.token_revoked(token_digest(token.strip())):
            raise Unauthorized("unknown or revoked token", code="bad_token")
        return user.identity("token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    session = state.sessions.read(cookie, time.time())
    if session is None or state.revocations.session_revoked(session):
        return None
    external = session.identity()
    if external is not None:  # signed in with OpenID Connect: the cookie says who
        return external
    try:
        user = state.users.get(session.user_id)
    except NotFound:
        return None
    return user.identity("session", session.session_id)


def require(request: web.Request, roles: Iterable[Role] | None = None) -> Identity:
    """The caller's identity, or 401; 403 unless their role is in ``roles``.

    Cookie-authenticated state-changing requests must carry the CSRF token (a bearer token
    is not sent by browsers on their own, so it needs none).
    """
    identity = identify(request)
    if identity is None:
        raise Unauthorized("sign in first", code="signed_out")
    if identity.via == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
        sessions = request.app[STATE].sessions
        if not sessions.csrf_matches(identity.session_id, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong CSRF token", code="csrf")
    if roles is not None and identity.role not in tuple(roles):
        raise Forbidden(f"the {identity.role.value} role may not do this", code="role_forbidden")
    return identity


def check_origin(request: web.Request) -> None:
    """Browsers send Origin on WebSocket upgrades and POSTs: it must be this server's own."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    allowed = {f"{request.scheme}://{request.host}"}
    public = request.app[STATE].settings.public_url.rstrip("/")
    if public:
        allowed.add(public)
    if origin not in allowed:
        raise Forbidden("cross-origin request refused", code="bad_origin")


def is_loopback(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host = peer[0] if peer else ""
    return host in ("127.0.0.1", "::1") or host.startswith("127.")

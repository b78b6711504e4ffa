"""Builds the aiohttp application around one ``Node`` (``live.node``)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from ..auth import SessionCodec, UserStore
from ..auth.revocation_service import RevocationService
from ..auth.revocation_store import open_revocation_store
from ..config import Settings
from ..node import Node, build_node
from ..types import EndReason
from . import (
    abuse,
    api,
    audit,
    ingest,
    ingest_audiohook,
    ingest_audiosocket,
    ingest_fork,
    ingest_rtp,
    ingest_sip,
    pages,
)
from .abuse import AbuseLimits, abuse_middleware
from .access import access_middleware
from .errors import Handler, error_middleware
from .routes import mount_all
from .state import STATE, ServerState

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def _harden(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(("/api/", "/auth/")):
        response.headers.setdefault("Cache-Control", "no-store")
    else:
        # Pages and their files are checked with the server every time: a signed-out browser
        # must not be shown a cached page, and a new release reaches every browser at once.
        response.headers.setdefault("Cache-Control", "no-cache")
    if request.secure or request.app[STATE].settings.public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and aiohttp's own errors get them too
        _harden(request, exc)
        raise
    _harden(request, response)
    return response


def revocation_service(settings: Settings) -> RevocationService:
    """Revocations in the ledger's database (PostgreSQL or the data directory's SQLite),
    announced through Redis when the nodes share one."""
    return RevocationService(
        open_revocation_store(settings.ledger.url.get_secret_value(), settings.data_dir),
        session_ttl_s=settings.session.ttl_s,
        redis_url=settings.redis_url.get_secret_value(),
        poll_s=settings.session.revocation_poll_s,
        bound_s=settings.session.revocation_bound_s,
    )


def create_app(settings: Settings, *, users: UserStore | None = None, node: Node | None = None) -> web.Application:
    """The whole server as an aiohttp application; the node starts and stops with it."""
    app = web.Application(middlewares=[security_headers, error_middleware, abuse_middleware, access_middleware], client_max_size=64 * 1024)
    state = ServerState(
        settings=settings,
        node=node if node is not None else build_node(settings),
        users=users or UserStore(settings.users_path),
        # Without a configured secret, sessions last as long as this process.
        sessions=SessionCodec(settings.session.secret.get_secret_value() or secrets.token_hex(32), settings.session.ttl_s),
        limits=AbuseLimits.from_settings(settings),
        revocations=revocation_service(settings),
    )
    app[STATE] = state

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await state.revocations.start()
        try:
            await state.node.start()
            state.ready = True
            yield
            state.ready = False
            await state.node.stop()
        finally:
            await state.revocations.stop()

    async def end_listens(app: web.Application) -> None:
        # First of the shutdown hooks: before ingest connections close and end their calls,
        # so each listen is on record as ended by the shutdown.
        await state.node.listens.end_all(EndReason.SHUTDOWN)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_listens)
    # What the routes need (their state, lifecycles, metrics); the routes come from the table.
    abuse.setup(app)  # after the node's lifecycle: the limits count its listen sessions
    api.setup(app)
    audit.setup(app)
    ingest.setup(app)
    ingest_audiohook.setup(app)
    ingest_fork.setup(app)
    ingest_audiosocket.setup(app)
    ingest_rtp.setup(app)  # before ingest_sip: it owns the RTP port pool both use
    ingest_sip.setup(app)
    pages.setup(app)
    mount_all(app)
    return app

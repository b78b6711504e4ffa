"""Builds the aiohttp application around one ``Node`` (``live.node``)."""

from __future__ import annotations

import logging
import secrets
from typing import AsyncIterator

from aiohttp import web

from ..auth import Revocations, SessionCodec, UserStore
from ..config import Settings
from ..node import Node, build_node
from . import (
    agent,
    api,
    audit,
    ingest,
    ingest_audiohook,
    ingest_audiosocket,
    ingest_fork,
    ingest_rtp,
    ingest_sip,
    openapi,
    pages,
)
from .revocation import RevocationService
from .abuse import AbuseLimits, abuse_middleware
from .access import access_middleware, check_routes
from .errors import Handler, error_middleware
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


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return web.json_response({"status": "starting"}, status=503)
    reason = state.node.unready_reason()
    if reason is not None:  # listens would be refused (fail closed): take no traffic
        return web.json_response({"status": "unavailable", "reason": reason}, status=503)
    return web.json_response({"status": "ready", "node_id": state.node.node_id})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: what an operator watches."""
    state = request.app[STATE]
    stats = state.node.stats()
    calls, listens, ledger = stats.calls, stats.listens, stats.ledger
    lines = [
        "# TYPE live_calls gauge",
        f"live_calls{{scope=\"node\"}} {calls.node_calls}",
        f"live_calls{{scope=\"cluster\"}} {calls.cluster_calls}",
        "# TYPE live_listen_sessions gauge",
        f"live_listen_sessions {listens.sessions}",
        "# TYPE live_packets_ingested_total counter",
        f"live_packets_ingested_total {calls.packets_ingested}",
        "# TYPE live_packets_delivered_total counter",
        f"live_packets_delivered_total {listens.packets_delivered}",
        "# TYPE live_packets_dropped_total counter",
        f"live_packets_dropped_total {listens.packets_dropped}",
        "# TYPE live_ledger_spooled gauge",
        f"live_ledger_spooled {ledger.spooled}",
        "# TYPE live_ledger_writable gauge",
        f"live_ledger_writable {1 if ledger.writable else 0}",
        "# TYPE live_listen_refused_total counter",
        f"live_listen_refused_total {listens.refused}",
        "# TYPE live_ingest_connections_total counter",
        f"live_ingest_connections_total{{result=\"accepted\"}} {state.ingest.accepted}",
        f"live_ingest_connections_total{{result=\"refused\"}} {state.ingest.refused}",
        "# TYPE live_ingest_frames_rejected_total counter",
        f"live_ingest_frames_rejected_total {state.ingest.rejected_frames}",
        "# TYPE live_ingest_protocol_errors_total counter",
        f"live_ingest_protocol_errors_total {state.ingest.protocol_errors}",
        "# TYPE live_abuse_refused_total counter",
        *(f"live_abuse_refused_total{{limit=\"{what}\"}} {count}" for what, count in sorted(state.limits.refused.items())),
        "# TYPE live_websockets gauge",
        f"live_websockets {state.limits.open_ws_total}",
        "# TYPE live_packets_late_total counter",
        f"live_packets_late_total {calls.packets_late}",
    ]
    for source in state.metric_sources:
        lines.extend(source())
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def create_app(settings: Settings, *, users: UserStore | None = None, node: Node | None = None) -> web.Application:
    """The whole server as an aiohttp application; the node starts and stops with it."""
    app = web.Application(middlewares=[security_headers, error_middleware, abuse_middleware, access_middleware], client_max_size=64 * 1024)
    state = ServerState(
        settings=settings,
        node=node if node is not None else build_node(settings),
        users=users or UserStore(settings.users_path),
        # Without a configured secret, sessions last as long as this process.
        sessions=SessionCodec(settings.session_secret or secrets.token_hex(32), settings.session_ttl_s),
        limits=AbuseLimits.from_settings(settings),
        revocations=RevocationService(Revocations(settings.data_dir / "sessions.sqlite3"), settings.redis_url),
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

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    api.setup(app)
    agent.setup(app)
    audit.setup(app)
    ingest.setup(app)
    ingest_audiohook.setup(app)
    ingest_fork.setup(app)
    ingest_audiosocket.setup(app)
    ingest_rtp.setup(app)  # before ingest_sip: it owns the RTP port pool both use
    ingest_sip.setup(app)
    pages.setup(app)
    openapi.setup(app)
    check_routes(app)
    return app

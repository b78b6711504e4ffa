"""Builds the aiohttp application around one ``Monitor``."""

from __future__ import annotations

import logging
import secrets
from typing import AsyncIterator

from aiohttp import web

from ..audit import Ledger, open_ledger
from ..auth import Revocations, SessionCodec, UserStore
from ..bus import CallBus, MemoryCallBus
from ..config import Settings
from ..service import Monitor
from ..types import EndReason
from . import (
    agent,
    api,
    audit,
    audit_entries,
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


def make_bus(settings: Settings) -> CallBus:
    if settings.redis_url:
        from ..bus.redis import RedisCallBus

        return RedisCallBus(settings.redis_url.get_secret_value(), settings.effective_node_id)
    return MemoryCallBus()


def make_ledger(settings: Settings) -> Ledger:
    return open_ledger(
        settings.ledger.url.get_secret_value(),
        settings.ledger_path,
        key_path=settings.ledger_key_path,
        origin=settings.ledger.origin or None,
        checkpoint_every=settings.ledger.checkpoint_every,
        checkpoint_interval_s=float(settings.ledger.checkpoint_interval_s),
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return web.json_response({"status": "starting"}, status=503)
    reason = state.monitor.unready_reason()
    if reason is not None:  # listens would be refused (fail closed): take no traffic
        return web.json_response({"status": "unavailable", "reason": reason}, status=503)
    return web.json_response({"status": "ready", "node_id": state.monitor.node_id})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: what an operator watches."""
    state = request.app[STATE]
    monitor = state.monitor
    queues = [q for s in monitor.sessions.values() for q in s.queues.values()]
    received = sum(m.agent.received + m.caller.received for m in monitor.local.values())
    lines = [
        "# TYPE live_calls gauge",
        f"live_calls{{scope=\"node\"}} {len(monitor.local)}",
        f"live_calls{{scope=\"cluster\"}} {len(monitor.roster.calls)}",
        "# TYPE live_listen_sessions gauge",
        f"live_listen_sessions {len(monitor.sessions)}",
        "# TYPE live_packets_ingested_total counter",
        f"live_packets_ingested_total {received}",
        "# TYPE live_packets_delivered_total counter",
        f"live_packets_delivered_total {sum(q.delivered for q in queues)}",
        "# TYPE live_packets_dropped_total counter",
        f"live_packets_dropped_total {sum(q.dropped for q in queues)}",
        "# TYPE live_ledger_spooled gauge",
        f"live_ledger_spooled {monitor.spool.waiting}",
        "# TYPE live_ledger_writable gauge",
        f"live_ledger_writable {0 if monitor.spool.problem else 1}",
        "# TYPE live_listen_refused_total counter",
        f"live_listen_refused_total {monitor.refused}",
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
        f"live_packets_late_total {sum(m.agent.late + m.caller.late for m in monitor.local.values())}",
    ]
    for source in state.metric_sources:
        lines.extend(source())
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def create_app(settings: Settings, *, users: UserStore | None = None, monitor: Monitor | None = None) -> web.Application:
    """The whole server as an aiohttp application; the monitor starts and stops with it."""
    app = web.Application(middlewares=[security_headers, error_middleware, abuse_middleware, access_middleware], client_max_size=64 * 1024)
    if monitor is None:
        ledger = make_ledger(settings)
        monitor = Monitor(settings, make_bus(settings), ledger)
    state = ServerState(
        settings=settings,
        monitor=monitor,
        users=users or UserStore(settings.users_path),
        # Without a configured secret, sessions last as long as this process.
        sessions=SessionCodec(settings.session.secret.get_secret_value() or secrets.token_hex(32), settings.session.ttl_s),
        limits=AbuseLimits.from_settings(settings),
        revocations=RevocationService(Revocations(settings.data_dir / "sessions.sqlite3"), settings.redis_url.get_secret_value()),
    )
    app[STATE] = state

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await state.revocations.start()
        try:
            await state.monitor.start()
            state.ready = True
            yield
            state.ready = False
            await state.monitor.stop()
        finally:
            await state.revocations.stop()

    async def end_listens(app: web.Application) -> None:
        # First of the shutdown hooks: before ingest connections close and end their calls,
        # so each listen is on record as ended by the shutdown.
        await state.monitor.end_listens(EndReason.SHUTDOWN)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_listens)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    api.setup(app)
    agent.setup(app)
    audit.setup(app)
    audit_entries.setup(app)
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

"""``/healthz``, ``/readyz`` and ``/metrics``: what load balancers and operators watch."""

from __future__ import annotations

from aiohttp import web

from .bodies import answer
from .route import PUBLIC, Reply, Route
from .schemas import Health, NotReady, Ready
from .state import STATE


async def healthz(request: web.Request) -> web.Response:
    return answer(Health(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return answer(NotReady(status="starting"), status=503)
    reason = state.node.unready_reason()
    if reason is None and state.revocations.stale_for() is not None:  # every credential is refused
        reason = "revoked sessions could not be read from the shared store in time"
    if reason is not None:  # listens would be refused (fail closed): take no traffic
        return answer(NotReady(status="unavailable", reason=reason), status=503)
    return answer(Ready(status="ready", node_id=state.node.node_id))


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
        "# TYPE live_bus_connected gauge",
        f"live_bus_connected {1 if stats.bus_connected else 0}",
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
        "# TYPE live_revocations_current gauge",
        f"live_revocations_current {0 if state.revocations.stale_for() is not None else 1}",
    ]
    for source in state.metric_sources:
        lines.extend(source())
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


ROUTES = (
    Route(
        method="GET",
        path="/healthz",
        handler=healthz,
        rule=PUBLIC,
        operation_id="healthz",
        summary="The process is up.",
        tag="operations",
        replies=(Reply(200, "OK", Health),),
    ),
    Route(
        method="GET",
        path="/readyz",
        handler=readyz,
        rule=PUBLIC,
        operation_id="readyz",
        summary="The node is ready to serve (ledger, bus, policy loaded).",
        tag="operations",
        replies=(
            Reply(200, "Ready.", Ready),
            Reply(503, "Starting or stopping, or the ledger cannot be written (reason says why).", NotReady),
        ),
    ),
    Route(
        method="GET",
        path="/metrics",
        handler=metrics,
        rule=PUBLIC,  # counters only: no call ids, people or numbers
        operation_id="metrics",
        summary="Prometheus text exposition: counters only, no personal data.",
        tag="operations",
        replies=(Reply(200, "OK", media={"text/plain": {"type": "string"}}),),
    ),
)

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
    reason = state.monitor.unready_reason()
    if reason is not None:  # listens would be refused (fail closed): take no traffic
        return answer(NotReady(status="unavailable", reason=reason), status=503)
    return answer(Ready(status="ready", node_id=state.monitor.node_id))


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

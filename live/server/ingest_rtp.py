"""Plain RTP ingest over the API, and the RTP port pool that SIPREC shares."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from ..config import Settings
from ..ingest.rtp import LegStats
from ..ingest.rtp_calls import PlainRtpCalls, parse_announcement
from ..ingest.rtp_ports import RtpPortPool, parse_port_range
from ..types import LegName
from .bodies import answer
from .ingest import authenticate_ingest
from .route import INGEST, Reply, Route, path_param, takes
from .schemas import RtpCall, RtpCallRequest, RtpPorts
from .state import STATE

log = logging.getLogger(__name__)

RTP_CALLS: web.AppKey[PlainRtpCalls] = web.AppKey("live_rtp_calls", PlainRtpCalls)


def _specific(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return bool(host) and host != "localhost"


def rtp_hosts(settings: Settings) -> tuple[str, str]:
    """(the address RTP ports are bound on, the address senders are told to send to).

    A server bound to one address receives RTP there too; one bound to every address
    (``0.0.0.0``) binds RTP likewise and advertises ``LIVE_RTP_ADDRESS``, or else this
    machine's name as resolved here (set ``LIVE_RTP_ADDRESS`` behind NAT).
    """
    sip_host = settings.siprec.listen.rpartition(":")[0].strip("[]") if settings.siprec.listen else ""
    host = next((h for h in (sip_host, settings.host) if _specific(h)), "")
    if host == "localhost":
        host = "127.0.0.1"
    bind = host or "0.0.0.0"
    advertised = settings.rtp.address or host
    if not advertised:
        try:
            advertised = socket.gethostbyname(socket.gethostname())
        except OSError:
            advertised = "127.0.0.1"
        log.warning("LIVE_RTP_ADDRESS is not set: telling RTP senders to send to %s", advertised)
    return bind, advertised


def leg_metrics(source: str, stats: dict[LegName, list[LegStats]]) -> list[str]:
    """Per-leg receive counters of an RTP source (summed over its calls, ended ones too)."""
    lines: list[str] = []
    for name, help_ in (
        ("received", "RTP packets received"),
        ("lost", "RTP packets lost (never arrived within the reorder window)"),
        ("late", "RTP packets dropped as too late or reordered beyond the window"),
        ("duplicates", "duplicate RTP packets dropped"),
        ("bad", "datagrams that were not valid RTP of the call's codec"),
        ("undecryptable", "SRTP packets that failed authentication"),
    ):
        lines.append(f"# HELP live_rtp_{name}_total {help_}")
        lines.append(f"# TYPE live_rtp_{name}_total counter")
        for leg, items in stats.items():
            total = sum(getattr(s, name) for s in items)
            lines.append(f'live_rtp_{name}_total{{source="{source}",leg="{leg}"}} {total}')
    lines.append("# TYPE live_rtp_jitter_ms gauge")
    for leg, items in stats.items():
        live_items = items[1:]  # the first is the sum of ended calls
        worst = max((s.jitter_ms for s in live_items), default=0.0)
        lines.append(f'live_rtp_jitter_ms{{source="{source}",leg="{leg}"}} {worst:.3f}')
    return lines


async def announce(request: web.Request, body: RtpCallRequest) -> web.Response:
    announcement = parse_announcement(body.model_dump(exclude_none=True))
    calls = request.app[RTP_CALLS]
    call = await calls.announce(announcement)
    _bind, address = rtp_hosts(request.app[STATE].settings)
    ports = {leg: endpoint.port for leg, endpoint in call.endpoints.items()}
    return answer(
        RtpCall(call_id=call.call_id, codec=call.codec, address=address, ports=RtpPorts(**ports)),
        status=201,
    )


async def end(request: web.Request) -> web.Response:
    await request.app[RTP_CALLS].end(request.match_info["call_id"], "deleted")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    state = app[STATE]
    settings = state.settings
    bind, _advertised = rtp_hosts(settings)
    state.rtp_pool = RtpPortPool(parse_port_range(settings.rtp.ports), bind)
    calls = PlainRtpCalls(state.node.calls, state.rtp_pool, timeout_s=float(settings.rtp.timeout_s))
    app[RTP_CALLS] = calls

    def metrics() -> list[str]:
        stats: dict[LegName, list[LegStats]] = {
            leg: [calls.closed_stats[leg]] + [c.stats[leg] for c in calls.calls.values() if leg in c.stats]
            for leg in ("agent", "caller")
        }
        return [
            "# TYPE live_rtp_calls gauge",
            f'live_rtp_calls{{source="rtp"}} {len(calls.calls)}',
            "# TYPE live_rtp_ports_in_use gauge",
            f"live_rtp_ports_in_use {state.rtp_pool.in_use if state.rtp_pool else 0}",
            *leg_metrics("rtp", stats),
        ]

    state.metric_sources.append(metrics)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        calls.start()
        yield
        await calls.close()
        if state.rtp_pool is not None:
            state.rtp_pool.close()

    app.cleanup_ctx.append(lifecycle)


ROUTES = (
    Route(
        method="POST",
        path="/api/ingest/rtp/calls",
        handler=takes(RtpCallRequest, announce),
        rule=INGEST,
        checks=(authenticate_ingest,),
        operation_id="ingestRtpAnnounce",
        summary="Announce a call sent as plain RTP.",
        tag="ingest",
        description="For senders of plain RTP (Asterisk ARI `externalMedia`, GStreamer, ffmpeg): one UDP "
        "port per leg comes back. PT 0 (PCMU) or 8 (PCMA), 20 ms. The call ends with `DELETE`, "
        "or when no RTP arrives for `LIVE_RTP_TIMEOUT_S`. 503 `rtp_ports_exhausted` when every "
        "port of `LIVE_RTP_PORTS` is in use.",
        replies=(Reply(201, "The call is live; send each leg's RTP to its port.", RtpCall),),
        errors=(409, 503),
    ),
    Route(
        method="DELETE",
        path="/api/ingest/rtp/calls/{call_id}",
        handler=end,
        rule=INGEST,
        checks=(authenticate_ingest,),
        operation_id="ingestRtpEnd",
        summary="End a call announced as plain RTP.",
        tag="ingest",
        params=(path_param("call_id", "The id given when the call was announced."),),
        replies=(Reply(204, "Ended: its listens end as `call-ended`."),),
        errors=(404,),
    ),
)

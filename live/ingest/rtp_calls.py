"""Plain RTP calls announced over the API (Asterisk ARI ``externalMedia``, GStreamer, ffmpeg).

The sender announces a call (``POST /api/ingest/rtp/calls``) and gets one UDP port per leg;
it then sends RTP, PT 0 (PCMU) or 8 (PCMA), 20 ms, to each. The call ends when the sender
says so (``DELETE``), or when no RTP has arrived on any leg for ``LIVE_RTP_TIMEOUT_S``.
Packets go through the same per-leg receive path as SIPREC media (``rtp.RtpLegReceiver``:
reorder within three packets, duplicates dropped, monotonic timestamps).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadRequest, LiveError, NotFound
from ..model import Codec
from ..types import LEGS, CallId, Consent, LegName
from .periodic import every
from .rtp import LegStats, RtpLegReceiver
from .rtp_ports import RtpEndpoint, RtpPortPool
from .sink import CallAnnouncement, CallSink

log = logging.getLogger(__name__)

MAX_TEXT = 128


@dataclass(eq=False)
class PlainRtpCall:
    call_id: CallId
    codec: Codec
    endpoints: dict[LegName, RtpEndpoint]
    announced_at: float
    stats: dict[LegName, LegStats] = field(default_factory=dict)


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", code="bad_field", field=name)
    value = value.strip()
    if required and not value:
        raise BadRequest(f"{name} is required", code="bad_field", field=name)
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise BadRequest(f"{name} must be at most {MAX_TEXT} printable characters", code="bad_field", field=name)
    return value


def parse_announcement(body: object) -> CallAnnouncement:
    """The JSON body of ``POST /api/ingest/rtp/calls`` as a call announcement."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="bad_json")
    codec = _text(body, "codec") or "PCMU"
    if codec.upper() not in ("PCMU", "PCMA"):
        raise BadRequest("codec must be PCMU or PCMA", code="bad_field", field="codec")
    consent = _text(body, "consent") or "unknown"
    if consent not in {c.value for c in Consent}:
        raise BadRequest("consent must be granted, denied or unknown", code="bad_field", field="consent")
    private = body.get("private", False)
    if not isinstance(private, bool):
        raise BadRequest("private must be true or false", code="bad_field", field="private")
    return CallAnnouncement(
        call_id=CallId(_text(body, "call_id", required=True)),
        source="rtp",
        agent_id=_text(body, "agent_id"),
        consent=Consent(consent),
        codec="PCMA" if codec.upper() == "PCMA" else "PCMU",
        queue=_text(body, "queue"),
        private=private,
    )


class PlainRtpCalls:
    """Calls whose legs arrive as plain RTP on ports from the shared pool."""

    def __init__(self, sink: CallSink, pool: RtpPortPool, *, timeout_s: float) -> None:
        self.sink = sink
        self.pool = pool
        self.timeout_s = timeout_s
        self.calls: dict[CallId, PlainRtpCall] = {}
        self.closed_stats: dict[LegName, LegStats] = {"agent": LegStats(), "caller": LegStats()}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.create_task(every(1.0, lambda: self.sweep(time.monotonic_ns()), "plain RTP sweep"), name="rtp-calls-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for call_id in list(self.calls):
            await self.end(call_id, "shutdown")

    async def announce(self, announcement: CallAnnouncement) -> PlainRtpCall:
        """Open a port per leg and register the call; ``Conflict`` if it is live already."""
        endpoints = await self.pool.open_legs(len(LEGS))
        try:
            media = await self.sink.call_started(announcement)
        except BaseException:
            self.pool.release(endpoints)
            raise
        call = PlainRtpCall(announcement.call_id, announcement.codec, dict(zip(LEGS, endpoints)), time.monotonic())
        for leg, endpoint in call.endpoints.items():
            endpoint.set_receiver(RtpLegReceiver(media.leg(leg).publish, codec=call.codec))
            call.stats[leg] = endpoint.stats
        self.calls[call.call_id] = call
        log.info("plain RTP call %s announced: ports %s", call.call_id, {k: e.port for k, e in call.endpoints.items()})
        return call

    async def end(self, call_id: str, why: str = "ended") -> None:
        call = self.calls.pop(CallId(call_id), None)
        if call is None:
            raise NotFound(f"no plain RTP call {call_id!r}", code="unknown_call")
        self.pool.release(list(call.endpoints.values()))  # publishes what they still hold
        for leg, stats in call.stats.items():
            self.closed_stats[leg].add(stats)
        try:
            await self.sink.call_ended(call.call_id)
        except LiveError as exc:
            log.error("could not end plain RTP call %s: %s", call.call_id, exc.message)
        log.info("plain RTP call %s ended (%s)", call.call_id, why)

    async def sweep(self, now_ns: int) -> None:
        """End calls with no RTP on any leg for ``timeout_s``."""
        for call in list(self.calls.values()):
            last = max([e.last_packet_ns for e in call.endpoints.values()] + [int(call.announced_at * 1e9)])
            if now_ns - last > self.timeout_s * 1e9:
                log.warning("plain RTP call %s: no RTP for %ss, ending it", call.call_id, self.timeout_s)
                await self.end(call.call_id, "media-timeout")

"""Typed application state (``web.AppKey``), shared by every route module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ..auth import SessionCodec, UserStore
from ..auth.revocation_service import RevocationService
from ..config import Settings
from ..node import Node

if TYPE_CHECKING:
    from ..ingest.rtp_ports import RtpPortPool
    from ..ingest.sip.transport import SipServer
    from .abuse import AbuseLimits


@dataclass(slots=True)
class IngestCounters:
    accepted: int = 0
    refused: int = 0
    rejected_frames: int = 0
    protocol_errors: int = 0


@dataclass(slots=True)
class ServerState:
    settings: Settings
    node: Node
    users: UserStore
    sessions: SessionCodec
    revocations: RevocationService
    limits: AbuseLimits
    ingest: IngestCounters = field(default_factory=IngestCounters)
    ready: bool = False
    # Each ingest source adds a function giving its lines of /metrics (Prometheus text format,
    # with their "# TYPE" lines): the metrics route reads them, never a source's internals.
    metric_sources: list[Callable[[], list[str]]] = field(default_factory=list)
    rtp_pool: RtpPortPool | None = None  # RTP ports shared by SIPREC and plain RTP
    siprec: SipServer | None = None  # the SIPREC server, when LIVE_SIPREC_LISTEN is set


STATE: web.AppKey[ServerState] = web.AppKey("live_state", ServerState)

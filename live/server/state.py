"""Typed application state (``web.AppKey``), shared by every route module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ..auth import SessionCodec, UserStore
from ..config import Settings
from ..service import Monitor
from .revocation import RevocationService

if TYPE_CHECKING:
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
    monitor: Monitor
    users: UserStore
    sessions: SessionCodec
    revocations: RevocationService
    limits: AbuseLimits
    ingest: IngestCounters = field(default_factory=IngestCounters)
    ready: bool = False


STATE: web.AppKey[ServerState] = web.AppKey("live_state", ServerState)

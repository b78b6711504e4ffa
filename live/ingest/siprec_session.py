"""The state of SIPREC dialogs: one ``RecordingSession`` per dialog, and the SRS's counters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from ..media.hub import CallMedia
from ..model import Codec
from ..types import CallId, LegName
from .rtp import LegStats
from .rtp_ports import RtpEndpoint
from .sip import SipMessage


class SipPeer(Protocol):
    """Where a request came from and how to answer it (one per datagram source or stream)."""

    transport: str  # "udp" | "tcp" | "tls"
    address: tuple[str, int]

    @property
    def reliable(self) -> bool: ...

    def send(self, message: SipMessage) -> None: ...


@dataclass
class SiprecCounters:
    invites: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    ended: dict[str, int] = field(default_factory=dict)
    retransmissions: int = 0

    def refuse(self, status: int) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1


@dataclass(eq=False)
class RecordingSession:
    """One SIPREC dialog: one call on our side."""

    sip_call_id: str
    local_tag: str
    remote_tag: str
    peer: SipPeer
    remote_uri: str  # the client's Contact: where our BYE goes
    from_header: str  # the client's From (our To in requests we send)
    to_header: str  # the client's To with our tag (our From)
    call_id: CallId
    codec: Codec
    endpoints: list[RtpEndpoint]
    labels: list[str]  # labels of the streams we receive, in offer order
    leg_of: dict[str, LegName]
    media: CallMedia | None = None
    confirmed: bool = False
    ended: bool = False
    held: bool = False
    sdp_version: int = 1
    sdp_session: int = 0
    answer: str = ""
    local_cseq: int = 0
    confirmed_at: float = 0.0
    refreshed_at: float = 0.0
    session_expires: int = 0
    we_refresh: bool = False
    invite_branch: str = ""
    retransmit: asyncio.TimerHandle | None = None
    keepalive: asyncio.TimerHandle | None = None
    stats: dict[LegName, LegStats] = field(default_factory=dict)


@dataclass
class _Pending:
    cancelled: bool = False

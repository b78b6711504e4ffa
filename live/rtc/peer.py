"""The server side of one listener's ``RTCPeerConnection``.

The browser offers two receive-only audio transceivers, agent first and caller second
(architecture decision 1). We answer send-only on both with PCMU (or PCMA) as the only codec,
so the browser receives the ingested G.711 packets untouched (RFC 3551 payload types 0/8).
ICE is non-trickle: the offer carries the browser's candidates, the answer ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from ..config import IceServer
from ..errors import BadRequest
from ..model import Codec
from ..types import LEGS, EndReason, LegName
from .track import PacketTrack

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 32 * 1024

EndCallback = Callable[[EndReason], Awaitable[None]]


class ListenPeer:
    """Owns one ``RTCPeerConnection``; reports how it ended through ``on_end`` once."""

    def __init__(self, ice_servers: Sequence[IceServer], on_end: EndCallback) -> None:
        # An explicit (possibly empty) list: aiortc's default is a public STUN server,
        # which stalls candidate gathering on a closed network (architecture decision 8).
        config = RTCConfiguration(
            iceServers=[RTCIceServer(s.urls, s.username, s.credential) for s in ice_servers]
        )
        self.pc = RTCPeerConnection(config)
        self._on_end = on_end
        self._ended = False
        self.mids: dict[LegName, str] = {}
        self.connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._state_changed)

    async def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
        elif state == "failed":
            # ICE or DTLS that never completed is a setup failure: nothing was heard.
            await self._end(EndReason.PEER_FAILED if self.connected.is_set() else EndReason.SETUP_FAILED)
        elif state == "closed":
            await self._end(EndReason.PEER_CLOSED)

    async def _end(self, reason: EndReason) -> None:
        if self._ended:
            return
        self._ended = True
        await self._on_end(reason)

    async def answer(
        self, offer_sdp: str, tracks: dict[LegName, PacketTrack], codec: Codec
    ) -> str:
        """Apply the browser's offer and return our answer SDP. Raises ``BadRequest``."""
        if not isinstance(offer_sdp, str) or not offer_sdp.strip():
            raise BadRequest("sdp must be a non-empty string", code="bad_sdp")
        if len(offer_sdp) > MAX_SDP_BYTES:
            raise BadRequest("sdp is too large", code="bad_sdp")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
            raise BadRequest(f"the offer SDP could not be parsed: {exc}", code="bad_sdp") from exc
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) < 2:
            raise BadRequest(
                "the offer needs two audio transceivers (agent, caller)", code="bad_sdp"
            )
        mime = f"audio/{codec}".lower()
        for leg, transceiver in zip(LEGS, audio):
            # aiortc stores the offer's direction reversed to our point of view: a browser
            # that offers "recvonly" lets us "sendonly".
            if transceiver._offerDirection not in ("sendonly", "sendrecv"):
                raise BadRequest(f"the {leg} transceiver must be able to receive", code="bad_sdp")
            # aiortc intersects codecs while applying the remote offer, before any preference
            # could be set: narrow the negotiated list to the leg's codec ourselves so the
            # answer carries exactly one (RFC 3264 §6.1 allows answering a subset).
            common = [c for c in transceiver._codecs if c.mimeType.lower() == mime]
            if not common:
                raise BadRequest(
                    f"no common codec: the browser must offer {codec} for the {leg} leg",
                    code="bad_sdp",
                )
            transceiver._codecs = common
            transceiver.direction = "sendonly"
            transceiver.sender.replaceTrack(tracks[leg])
            self.mids[leg] = transceiver.mid or ""
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

    async def close(self, reason: EndReason) -> None:
        """Close the connection; ``on_end`` is called with ``reason`` unless already ended."""
        await self._end(reason)
        try:
            await self.pc.close()
        except Exception:  # task boundary: closing must never mask the end being logged
            log.exception("closing a peer connection failed")

"""A supervisor's browser stand-in: an aiortc peer with two receive-only audio legs.

It measures what a person would hear per leg: packets received and RMS level of the
decoded audio (aiortc decodes PCMU on the receive side).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from tests.support.wait import wait_for


@dataclass
class LegStats:
    frames: int = 0
    levels: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # loop.time() of each decoded frame

    def level(self, last: int = 50) -> float:
        recent = self.levels[-last:]
        return max(recent) if recent else 0.0


class Listener:
    """``ice_servers`` and ``relay_only`` are the browser's ``RTCConfiguration``
    (``iceServers``, ``iceTransportPolicy: "relay"``): with ``relay_only`` every packet it
    receives has come through a TURN server."""

    def __init__(
        self, base_url: str, token: str, *, ice_servers: Sequence[RTCIceServer] = (), relay_only: bool = False
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers), iceTransportPolicy=policy))
        self.stats = {"agent": LegStats(), "caller": LegStats()}
        self.session_id: str | None = None
        self.answer: dict[str, Any] = {}
        # RTP timestamps as they arrive, per leg (read off the receivers, before any jitter
        # buffer): what a browser's RTP stack sees.
        self.rtp_timestamps: dict[str, list[int]] = {"agent": [], "caller": []}
        self._tasks: list[asyncio.Task[None]] = []

    async def listen(
        self, call_id: str, purpose: str = "quality", *, apply_answer: bool = True, resumes: str | None = None
    ) -> dict[str, Any]:
        """Offer, and apply the server's answer unless ``apply_answer`` is false (a browser
        that went away, or stalled, between its request and the answer). ``resumes`` names
        an interrupted listen this one resumes."""
        agent = self.pc.addTransceiver("audio", direction="recvonly")
        caller = self.pc.addTransceiver("audio", direction="recvonly")
        mids: dict[str, str] = {}
        for leg, transceiver in (("agent", agent), ("caller", caller)):
            self._record_rtp(leg, transceiver.receiver)

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            for leg, transceiver in (("agent", agent), ("caller", caller)):
                if transceiver.receiver.track is track:
                    self._tasks.append(asyncio.create_task(self._consume(leg, track)))

        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.base_url}/api/calls/{call_id}/listen",
                json={
                    "sdp": self.pc.localDescription.sdp,
                    "type": "offer",
                    "purpose": purpose,
                    **({"resumes": resumes} if resumes is not None else {}),
                },
                headers=self.headers,
            ) as response:
                body = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"listen refused: {response.status} {body}")
        self.answer = body
        self.session_id = body["session_id"]
        if not apply_answer:
            return body
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        del mids
        return body

    def _record_rtp(self, leg: str, receiver: Any) -> None:
        handle = receiver._handle_rtp_packet  # what aiortc's DTLS transport hands packets to
        timestamps = self.rtp_timestamps[leg]

        async def recording(packet: Any, arrival_time_ms: int) -> None:
            timestamps.append(packet.timestamp)
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = recording

    async def _consume(self, leg: str, track: Any) -> None:
        stats = self.stats[leg]
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await track.recv()
                stats.arrivals.append(loop.time())
                samples = frame.to_ndarray().astype("float64")
                stats.frames += 1
                stats.levels.append(math.sqrt(float((samples**2).mean())) / 32768)
        except MediaStreamError:
            return

    async def wait_frames(self, count: int, timeout: float = 30.0, legs: tuple[str, ...] = ("agent", "caller")) -> None:
        await wait_for(
            lambda: min(self.stats[leg].frames for leg in legs) >= count,
            timeout,
            f"{count} frames on {', '.join(legs)} (heard: {self.frames_heard})",
        )

    @property
    def frames_heard(self) -> dict[str, int]:
        return {leg: s.frames for leg, s in self.stats.items()}

    async def stop(self) -> int:
        status = 0
        if self.session_id:
            async with aiohttp.ClientSession() as http:
                async with http.delete(
                    f"{self.base_url}/api/listens/{self.session_id}", headers=self.headers
                ) as response:
                    status = response.status
        await self.close()
        return status

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

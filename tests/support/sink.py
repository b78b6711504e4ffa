"""A ``CallSink`` for adapter tests without a server: what it was told, and the packets."""

from __future__ import annotations

import asyncio

from live.errors import Conflict
from live.ingest.sink import CallAnnouncement
from live.media.hub import CallMedia, EncodedPacket, ListenerQueue
from live.types import CallId, Consent, LegName


class RecordingSink:
    """A ``CallSink`` that keeps what it is told; its calls' packets wait in big queues."""

    def __init__(self) -> None:
        self.started: list[CallAnnouncement] = []
        self.ended: list[CallId] = []
        self.legs: list[tuple[LegName, ...]] = []
        self.queues: dict[LegName, ListenerQueue] = {}
        self.consents: list[Consent] = []

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        if self.started and announcement.call_id == self.started[-1].call_id and not self.ended:
            raise Conflict("already live", code="duplicate_call")
        self.started.append(announcement)
        media = CallMedia()
        self.queues = {leg: ListenerQueue(10_000) for leg in ("agent", "caller")}
        for leg, queue in self.queues.items():
            media.leg(leg).attach(queue)
        return media

    async def call_ended(self, call_id: CallId) -> None:
        self.ended.append(call_id)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        self.consents.append(consent)

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        self.legs.append(legs)

    def packets(self, leg: LegName) -> list[EncodedPacket]:
        return list(self.queues[leg]._items)

    async def wait_packets(self, leg: LegName, count: int, timeout: float = 5.0) -> list[EncodedPacket]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.packets(leg)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{leg}: {len(self.packets(leg))} of {count} packets")
            await asyncio.sleep(0.01)
        return self.packets(leg)

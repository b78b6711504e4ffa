"""A ``CallSink`` for adapter tests without a server: what it was told, and the packets."""

from __future__ import annotations

from live.errors import Conflict
from live.ingest.sink import CallAnnouncement
from live.media.hub import CallMedia, EncodedPacket, ListenerQueue
from live.types import CallId, Consent, LegName
from tests.support.wait import wait_for


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

    async def wait_packets(self, leg: LegName, count: int, timeout: float = 30.0) -> list[EncodedPacket]:
        await wait_for(
            lambda: len(self.packets(leg)) >= count, timeout, f"{count} {leg} packets", every=0.01
        )
        return self.packets(leg)

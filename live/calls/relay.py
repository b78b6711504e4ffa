"""Media relay between nodes (architecture decision 7): a local call's packets go out on the
bus only while another node asks for them; a call ingested elsewhere arrives as a feed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..bus import CallBus
from ..codec import decode_media, encode_media
from ..errors import LiveError
from ..media.hub import CallMedia, EncodedPacket
from ..model import CallInfo
from ..types import CallId, LegName

log = logging.getLogger(__name__)

MEDIA_DEMAND_S = 2.0  # how often a listening node renews its demand for a relayed call


def relay_tap(bus: CallBus, call_id: CallId) -> Callable[[LegName, EncodedPacket], None]:
    """A leg-source tap publishing a local call's packets, only while a node asks for them."""

    def tap(leg: LegName, packet: EncodedPacket) -> None:
        if bus.media_wanted(call_id):  # the bus queues it; no task per packet
            bus.publish_media(call_id, encode_media(leg, packet.pts, packet.payload))

    return tap


class RemoteFeed:
    """Packets of a call ingested on another node, relayed through the bus, as local legs.

    ``start`` subscribes and asks for the packets, renewing the demand every
    ``MEDIA_DEMAND_S``; ``stop`` ends both and closes the legs."""

    def __init__(self, bus: CallBus, call: CallInfo) -> None:
        self.call_id = call.call_id
        self.media = CallMedia(call.codec)
        self._bus = bus
        self._unsubscribe: Callable[[], Awaitable[None]] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._unsubscribe = await self._bus.subscribe_media(self.call_id, self._on_packet)
        await self._bus.want_media(self.call_id)
        self._renewing = asyncio.create_task(self._renew(), name="media-demand")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._renewing = self._renewing, None
        if task is not None:
            # The loop also checks ``_stopping``: a cancel lost inside a redis-py write
            # (bpo-42130, Python 3.11) still ends it after that write.
            task.cancel()
            await asyncio.wait({task})
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            await unsubscribe()
        self.media.close()

    async def _renew(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), MEDIA_DEMAND_S)
            except TimeoutError:
                pass
            else:
                return
            try:
                await self._bus.want_media(self.call_id)
            except LiveError:
                log.warning("could not renew the media relay for %s", self.call_id)

    def _on_packet(self, data: bytes) -> None:
        try:
            leg, pts, payload = decode_media(data)
        except LiveError:
            log.warning("dropped an undecodable relayed packet")
            return
        self.media.leg("agent" if leg == "agent" else "caller").publish(payload, pts)

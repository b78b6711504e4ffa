"""An aiortc track that forwards pre-encoded packets from a listener queue."""

from __future__ import annotations

from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..media.hub import ListenerQueue, QueueClosed


class PacketTrack(MediaStreamTrack):
    """Audio track whose ``recv()`` returns ``EncodedPacket`` objects from one queue.

    aiortc packs what is not a decoded frame straight into RTP (see ``EncodedPacket``), so
    the packets leave exactly as ingested: no decode, no encode, no resample.
    """

    kind = "audio"

    def __init__(self, queue: ListenerQueue) -> None:
        super().__init__()
        self.queue = queue

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            return await self.queue.get()
        except QueueClosed:
            self.stop()
            raise MediaStreamError from None

    def stop(self) -> None:
        self.queue.close()
        super().stop()

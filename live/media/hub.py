"""Fan-out of encoded 20 ms packets from a call's legs to its listeners.

Decision 2 and 3 of the architecture live here:

* A packet is built once per leg (``EncodedPacket``) and the same object is handed to every
  listener. Nothing is decoded or encoded per listener; gating (consent, payment pause) swaps
  the payload for silence once per leg, not per listener.
* ``LegSource.publish`` never waits: each listener has a ``ListenerQueue`` bounded to a few
  packets; a full queue drops its oldest packet and counts it. A stalled browser therefore
  cannot slow the call, another listener or the event loop.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from ..model import Codec
from ..types import LegName

# G.711 silence: the encoding of a zero sample (ITU-T G.711 tables).
SILENCE_BYTE: dict[Codec, int] = {"PCMU": 0xFF, "PCMA": 0xD5}
SAMPLE_RATE = 8000
PACKET_SAMPLES = 160  # 20 ms at 8 kHz


class EncodedPacket:
    """One encoded 20 ms audio packet, shared by every listener of a leg.

    aiortc's ``RTCRtpSender`` sends anything that is not a decoded ``Frame`` through the
    codec's ``pack()``, which reads only ``bytes(packet)``, ``packet.pts`` and
    ``packet.time_base``: so this object is handed to aiortc as it is, without building an
    ``av.Packet`` per listener.
    """

    __slots__ = ("payload", "pts", "arrived_ns", "sequence")
    time_base: ClassVar[fractions.Fraction] = fractions.Fraction(1, SAMPLE_RATE)

    def __init__(self, payload: bytes, pts: int, arrived_ns: int, sequence: int) -> None:
        self.payload = payload
        self.pts = pts  # RTP timestamp units (1/8000 s) since the leg started
        self.arrived_ns = arrived_ns  # time.monotonic_ns() at ingest, for latency figures
        self.sequence = sequence  # per-leg packet counter

    def __bytes__(self) -> bytes:
        return self.payload

    def __len__(self) -> int:
        return len(self.payload)


class QueueClosed(Exception):
    """The listener queue was closed: its consumer should stop."""


class ListenerQueue:
    """A bounded drop-oldest queue with a single consumer.

    ``first_at`` / ``last_at`` are the wall-clock times (Unix) the consumer was handed its
    first and latest packet (0.0 before any): what a listener was actually sent, as opposed
    to how long the session existed. Two floats, set in place: nothing allocated per packet.
    """

    __slots__ = ("_items", "_waiter", "_closed", "maxlen", "delivered", "dropped", "first_at", "last_at")

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.maxlen = maxlen
        self._items: deque[EncodedPacket] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, packet: EncodedPacket) -> None:
        """Enqueue without ever waiting; when full the oldest packet is dropped and counted."""
        if self._closed:
            return
        if len(self._items) == self.maxlen:
            self.dropped += 1  # deque(maxlen) discards the oldest on append
        self._items.append(packet)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> EncodedPacket:
        while not self._items:
            if self._closed:
                raise QueueClosed()
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            await waiter
        now = time.time()
        if not self.delivered:
            self.first_at = now
        self.last_at = now
        self.delivered += 1
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


PacketTap = Callable[[LegName, EncodedPacket], None]


class LegSource:
    """The single source of one leg's packets, with its listeners' queues."""

    __slots__ = (
        "leg", "codec", "_queues", "_audible", "_silence", "taps", "received", "late", "_next_pts", "_last_pts",
    )

    def __init__(self, leg: LegName, codec: Codec = "PCMU") -> None:
        self.leg = leg
        self.codec = codec
        self._queues: list[ListenerQueue] = []
        self._audible = True
        self._silence: dict[int, bytes] = {}
        self.taps: list[PacketTap] = []
        self.received = 0
        self.late = 0  # packets dropped because they would have stepped the timestamp back
        self._next_pts = 0
        self._last_pts = -1

    @property
    def audible(self) -> bool:
        return self._audible

    def set_audible(self, audible: bool) -> None:
        """Gate the leg: while not audible every listener gets silence in place of audio."""
        self._audible = audible

    @property
    def listener_count(self) -> int:
        return len(self._queues)

    def attach(self, queue: ListenerQueue) -> None:
        """Start feeding ``queue`` with every packet published from now on."""
        if queue not in self._queues:
            self._queues.append(queue)

    def detach(self, queue: ListenerQueue) -> None:
        queue.close()
        if queue in self._queues:
            self._queues.remove(queue)

    def _silence_for(self, size: int) -> bytes:
        silence = self._silence.get(size)
        if silence is None:
            silence = bytes([SILENCE_BYTE[self.codec]]) * size
            self._silence[size] = silence
        return silence

    def publish(
        self, payload: bytes, pts: int | None = None, arrived_ns: int | None = None
    ) -> EncodedPacket | None:
        """Hand one encoded packet to every listener; ``pts`` defaults to contiguous 20 ms.

        A listener's RTP timestamps never go backwards, whatever the source does: a packet
        that starts at or before the previous one is dropped and counted (``late``); one that
        merely overlaps the previous packet's end (a sender's rounded clock) is moved up to
        it. Sources that can reorder (RTP sequence numbers) do so before publishing.
        """
        if pts is None:
            pts = self._next_pts
        elif pts < self._next_pts:
            if pts <= self._last_pts:
                self.late += 1
                return None
            pts = self._next_pts
        self._last_pts = pts
        self._next_pts = pts + len(payload)
        if not self._audible:
            payload = self._silence_for(len(payload))
        packet = EncodedPacket(
            payload, pts, arrived_ns if arrived_ns is not None else time.monotonic_ns(), self.received
        )
        self.received += 1
        for queue in self._queues:
            queue.put(packet)
        for tap in self.taps:
            tap(self.leg, packet)
        return packet

    def close(self) -> None:
        for queue in self._queues:
            queue.close()
        self._queues.clear()
        self.taps.clear()


class CallMedia:
    """The two legs of one call as ingested on this node."""

    __slots__ = ("agent", "caller")

    def __init__(self, codec: Codec = "PCMU") -> None:
        self.agent = LegSource("agent", codec)
        self.caller = LegSource("caller", codec)

    def leg(self, name: LegName) -> LegSource:
        return self.agent if name == "agent" else self.caller

    @property
    def listener_count(self) -> int:
        return max(self.agent.listener_count, self.caller.listener_count)

    def close(self) -> None:
        self.agent.close()
        self.caller.close()

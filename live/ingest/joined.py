"""Calls whose legs arrive on separate connections, joined into one call on this node.

Real telephony often sends one leg per connection: Twilio flows start two ``<Stream>``s for
one ``callSid`` (``track="inbound_track"`` and ``track="outbound_track"``), FreeSWITCH and
jambonz forks may open one mono socket per party. Each connection ``join``s with the legs it
sends; the first one announces the call (``CallSink.call_started``), later ones for the same
call id add their legs (``CallSink.legs_reported``), and the call ends when the last of its
connections ends (``CallSink.call_ended``). A leg that no connection sends is reported as not
sent (``CallInfo.legs``), so listeners and the ledger know which legs were really heard.

A connection whose leg is already fed by another connection of the call is refused
(``Conflict``, 4409): two senders of one leg would interleave two audio streams. Joining
happens on one node: a connection for a call ingested by another node of a cluster is
refused by the sink (``call_on_other_node``, 4409), see the README.

When a connection feeds a leg that an earlier, ended connection fed, its timestamps start at
zero again; ``LegFeed.pts_base`` says where the leg's timestamps stand, so the new audio
continues the leg instead of stepping a listener's RTP timestamps back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..errors import Conflict, LiveError
from ..media.hub import CallMedia, EncodedPacket
from ..types import LEGS, CallId, LegName
from .sink import CallAnnouncement, CallSink

log = logging.getLogger(__name__)


def _ordered(legs: set[LegName]) -> tuple[LegName, ...]:
    return tuple(leg for leg in LEGS if leg in legs)


@dataclass(eq=False)
class _JoinedCall:
    media: CallMedia
    feeds: list[LegFeed] = field(default_factory=list)
    ends: dict[LegName, int] = field(default_factory=lambda: {"agent": 0, "caller": 0})

    def fed(self) -> tuple[LegName, ...]:
        return tuple(leg for leg in LEGS if any(leg in f.legs for f in self.feeds))


class LegFeed:
    """One connection's share of a joined call: the legs it feeds. ``close()`` once it ends."""

    def __init__(self, calls: JoinedCalls, call_id: CallId, legs: set[LegName], media: CallMedia) -> None:
        self._calls = calls
        self.call_id = call_id
        self.legs = legs
        self.media = media
        self.closed = False
        self._bases: dict[LegName, int] = {}

    def owns(self, leg: LegName) -> bool:
        return leg in self.legs and not self.closed

    def pts_base(self, leg: LegName) -> int:
        """Added to this connection's timestamps of ``leg``: 0 unless the leg was fed before."""
        return self._bases.get(leg, 0)

    async def claim(self, leg: LegName) -> bool:
        """Start feeding ``leg`` too (a sender that did not declare it); False if another
        connection of the call feeds it."""
        if self.closed:
            return False
        if leg in self.legs:
            return True
        return await self._calls._claim(self, leg)

    async def close(self) -> None:
        """This connection ended; the last connection of a call ends the call. Idempotent."""
        if not self.closed:
            self.closed = True
            await self._calls._leave(self)


class JoinedCalls:
    """The calls fed by connections of one source on this node (owned by its server glue)."""

    def __init__(self, sink: CallSink) -> None:
        self.sink = sink
        self._calls: dict[CallId, _JoinedCall] = {}
        self._locks: dict[CallId, tuple[asyncio.Lock, int]] = {}  # lock, users
        self.joined = 0  # connections that joined a call another connection had started

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def legs(self, call_id: CallId) -> tuple[LegName, ...]:
        """The legs some connection feeds now (empty for an unknown call)."""
        call = self._calls.get(call_id)
        return call.fed() if call is not None else ()

    async def join(self, announcement: CallAnnouncement) -> LegFeed:
        """Feed ``announcement.legs`` of the call: announce it, or join it when another
        connection started it here. Raises ``Conflict`` when a leg is already fed (or the
        sink refuses the call); the first connection's metadata stays the call's."""
        call_id = announcement.call_id
        legs = set(announcement.legs)
        async with self._lock(call_id):
            call = self._calls.get(call_id)
            if call is None:
                media = await self.sink.call_started(dataclasses.replace(announcement, legs=_ordered(legs)))
                call = _JoinedCall(media)
                for leg in LEGS:
                    media.leg(leg).taps.append(self._tracker(call))
                self._calls[call_id] = call
                return self._feed(call, call_id, legs)
            taken = legs & set(call.fed())
            if taken or not legs:
                raise Conflict(
                    f"call {call_id!r} is already live"
                    + (f" with its {' and '.join(sorted(taken))} leg" if taken else ""),
                    code="duplicate_call",
                )
            feed = self._feed(call, call_id, legs)
            self.joined += 1
            await self._report(call_id, call)
            return feed

    def _feed(self, call: _JoinedCall, call_id: CallId, legs: set[LegName]) -> LegFeed:
        feed = LegFeed(self, call_id, legs, call.media)
        for leg in legs:
            feed._bases[leg] = call.ends[leg]
        call.feeds.append(feed)
        return feed

    async def _claim(self, feed: LegFeed, leg: LegName) -> bool:
        async with self._lock(feed.call_id):
            call = self._calls.get(feed.call_id)
            if call is None or feed.closed or leg in call.fed():
                return False
            feed.legs.add(leg)
            feed._bases[leg] = call.ends[leg]
            await self._report(feed.call_id, call)
            return True

    async def _leave(self, feed: LegFeed) -> None:
        async with self._lock(feed.call_id):
            call = self._calls.get(feed.call_id)
            if call is None or feed not in call.feeds:
                return
            call.feeds.remove(feed)
            if call.feeds:
                await self._report(feed.call_id, call)
                return
            del self._calls[feed.call_id]
            await self.sink.call_ended(feed.call_id)

    async def _report(self, call_id: CallId, call: _JoinedCall) -> None:
        """Tell the sink which legs are sent now. The audio flows whether or not the bus
        takes it (the next change reports the legs again), so a failure is logged here."""
        try:
            await self.sink.legs_reported(call_id, call.fed())
        except LiveError as exc:
            log.error("could not report the legs of call %s: %s", call_id, exc.message)

    @contextlib.asynccontextmanager
    async def _lock(self, call_id: CallId) -> AsyncIterator[None]:
        """One change at a time per call (joins and leaves await the sink); the lock goes
        away with its last user, so refused call ids leave nothing behind."""
        lock, users = self._locks.get(call_id, (asyncio.Lock(), 0))
        self._locks[call_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[call_id]
            if users == 1:
                del self._locks[call_id]
            else:
                self._locks[call_id] = (lock, users - 1)

    @staticmethod
    def _tracker(call: _JoinedCall) -> Callable[[LegName, EncodedPacket], None]:
        def tap(leg: LegName, packet: EncodedPacket) -> None:
            call.ends[leg] = max(call.ends[leg], packet.pts + len(packet))

        return tap


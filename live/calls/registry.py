"""The call registry: every call this node knows, and the media of those it serves.

It is the sink every ingest adapter feeds (``live.ingest.sink.CallSink``): a call ingested
here gets its leg sources (``CallMedia``), gated by the policy, tapped for relay to other
nodes, and announced on the bus. From the bus it keeps the roster of the cluster's calls;
a call ingested elsewhere that someone here listens to arrives as a ``RemoteFeed``.

Whoever must act when a call changes or ends (the listen service) registers as a
``CallWatcher``; the registry knows nothing of listen sessions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth import Identity
from ..bus import CallBus
from ..bus.base import EventHandler, Unsubscribe
from ..errors import Conflict, LiveError, NotFound
from ..ingest.sink import CallAnnouncement
from ..media.hub import CallMedia
from ..model import BusEvent, CallEnded, CallInfo, CallStarted, CallUpdated, Roster
from ..policy import SetConsent, SetPci
from ..policy_holder import PolicyHolder
from ..types import LEGS, CallId, Consent, LegName, NodeId
from .gates import apply_gates
from .relay import RemoteFeed, relay_tap

log = logging.getLogger(__name__)


class CallWatcher(Protocol):
    """What the registry tells the parts that act on calls (the listen service)."""

    async def local_call_ending(self, call_id: CallId) -> None:
        """A call ingested here is ending; awaited before its media closes."""

    def call_changed(self, before: CallInfo, after: CallInfo) -> None:
        """A call's state changed on the bus (consent, payment pause, legs)."""

    def call_gone(self, call_id: CallId) -> None:
        """A call ended somewhere in the cluster (bus ``call.ended``)."""


ENDED_CALLS_KEPT = 1000  # recently ended calls remembered, so a late listen is refused on record

@dataclass(frozen=True, slots=True)
class CallStats:
    """What ``/metrics`` shows of the calls."""

    node_calls: int
    cluster_calls: int
    packets_ingested: int
    packets_late: int


class CallRegistry:
    """Owns the roster, the media of calls ingested here and the feeds of remote calls."""

    def __init__(self, node_id: NodeId, bus: CallBus, policy: PolicyHolder) -> None:
        self.node_id = node_id
        self._bus = bus
        self._policy = policy
        self.roster = Roster()
        self.local: dict[CallId, CallMedia] = {}
        # What this node says about its own calls, current even before the bus echoes it back
        # (a Redis roster lags): changes to a local call start from here.
        self._local_info: dict[CallId, CallInfo] = {}
        self._remote: dict[CallId, RemoteFeed] = {}
        self._watchers: list[CallWatcher] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Unsubscribe | None = None
        # The last calls that ended (oldest first): a listen asked for one of them is a
        # refusal of a known call, on record, not an unknown call.
        self._ended: dict[CallId, CallInfo] = {}

    def watch(self, watcher: CallWatcher) -> None:
        self._watchers.append(watcher)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the bus (already started) and take the cluster's calls from its snapshot."""
        self._unsubscribe = self._bus.subscribe(self._on_event)
        for call in await self._bus.snapshot():
            self.roster.calls[call.call_id] = call

    async def stop(self) -> None:
        """End the calls ingested here, drop the feeds of remote calls, leave the bus."""
        for call_id in list(self.local):
            await self.call_ended(call_id)
        for feed in list(self._remote.values()):
            self._remote.pop(feed.call_id, None)
            await feed.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # --- what the server asks ------------------------------------------------------------

    def calls(self) -> list[CallInfo]:
        """Every live call of the cluster, oldest first."""
        return sorted(self.roster.calls.values(), key=lambda c: c.started_at)

    def call(self, call_id: str) -> CallInfo:
        """A live call; ``NotFound`` (``unknown_call``) if there is none."""
        call = self.roster.calls.get(CallId(call_id))
        if call is None:
            raise NotFound(f"no live call {call_id!r}", code="unknown_call")
        return call

    def known(self, call_id: str) -> CallInfo | None:
        """The roster's view of a call, ``None`` if it is not live."""
        return self.roster.calls.get(CallId(call_id))

    def recently_ended(self, call_id: str) -> CallInfo | None:
        """A call that ended a short while ago (one of the last ``ENDED_CALLS_KEPT``)."""
        return self._ended.get(CallId(call_id))

    def current(self, call_id: CallId) -> CallInfo:
        """The newest state of a call: the roster's, except that a call ingested here is
        known before a Redis roster echoes it and keeps the legs this node reported."""
        own = self._local_info.get(call_id)
        known = self.roster.calls.get(call_id)
        if own is None:
            return self.call(call_id)
        if known is None:
            return own
        return dataclasses.replace(known, legs=own.legs)

    def subscribe(self, handler: EventHandler) -> Unsubscribe:
        """Every bus event from now on (roster sockets, ingest adapters)."""
        return self._bus.subscribe(handler)

    def stats(self) -> CallStats:
        return CallStats(
            node_calls=len(self.local),
            cluster_calls=len(self.roster.calls),
            packets_ingested=sum(m.agent.received + m.caller.received for m in self.local.values()),
            packets_late=sum(m.agent.late + m.caller.late for m in self.local.values()),
        )

    async def change(self, actor: Identity, call_id: str, action: SetConsent | SetPci) -> CallInfo:
        """Consent and payment pause changes, as the policy allows them to ``actor``."""
        call = self.call(call_id)
        self._policy.decide(actor, action, call).raise_if_refused()
        if isinstance(action, SetConsent):
            return await self.update_call(call.call_id, consent=action.consent)
        return await self.update_call(call.call_id, pci_paused=action.paused)

    # --- media for listeners -------------------------------------------------------------

    async def media_for(self, call: CallInfo) -> CallMedia:
        """The leg sources of ``call``: its own if ingested here, else a relayed feed."""
        media = self.local.get(call.call_id)
        if media is not None:
            return media
        feed = self._remote.get(call.call_id)
        if feed is not None:
            return feed.media
        feed = RemoteFeed(self._bus, call)
        apply_gates(call, feed.media, self._policy.loaded)
        self._remote[call.call_id] = feed  # listeners starting together share it
        try:
            await feed.start()
        except BaseException:
            self._remote.pop(call.call_id, None)
            await feed.stop()
            raise
        return feed.media

    async def release(self, call_id: CallId) -> None:
        """A listener of ``call_id`` left: drop its relayed feed once no one listens."""
        feed = self._remote.get(call_id)
        if feed is not None and feed.media.listener_count == 0:
            self._remote.pop(call_id, None)
            await feed.stop()

    # --- the ingest sink (CallSink) ------------------------------------------------------

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        call_id = announcement.call_id
        known = self.roster.calls.get(call_id)
        if known is not None and known.node_id != self.node_id and call_id not in self.local:
            # Split streams (one connection per leg) join on the node that has the call; a
            # leg sent to another node of the cluster cannot be joined there (documented).
            raise Conflict(
                f"call {call_id!r} is live on node {known.node_id}: "
                "send every stream of a call to the same node",
                code="call_on_other_node",
            )
        if known is not None or call_id in self.local:
            raise Conflict(f"call {call_id!r} is already live", code="duplicate_call")
        media = CallMedia(announcement.codec)
        info = CallInfo(
            call_id=call_id,
            source=announcement.source,
            agent_id=announcement.agent_id,
            started_at=time.time(),
            node_id=self.node_id,
            consent=announcement.consent,
            codec=announcement.codec,
            queue=announcement.queue,
            private=announcement.private,
            attributes=dict(announcement.attributes),
            legs=announcement.legs,
        )
        apply_gates(info, media, self._policy.loaded)
        self.local[call_id] = media
        self._local_info[call_id] = info
        for leg in LEGS:
            media.leg(leg).taps.append(relay_tap(self._bus, call_id))
        await self._bus.publish(CallStarted(info))
        return media

    async def call_ended(self, call_id: CallId) -> None:
        media = self.local.pop(call_id, None)
        self._local_info.pop(call_id, None)
        if media is None:
            return
        for watcher in self._watchers:
            await watcher.local_call_ending(call_id)
        media.close()
        try:
            await self._bus.publish(CallEnded(call_id, time.time()))
        except LiveError:
            log.error("could not announce the end of call %s", call_id)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        await self.update_call(call_id, consent=consent)

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        if call_id in self._local_info:
            await self.update_call(call_id, legs=tuple(leg for leg in LEGS if leg in legs))

    async def update_call(
        self,
        call_id: CallId,
        *,
        consent: Consent | None = None,
        pci_paused: bool | None = None,
        legs: tuple[LegName, ...] | None = None,
    ) -> CallInfo:
        """Change a call's state (consent, payment pause, legs) and gate its legs at once."""
        call = self.current(CallId(call_id))
        updated = dataclasses.replace(
            call,
            consent=call.consent if consent is None else consent,
            pci_paused=call.pci_paused if pci_paused is None else pci_paused,
            legs=call.legs if legs is None else legs,
        )
        media = self.local.get(call_id)
        if media is not None:
            self._local_info[call.call_id] = updated
            apply_gates(updated, media, self._policy.loaded)
        await self._bus.publish(CallUpdated(updated))
        return updated

    # --- the bus -------------------------------------------------------------------------

    def _on_event(self, event: BusEvent) -> None:
        before = self.roster.calls.get(event.call.call_id) if isinstance(event, CallUpdated) else None
        if isinstance(event, CallEnded) and (ended := self.roster.calls.get(event.call_id)) is not None:
            self._ended[event.call_id] = ended
            while len(self._ended) > ENDED_CALLS_KEPT:
                del self._ended[next(iter(self._ended))]
        elif isinstance(event, CallStarted):
            self._ended.pop(event.call.call_id, None)
        self.roster.apply(event)
        if isinstance(event, CallUpdated):
            if before is not None:
                for watcher in self._watchers:
                    watcher.call_changed(before, event.call)
            call_id = event.call.call_id
            media = self.local.get(call_id)
            feed = self._remote.get(call_id)
            if media is None and feed is not None:
                media = feed.media
            if media is not None:
                apply_gates(event.call, media, self._policy.loaded)
        elif isinstance(event, CallEnded):
            for watcher in self._watchers:
                watcher.call_gone(event.call_id)
            gone = self._remote.pop(event.call_id, None)
            if gone is not None:
                self._spawn(gone.stop(), "drop-feed")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

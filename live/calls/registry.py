"""The call registry: every call this node knows, and the media of those it serves.

It is the sink every ingest adapter feeds (``live.ingest.sink.CallSink``): a call ingested
here gets its leg sources (``CallMedia``), gated by the policy, tapped for relay to other
nodes, and announced on the bus. From the bus it keeps the roster of the cluster's calls;
a call ingested elsewhere that someone here listens to arrives as a ``RemoteFeed``.

Whoever must act when a call changes or ends (the listen service) registers as a
``CallWatcher``; the registry knows nothing of listen sessions.

Resync, not hope: events can be lost (a Redis outage, a node's subscription down) and nodes
can die without a word. Every ``resync_s`` the registry reads the cluster's state from the bus
and reconciles its roster with it (``resync``): calls gone end here too (``node-lost`` when
their node's heartbeat is stale, so a dead node's calls leave every roster within the bus's
node timeout plus one resync; a node with no heartbeat on record, as after Redis restarted
empty, gets the node timeout to write its calls back), calls new are added, changed calls and listeners are taken.
A call ingested here is this node's to say: the roster keeps it while its socket lives, even
while the bus cannot carry it, and its media and state go with the socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from ..auth import Identity
from ..bus import CallBus
from ..bus.base import ClusterView, EventHandler, Unsubscribe
from ..errors import BusUnavailable, Conflict, LiveError, NotFound
from ..ingest.sink import CallAnnouncement
from ..media.hub import CallMedia
from ..model import BusEvent, CallEnded, CallInfo, CallStarted, CallUpdated, Roster
from ..notices.board import RunningListen
from ..policy import SetConsent, SetPci
from ..policy_holder import PolicyHolder
from ..types import LEGS, CallId, Consent, EndReason, LegName, NodeId
from .gates import apply_gates
from .relay import RemoteFeed, relay_tap

log = logging.getLogger(__name__)


class CallWatcher(Protocol):
    """What the registry tells the parts that act on calls (the listen service)."""

    async def local_call_ending(self, call_id: CallId) -> None:
        """A call ingested here is ending; awaited before its media closes."""

    def call_changed(self, before: CallInfo, after: CallInfo) -> None:
        """A call's state changed on the bus (consent, payment pause, legs)."""

    def call_gone(self, call_id: CallId, reason: EndReason) -> None:
        """A call ended somewhere in the cluster (bus ``call.ended``, ``call-ended``) or its
        node was lost (``node-lost``, found by a resync)."""


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

    def __init__(
        self, node_id: NodeId, bus: CallBus, policy: PolicyHolder, *, resync_s: float | None = None
    ) -> None:
        self.node_id = node_id
        self._bus = bus
        self._resync_s = resync_s  # None: the bus never loses events (in-process)
        self._resync_task: asyncio.Task[None] | None = None
        self._after_resync: list[Callable[[], None]] = []
        # While a resync reads the cluster: the calls bus events touched meanwhile (newer
        # than what the read returns, so the resync leaves them alone).
        self._touched: set[CallId] | None = None
        self._handlers: list[EventHandler] = []
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
        # Nodes with calls here but no heartbeat on record, since when (monotonic).
        self._unheard: dict[NodeId, float] = {}

    def watch(self, watcher: CallWatcher) -> None:
        self._watchers.append(watcher)

    def after_resync(self, callback: Callable[[], None]) -> None:
        """``callback`` runs after every resync, with the roster reconciled."""
        self._after_resync.append(callback)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the bus (already started) and take the cluster's calls from its snapshot."""
        self._unsubscribe = self._bus.subscribe(self._on_event)
        for call in await self._bus.snapshot():
            self.roster.calls[call.call_id] = call
        if self._resync_s is not None:
            self._resync_task = asyncio.create_task(self._resync_loop(self._resync_s), name="roster-resync")

    async def stop(self) -> None:
        """End the calls ingested here, drop the feeds of remote calls, leave the bus."""
        task, self._resync_task = self._resync_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
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
        """Every roster change from now on, once applied (roster sockets, ingest adapters):
        the bus's events, and the ones a resync or an outage made here."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

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
        try:
            await self._bus.publish(CallStarted(info))
        except BusUnavailable as exc:
            # The call goes on here; the bus writes it back once Redis is usable again and
            # the other nodes take it at their next resync.
            log.warning("call %s started while the bus is down (%s); announced later", call_id, exc.message)
            self._apply(CallStarted(info))
        except BaseException:
            # Refused: nothing of it may stay (a retry of the same call must be accepted).
            self.local.pop(call_id, None)
            self._local_info.pop(call_id, None)
            media.close()
            raise
        return media

    async def call_ended(self, call_id: CallId) -> None:
        media = self.local.pop(call_id, None)
        self._local_info.pop(call_id, None)
        if media is None:
            return
        for watcher in self._watchers:
            await watcher.local_call_ending(call_id)
        media.close()
        ended = CallEnded(call_id, time.time())
        try:
            await self._bus.publish(ended)
        except LiveError:
            # The bus publishes the end once Redis is back (repair); this node knows now.
            log.error("could not announce the end of call %s; announced later", call_id)
            self._apply(ended)

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
        try:
            await self._bus.publish(CallUpdated(updated))
        except BusUnavailable:
            if media is None:  # another node's call: the change did not happen
                raise
            # A call ingested here: in force now, announced once the bus is back (repair).
            log.warning("call %s changed while the bus is down; announced later", call_id)
            self._apply(CallUpdated(updated))
        return updated

    # --- resync --------------------------------------------------------------------------

    async def resync(self) -> None:
        """Reconcile the roster with the cluster's state as the bus has it now: calls gone
        end here (``node-lost`` if their node is not alive), new calls are added, changed
        ones and listeners taken. Calls ingested here and calls that bus events touched
        while the state was being read are left alone. ``BusUnavailable`` if it cannot read."""
        self._touched = set()
        try:
            view = await self._bus.view()
            touched = self._touched
        finally:
            self._touched = None
        now = time.time()
        unsure = self._unsure(view)
        seen = {call.call_id: call for call in view.calls}
        for call_id, held in list(self.roster.calls.items()):
            if call_id in seen or call_id in touched or call_id in self.local or held.node_id in unsure:
                continue
            lost = held.node_id not in view.nodes
            log.warning("resync: call %s is gone (%s)", call_id, "node lost" if lost else "ended")
            self._apply(CallEnded(call_id, now), EndReason.NODE_LOST if lost else EndReason.CALL_ENDED)
        for call in view.calls:
            if call.call_id in touched:
                continue
            known = self.roster.calls.get(call.call_id)
            if known is None:
                if call.call_id not in self.local:
                    self._apply(CallStarted(call))
                continue
            if call.call_id not in self.local and _state(known) != _state(call):
                self._apply(CallUpdated(call))
            current = self.roster.calls[call.call_id]
            if current.listeners != call.listeners:
                self.roster.calls[call.call_id] = dataclasses.replace(current, listeners=call.listeners)
                self._deliver(CallUpdated(self.roster.calls[call.call_id]))
        for call_id, info in self._local_info.items():
            if call_id not in self.roster.calls and call_id not in touched:
                self._apply(CallStarted(info))  # this node's call, whatever Redis says
        for callback in self._after_resync:
            callback()

    def listening(self) -> dict[str, RunningListen]:
        """Every listen the roster shows running, on any node, by session id. A listen from
        a node that does not say how it is shown (an older node) is shown as its listener's
        name, in the live mode."""
        return {
            listener.session_id: RunningListen(
                call.agent_id,
                listener.label if listener.label is not None else listener.display_name,
                listener.purpose,
                listener.notice_mode if listener.label is not None else None,
            )
            for call in self.roster.calls.values()
            for listener in call.listeners
        }

    def _unsure(self, view: ClusterView) -> set[NodeId]:
        """Nodes whose calls are missing from ``view`` but which are not known to be lost yet:
        no heartbeat of theirs on record (Redis restarted empty before they wrote their
        state back) for less than the node timeout. Their calls are kept meanwhile."""
        if view.heard is None:
            return set()
        clock = time.monotonic()
        held = {call.node_id for call in self.roster.calls.values()}
        unheard = {node for node in held if node not in view.heard and node != self.node_id}
        self._unheard = {node: self._unheard.get(node, clock) for node in unheard}
        return {node for node, since in self._unheard.items() if clock - since < view.node_timeout_s}

    async def _resync_loop(self, every_s: float) -> None:
        failing = False
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.resync()
                failing = False
            except BusUnavailable as exc:
                if not failing:
                    log.warning("roster resync paused: %s", exc.message)
                failing = True
            except Exception:  # task boundary: keep resyncing
                log.exception("roster resync failed")

    # --- the bus -------------------------------------------------------------------------

    def _on_event(self, event: BusEvent) -> None:
        """An event from the bus."""
        if self._touched is not None:
            self._touched.add(event.call.call_id if isinstance(event, (CallStarted, CallUpdated)) else event.call_id)
        self._apply(event)

    def _apply(self, event: BusEvent, reason: EndReason = EndReason.CALL_ENDED) -> None:
        """Apply an event to the roster, act on it, and tell the subscribers."""
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
                watcher.call_gone(event.call_id, reason)
            gone = self._remote.pop(event.call_id, None)
            if gone is not None:
                self._spawn(gone.stop(), "drop-feed")
        self._deliver(event)

    def _deliver(self, event: BusEvent) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not stop delivery to the others
                log.exception("roster subscriber failed on %s", event.kind)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _state(call: CallInfo) -> CallInfo:
    """A call's state without its listeners (those come from the listening nodes)."""
    return dataclasses.replace(call, listeners=())

"""Listens at once per person (``listens_per_supervisor``), across the cluster.

A listen request takes a hold before it is handled and gives it back once answered; the
sessions it made count from then on. On this node the count is the person's running sessions
plus the requests still being set up (they register their session only when the answer is
ready), so parallel requests cannot slip past. With a shared store the same count is kept in
Redis for the whole cluster (``live.limits.store``): this node renews its running sessions
there every ``renew_s`` seconds and at once when a listen starts or ends (bus events), and
what a dead node held leaves the count when its lease runs out. While Redis is down the
node's own count applies (``live.limits.shared``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..bus import CallBus
from ..model import BusEvent, ListenEnded, ListenStarted
from ..types import new_id
from .shared import UNSHARED, SharedLimits

log = logging.getLogger(__name__)

RunningSessions = Callable[[], Mapping[str, Sequence[str]]]
"""Person -> ids of the listen sessions running on this node."""


@dataclass(frozen=True, slots=True)
class Hold:
    """The answer to ``ListenSlots.acquire``: granted, or refused with the count it met."""

    user_id: str
    granted: bool
    running: int = 0
    member: str = ""  # the hold in the shared store ('' when only counted on this node)


def _none_running() -> Mapping[str, Sequence[str]]:
    return {}


class ListenSlots:
    def __init__(self, cap: int, shared: SharedLimits, *, renew_s: float = 5.0) -> None:
        self.cap = cap
        self.shared = shared
        self.renew_s = renew_s
        self.starting: Counter[str] = Counter()
        self._running: RunningSessions = _none_running
        self._written: set[str] = set()  # people whose sessions this node has in the store
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._unsubscribe: Callable[[], None] | None = None

    def start(self, running: RunningSessions, bus: CallBus) -> None:
        """Count ``running`` sessions; with a shared store, keep them written there."""
        self._running = running
        if self.shared.store is not None and self._task is None:
            self._unsubscribe = bus.subscribe(self._on_event)
            self._task = asyncio.create_task(self._renew(), name="listen-slots")

    async def aclose(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            # Stopped by a flag, not by cancelling a wait: the loop ends after the write it
            # may be doing (bounded by the store's socket timeout).
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None
        # Withdraw this node's sessions (they end with the node) rather than wait for leases.
        if self._written:
            await self._write({})

    async def acquire(self, user_id: str) -> Hold:
        """A hold for one more listen of ``user_id``, unless they are at the cap."""
        sessions = list(self._running().get(user_id, ()))
        here = len(sessions) + self.starting[user_id]
        if here >= self.cap:
            return Hold(user_id, granted=False, running=here)
        self.starting[user_id] += 1  # before any wait, so parallel requests see it
        store = self.shared.store
        member = store.hold_member(new_id("hold")) if store is not None else ""
        cluster = await self.shared.attempt(lambda s: s.take_hold(user_id, member, sessions, self.cap))
        if cluster is UNSHARED:
            return Hold(user_id, granted=True)
        self._written.add(user_id)
        if cluster is not None:
            self._done(user_id)
            return Hold(user_id, granted=False, running=cluster)
        return Hold(user_id, granted=True, member=member)

    async def release(self, hold: Hold) -> None:
        """The request ``hold`` was taken for is answered (its session, if any, is running)."""
        if not hold.granted:
            return
        self._done(hold.user_id)
        if hold.member:
            sessions = list(self._running().get(hold.user_id, ()))
            await self.shared.attempt(lambda s: s.drop_hold(hold.user_id, hold.member, sessions))

    def _done(self, user_id: str) -> None:
        self.starting[user_id] -= 1
        if self.starting[user_id] <= 0:
            del self.starting[user_id]

    def _on_event(self, event: BusEvent) -> None:
        if isinstance(event, (ListenStarted, ListenEnded)):
            self._wake.set()

    async def _renew(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.renew_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:
                await self._write(self._running())
            except Exception:  # task boundary: keep renewing
                log.exception("listen slots not renewed")

    async def _write(self, running: Mapping[str, Sequence[str]]) -> None:
        batch = {user: list(running.get(user, ())) for user in set(running) | self._written}
        written = await self.shared.attempt(lambda s: s.write_sessions(batch))
        if written is not UNSHARED:
            self._written = {user for user, sessions in batch.items() if sessions}

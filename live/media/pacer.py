"""Real-time pacing of bursty sources: one leg's audio out as 20 ms packets, 20 ms apart.

Some telephony sources deliver audio in bursts (Genesys AudioHook sends 200 ms frames, forks
and TCP sources whatever their buffers hold). Handed to listeners as they come, ten packets
would reach a browser at once and its jitter buffer would grow by the burst. A ``Pacer`` cuts
a leg's μ-law into 160-byte packets (a remainder waits for the next push) and publishes them
to the leg's ``LegSource`` on a play-out schedule, with contiguous ``pts`` in 8 kHz units.

The play-out rule (``PACKET_S`` = 20 ms, ``max_burst`` = 3, ``max_backlog`` = 25 packets):

1. A packet is due ``PACKET_S`` after the one before it; the first packet of a leg, and any
   packet whose time has come when it is pushed, goes out at once from ``push`` itself. After
   a silence of the sender (nothing queued, the schedule more than ``max_burst - 1`` slots
   in the past) the schedule restarts from now: there is nothing to catch up.
2. When the schedule has fallen behind (input arrived a little late, or the event loop
   stalled with packets queued), at most ``max_burst`` packets go out at one instant; the
   schedule then restarts from now instead of catching up further. A listener thus never
   gets more than ``max_burst`` packets at once.
3. When, after releasing what is due, more than ``max_backlog`` packets wait (a sender faster
   than real time, or a long stall), the oldest beyond the bound are dropped and counted in
   ``dropped``: latency stays bounded, and the packets kept keep their ``pts``, so the
   listener hears a gap, not a slowed-down call.
4. ``gap(samples)`` (a span the sender discarded) advances ``pts`` without delaying the
   schedule: the listener's timestamps jump and its jitter buffer plays silence for the span.

Timers: the pacers of one call share one ``PlayoutClock``, i.e. one ``loop.call_at`` handle
per call at a time, never a task per packet. The clock is anything with the event loop's
``time()`` and ``call_at()``, so tests can drive it by hand.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol

from .hub import PACKET_SAMPLES, SAMPLE_RATE, SILENCE_BYTE, LegSource

__all__ = ["PACKET_S", "Pacer", "PlayoutClock", "Scheduler"]

PACKET_S = PACKET_SAMPLES / SAMPLE_RATE  # 0.020 s
_EARLY_S = 0.001  # a packet due within this much is released now rather than on another timer


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What pacing needs of an event loop (``asyncio.AbstractEventLoop`` is one)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> TimerHandle: ...


class PlayoutClock:
    """One timer for the pacers of a call: fires at the earliest due time among them.

    Without ``loop`` it uses the running event loop: create it inside that loop."""

    def __init__(self, loop: Scheduler | None = None) -> None:
        self._loop: Scheduler = loop if loop is not None else asyncio.get_running_loop()
        self._pacers: list[Pacer] = []
        self._handle: TimerHandle | None = None
        self._when = 0.0
        self.closed = False

    def time(self) -> float:
        return self._loop.time()

    def _add(self, pacer: Pacer) -> None:
        self._pacers.append(pacer)

    def _remove(self, pacer: Pacer) -> None:
        if pacer in self._pacers:
            self._pacers.remove(pacer)
        if not any(p.queued for p in self._pacers):
            self._cancel()

    def _want(self, when: float) -> None:
        """Make sure the timer fires no later than ``when``."""
        if self.closed:
            return
        if self._handle is not None:
            if self._when <= when:
                return
            self._handle.cancel()
        self._when = when
        self._handle = self._loop.call_at(when, self._fire)

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        now = self._loop.time()
        earliest: float | None = None
        for pacer in self._pacers:
            due = pacer._release(now)
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        if earliest is not None:
            self._want(earliest)

    def close(self) -> None:
        """Stop the timer; every pacer on this clock stops publishing."""
        self.closed = True
        self._cancel()
        for pacer in list(self._pacers):
            pacer.close()


class Pacer:
    """One leg: μ-law bytes in (any length), 20 ms packets out to ``source`` at real time.

    ``push`` and ``gap`` never wait and never raise on audio; packets are published from the
    clock's timer (or synchronously in ``push`` when one is due at once). ``pts`` start at
    ``start_pts`` and advance by 160 per packet plus every ``gap``.
    """

    def __init__(
        self,
        source: LegSource,
        *,
        clock: PlayoutClock | None = None,
        max_burst: int = 3,
        max_backlog: int = 25,
        start_pts: int = 0,
    ) -> None:
        if max_burst < 1 or max_backlog < max_burst:
            raise ValueError("need 1 <= max_burst <= max_backlog")
        self.source = source
        self.clock = clock if clock is not None else PlayoutClock()
        self.max_burst = max_burst
        self.max_backlog = max_backlog
        self._queue: deque[tuple[bytes, int, int]] = deque()  # (payload, pts, arrived_ns)
        self._pending = b""  # less than one packet, waiting for the next push
        self._pts = start_pts  # pts of the first byte of ``_pending``
        self._due: float | None = None  # when the next packet may go out; None until the first
        self.published = 0
        self.dropped = 0  # packets dropped because the backlog exceeded ``max_backlog``
        self.closed = False
        self.clock._add(self)

    @property
    def queued(self) -> int:
        """Packets waiting for their time."""
        return len(self._queue)

    def push(self, payload: bytes, arrived_ns: int) -> None:
        """Queue μ-law audio that arrived at ``arrived_ns`` (``time.monotonic_ns()``)."""
        if self.closed or not payload:
            return
        idle = not self._queue
        data = self._pending + payload if self._pending else payload
        whole = len(data) - len(data) % PACKET_SAMPLES
        for offset in range(0, whole, PACKET_SAMPLES):
            self._queue.append((data[offset : offset + PACKET_SAMPLES], self._pts, arrived_ns))
            self._pts += PACKET_SAMPLES
        self._pending = data[whole:]
        if whole:
            self._kick(idle)
            self._trim()

    def gap(self, samples: int) -> None:
        """The sender discarded ``samples`` of audio: advance ``pts`` over them.

        A partial packet waiting is sent padded with silence first, so its audio is not held
        back behind the gap.
        """
        if self.closed or samples <= 0:
            return
        if self._pending:
            held = len(self._pending)
            idle = not self._queue
            padding = bytes([SILENCE_BYTE[self.source.codec]]) * (PACKET_SAMPLES - held)
            arrived_ns = self._queue[-1][2] if self._queue else 0
            self._queue.append((self._pending + padding, self._pts, arrived_ns))
            self._pending = b""
            # The gap starts where the held audio ended; the padding already covers part of it.
            self._pts += max(PACKET_SAMPLES, held + samples)
            self._kick(idle)
            self._trim()
        else:
            self._pts += samples

    def close(self) -> None:
        """Stop: what is queued or held is dropped, nothing more is published."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._pending = b""
        self.clock._remove(self)

    def _trim(self) -> None:
        excess = len(self._queue) - self.max_backlog
        if excess > 0:
            for _ in range(excess):
                self._queue.popleft()
            self.dropped += excess

    def _kick(self, idle: bool) -> None:
        """Release what is due now and make sure the clock wakes for the rest.

        ``idle``: nothing was queued before this push. If the sender was then silent for
        longer than the catch-up window, there is nothing to catch up: the schedule restarts
        now (rule 1) instead of bursting ``max_burst`` packets (rule 2).
        """
        now = self.clock.time()
        if idle and self._due is not None and self._due < now - (self.max_burst - 1) * PACKET_S:
            self._due = now
        due = self._release(now)
        if due is not None:
            self.clock._want(due)

    def _release(self, now: float) -> float | None:
        """Publish the packets due at ``now`` (rule 1 and 2); return when the next is due."""
        queue = self._queue
        if not queue:
            return None
        due = self._due
        if due is None or due < now - (self.max_burst - 1) * PACKET_S:
            # Idle for a while or fallen behind: restart the schedule, allowing at most
            # ``max_burst`` packets now (all but one "late" by up to max_burst - 1 slots).
            due = now if due is None else now - (self.max_burst - 1) * PACKET_S
        publish = self.source.publish
        while queue and due <= now + _EARLY_S:
            payload, pts, arrived_ns = queue.popleft()
            publish(payload, pts, arrived_ns)
            self.published += 1
            due += PACKET_S
        self._due = due
        return due if queue else None

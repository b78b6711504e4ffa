"""Pacing bursty audio to real time: the play-out rule of ``live.media.pacer``.

Driven by a hand-turned clock (``ManualLoop``): the tests advance time and fire timers
themselves, so they assert the schedule exactly and never depend on the machine's speed.
One test runs on the real event loop, waiting on an event, to show the timer is wired.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from live.media.hub import EncodedPacket, LegSource
from live.media.pacer import Pacer, PlayoutClock


class Handle:
    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualLoop:
    """``time()`` and ``call_at()`` of an event loop, with time moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[Handle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> Handle:
        handle = Handle(when, callback)
        self.timers.append(handle)
        return handle

    @property
    def live_timers(self) -> list[Handle]:
        return [h for h in self.timers if not h.cancelled]

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order at their own time."""
        end = self.now + seconds
        while True:
            due = sorted((h for h in self.live_timers if h.when <= end + 1e-9), key=lambda h: h.when)
            if not due:
                break
            handle = due[0]
            self.timers.remove(handle)
            self.now = max(self.now, handle.when)
            handle.callback()
        self.now = end


class Recorder:
    def __init__(self, loop: ManualLoop, source: LegSource) -> None:
        self.got: list[tuple[float, EncodedPacket]] = []
        source.taps.append(lambda leg, packet: self.got.append((loop.now, packet)))

    @property
    def times(self) -> list[float]:
        return [round(t - 100.0, 6) for t, _ in self.got]

    @property
    def pts(self) -> list[int]:
        return [p.pts for _, p in self.got]


def setup(**kwargs: int) -> tuple[ManualLoop, LegSource, Pacer, Recorder]:
    loop = ManualLoop()
    source = LegSource("agent")
    pacer = Pacer(source, clock=PlayoutClock(loop), **kwargs)
    return loop, source, pacer, Recorder(loop, source)


def ms(*values: float) -> list[float]:
    return [round(v / 1000, 6) for v in values]


def test_a_200ms_burst_goes_out_20ms_apart() -> None:
    loop, _, pacer, rec = setup()
    pacer.push(bytes(range(160)) * 10, arrived_ns=42)
    assert rec.times == [0.0]  # the first packet is not delayed
    loop.advance(0.5)
    assert rec.times == ms(*range(0, 200, 20))
    assert rec.pts == list(range(0, 1600, 160))
    assert all(p.arrived_ns == 42 and len(p) == 160 for _, p in rec.got)
    assert pacer.published == 10 and pacer.queued == 0 and not loop.live_timers


def test_back_to_back_bursts_stay_on_one_schedule() -> None:
    loop, _, pacer, rec = setup()
    for _ in range(5):
        pacer.push(b"\x01" * 1600, 0)
        loop.advance(0.2)
    gaps = [round(b - a, 6) for a, b in zip(rec.times, rec.times[1:])]
    assert len(rec.times) == 50 and set(gaps) == {0.02}
    assert rec.pts == list(range(0, 8000, 160))


def test_remainder_waits_for_the_next_push() -> None:
    loop, _, pacer, rec = setup()
    pacer.push(b"\x01" * 100, 0)
    assert rec.got == [] and pacer.queued == 0
    pacer.push(b"\x02" * 100, 0)
    assert len(rec.got) == 1 and rec.got[0][1].payload == b"\x01" * 100 + b"\x02" * 60
    loop.advance(0.02)
    pacer.push(b"\x03" * 120, 0)
    assert [p.payload for _, p in rec.got][1] == b"\x02" * 40 + b"\x03" * 120
    assert rec.pts == [0, 160]


def test_late_input_catches_up_at_most_max_burst_then_restarts() -> None:
    loop, _, pacer, rec = setup(max_burst=3)
    pacer.push(b"\x01" * 160 * 10, 0)
    loop.advance(0.2)
    loop.advance(0.03)  # the next frame is 30 ms late: one slot and a half behind
    pacer.push(b"\x02" * 160 * 10, 0)
    assert rec.times[10:] == ms(230, 230)  # caught up the 1.5 slots at once
    loop.advance(0.5)
    assert rec.times[12:14] == ms(240, 260)  # and back on the 20 ms schedule
    loop.advance(2.0)  # a long silence from the sender, then a burst: nothing to catch up
    pacer.push(b"\x03" * 160 * 10, 0)
    now = round(loop.now - 100, 6)
    assert rec.times.count(now) == 1
    loop.advance(0.5)
    after = [t for t in rec.times if t >= now]
    assert [round(b - a, 6) for a, b in zip(after, after[1:])] == [0.02] * 9


def test_a_stalled_timer_releases_at_most_max_burst() -> None:
    loop, _, pacer, rec = setup(max_burst=3, max_backlog=100)
    pacer.push(b"\x01" * 160 * 20, 0)
    (timer,) = loop.live_timers
    loop.timers.clear()
    loop.now += 0.3  # the event loop was blocked for 300 ms
    timer.callback()
    assert rec.times == [0.0, 0.3, 0.3, 0.3]
    loop.advance(1.0)
    assert len(rec.times) == 20
    assert max(rec.times.count(t) for t in set(rec.times)) == 3


def test_backlog_beyond_the_bound_is_dropped_oldest_first_and_counted() -> None:
    loop, _, pacer, rec = setup(max_backlog=25)
    pacer.push(b"\x01" * 160 * 40, 0)  # two seconds faster than real time
    assert pacer.dropped == 14 and pacer.queued == 25
    loop.advance(1.0)
    assert len(rec.got) == 26
    # the first packet went at once; the 14 after it were dropped: pts jump, never go back
    assert rec.pts[:2] == [0, 15 * 160] and rec.pts == sorted(rec.pts)


def test_gap_advances_pts_without_delaying_the_schedule() -> None:
    loop, _, pacer, rec = setup()
    pacer.push(b"\x01" * 320, 0)
    pacer.gap(8000)  # a second discarded by the sender
    pacer.push(b"\x02" * 320, 0)
    loop.advance(0.1)
    assert rec.pts == [0, 160, 8320, 8480]
    assert rec.times == ms(0, 20, 40, 60)


def test_gap_flushes_a_partial_packet_padded_with_silence() -> None:
    loop, _, pacer, rec = setup()
    pacer.push(b"\x01" * 100, 0)
    pacer.gap(400)
    pacer.push(b"\x02" * 160, 0)
    loop.advance(0.1)
    assert rec.got[0][1].payload == b"\x01" * 100 + b"\xff" * 60
    assert rec.pts == [0, 500]
    pacer.gap(10)  # shorter than the padding already sent: pts still only move forward
    pacer.gap(0)
    pacer.push(b"\x03" * 160, 0)
    loop.advance(0.1)
    assert rec.pts == [0, 500, 670]


def test_two_legs_share_one_timer() -> None:
    loop = ManualLoop()
    clock = PlayoutClock(loop)
    agent, caller = LegSource("agent"), LegSource("caller")
    pacers = Pacer(agent, clock=clock), Pacer(caller, clock=clock)
    recs = Recorder(loop, agent), Recorder(loop, caller)
    for pacer in pacers:
        pacer.push(b"\x01" * 1600, 0)
    assert len(loop.live_timers) == 1
    loop.advance(0.5)
    assert recs[0].times == recs[1].times == ms(*range(0, 200, 20))
    assert len(loop.timers) == 0


def test_close_stops_publishing_and_cancels_the_timer() -> None:
    loop, _, pacer, rec = setup()
    pacer.push(b"\x01" * 1600, 0)
    pacer.close()
    pacer.close()
    assert not loop.live_timers
    loop.advance(1.0)
    pacer.push(b"\x01" * 1600, 0)
    pacer.gap(160)
    assert len(rec.got) == 1


def test_clock_close_closes_its_pacers() -> None:
    loop = ManualLoop()
    clock = PlayoutClock(loop)
    pacer = Pacer(LegSource("caller"), clock=clock)
    pacer.push(b"\x01" * 800, 0)
    clock.close()
    assert pacer.closed and not loop.live_timers


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(LegSource("agent"), clock=PlayoutClock(ManualLoop()), max_burst=0)
    with pytest.raises(ValueError):
        Pacer(LegSource("agent"), clock=PlayoutClock(ManualLoop()), max_burst=5, max_backlog=4)

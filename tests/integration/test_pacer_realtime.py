"""The pacer on the real event loop and the real clock (the unit tests drive a manual clock)."""

from __future__ import annotations

import asyncio
import time

from live.media.hub import EncodedPacket, LegSource
from live.media.pacer import PACKET_S, Pacer


async def test_on_the_real_event_loop_packets_are_spread_out() -> None:
    source = LegSource("agent")
    pacer = Pacer(source)
    arrivals: list[int] = []
    done = asyncio.Event()

    def tap(leg: object, packet: EncodedPacket) -> None:
        arrivals.append(time.monotonic_ns())
        if len(arrivals) == 10:
            done.set()

    source.taps.append(tap)
    pacer.push(b"\x01" * 1600, time.monotonic_ns())
    assert len(arrivals) == 1  # one now, the rest from the timer
    await asyncio.wait_for(done.wait(), timeout=60)  # a bound on a broken run only
    # 10 packets took (at least) 9 slots: they were not sent as one burst
    assert arrivals[-1] - arrivals[0] >= 9 * PACKET_S * 1e9 - 5e6
    pacer.close()

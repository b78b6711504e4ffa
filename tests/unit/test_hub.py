"""The packet hub: bounded drop-oldest queues, one packet object for every listener."""

from __future__ import annotations

import asyncio

import pytest

from live.media.hub import CallMedia, EncodedPacket, LegSource, ListenerQueue, QueueClosed


def packet(n: int) -> EncodedPacket:
    return EncodedPacket(bytes([n % 256]) * 160, n * 160, 0, n)


def test_full_queue_drops_oldest_and_counts() -> None:
    queue = ListenerQueue(3)
    for n in range(5):
        queue.put(packet(n))
    assert len(queue) == 3 and queue.dropped == 2
    assert [p.sequence for p in queue._items] == [2, 3, 4]


async def test_get_waits_for_put_and_close_wakes_consumer() -> None:
    queue = ListenerQueue(2)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put(packet(7))
    assert (await getter).sequence == 7
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await waiting
    queue.put(packet(8))  # a closed queue ignores packets
    assert len(queue) == 0


def test_every_listener_gets_the_same_packet_object() -> None:
    source = LegSource("agent")
    queues = [ListenerQueue(4) for _ in range(3)]
    for queue in queues:
        source.attach(queue)
    sent = source.publish(b"\x10" * 160)
    assert all(q._items[0] is sent for q in queues)
    assert bytes(sent) == b"\x10" * 160 and len(sent) == 160
    assert sent.pts == 0 and sent.time_base.denominator == 8000
    assert source.publish(b"\x10" * 160).pts == 160  # contiguous 20 ms by default


def test_gating_sends_g711_silence_once_per_leg() -> None:
    media = CallMedia("PCMU")
    queue = ListenerQueue(4)
    media.caller.attach(queue)
    media.caller.set_audible(False)
    muted = media.caller.publish(b"\x10" * 160)
    assert muted.payload == b"\xff" * 160
    media.caller.set_audible(True)
    assert media.caller.publish(b"\x10" * 160).payload == b"\x10" * 160
    pcma = LegSource("caller", "PCMA")
    pcma.set_audible(False)
    assert pcma.publish(b"\x10" * 160).payload == b"\xd5" * 160


async def test_stalled_listener_never_delays_another() -> None:
    source = LegSource("agent")
    stalled, fast = ListenerQueue(10), ListenerQueue(10)
    source.attach(stalled)
    source.attach(fast)
    received: list[int] = []

    async def consume() -> None:
        while len(received) < 1000:
            received.append((await fast.get()).sequence)

    consumer = asyncio.create_task(consume())
    for n in range(1000):
        source.publish(bytes(160), arrived_ns=n)  # never awaits
        if n % 5 == 4:
            await asyncio.sleep(0)  # the fast consumer keeps up
    await asyncio.wait_for(consumer, 2)
    assert received == list(range(1000))
    assert fast.dropped == 0
    assert stalled.dropped == 990 and len(stalled) == 10


def test_detach_closes_the_queue() -> None:
    source = LegSource("caller")
    queue = ListenerQueue(2)
    source.attach(queue)
    source.detach(queue)
    assert queue.closed and source.listener_count == 0
    source.publish(bytes(160))
    assert len(queue) == 0

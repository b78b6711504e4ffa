"""The packet hub: bounded drop-oldest queues, one packet object for every listener."""

from __future__ import annotations

import asyncio
import fractions

import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from live.media.hub import CallMedia, EncodedPacket, LegSource, ListenerQueue, QueueClosed


def packet(n: int) -> EncodedPacket:
    return EncodedPacket(bytes([n % 256]) * 160, n * 160, 0, n)


# --- ListenerQueue ------------------------------------------------------------------------


def test_full_queue_drops_oldest_and_counts() -> None:
    queue = ListenerQueue(3)
    for n in range(5):
        queue.put(packet(n))
    assert len(queue) == 3 and queue.dropped == 2
    assert [p.sequence for p in queue._items] == [2, 3, 4]


async def test_queue_is_fifo_and_counts_deliveries() -> None:
    queue = ListenerQueue(4)
    for n in range(6):
        queue.put(packet(n))
    got = [(await queue.get()).sequence for _ in range(4)]
    assert got == [2, 3, 4, 5]  # the two oldest went, the rest in order
    assert (queue.delivered, queue.dropped, len(queue)) == (4, 2, 0)


def test_queue_needs_room_for_one_packet() -> None:
    with pytest.raises(ValueError):
        ListenerQueue(0)


async def test_get_waits_for_put_and_close_wakes_consumer() -> None:
    queue = ListenerQueue(2)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put(packet(7))
    assert (await asyncio.wait_for(getter, 1)).sequence == 7
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiting, 1)
    queue.put(packet(8))  # a closed queue ignores packets
    assert len(queue) == 0


async def test_close_discards_what_is_queued() -> None:
    queue = ListenerQueue(4)
    queue.put(packet(1))
    queue.close()
    assert queue.closed and len(queue) == 0
    with pytest.raises(QueueClosed):
        await queue.get()


async def test_several_puts_before_the_consumer_runs_lose_nothing() -> None:
    queue = ListenerQueue(8)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    for n in range(3):
        queue.put(packet(n))
    assert (await getter).sequence == 0
    assert [(await queue.get()).sequence for _ in range(2)] == [1, 2]


# --- LegSource ----------------------------------------------------------------------------


def test_every_listener_gets_the_same_packet_object() -> None:
    source = LegSource("agent")
    queues = [ListenerQueue(4) for _ in range(3)]
    for queue in queues:
        source.attach(queue)
    payload = b"\x10" * 160
    sent = source.publish(payload)
    assert all(q._items[0] is sent for q in queues)  # one object, no per-listener copies
    assert sent.payload is payload  # not even one copy of the audio
    assert bytes(sent) is payload
    assert bytes(sent) == b"\x10" * 160 and len(sent) == 160
    assert sent.pts == 0 and sent.time_base.denominator == 8000
    assert source.publish(b"\x10" * 160).pts == 160  # contiguous 20 ms by default


def test_attach_twice_feeds_once() -> None:
    source = LegSource("agent")
    queue = ListenerQueue(4)
    source.attach(queue)
    source.attach(queue)
    source.publish(bytes(160))
    assert len(queue) == 1 and source.listener_count == 1


def test_explicit_pts_then_contiguous_and_sequence_counts() -> None:
    source = LegSource("caller")
    first = source.publish(bytes(160), pts=8000, arrived_ns=42)
    second = source.publish(bytes(80))
    third = source.publish(bytes(160))
    assert (first.pts, second.pts, third.pts) == (8000, 8160, 8240)
    assert [first.sequence, second.sequence, third.sequence] == [0, 1, 2]
    assert first.arrived_ns == 42 and source.received == 3


def test_gating_sends_g711_silence_once_per_leg() -> None:
    media = CallMedia("PCMU")
    queues = [ListenerQueue(4), ListenerQueue(4)]
    for queue in queues:
        media.caller.attach(queue)
    media.caller.set_audible(False)
    assert not media.caller.audible
    muted = media.caller.publish(b"\x10" * 160)
    assert muted.payload == b"\xff" * 160  # μ-law zero sample
    assert all(q._items[0] is muted for q in queues)
    again = media.caller.publish(b"\x20" * 160)
    assert again.payload is muted.payload  # the silence is built once, not per packet
    assert media.agent.publish(b"\x10" * 160).payload == b"\x10" * 160  # the other leg is heard
    media.caller.set_audible(True)
    assert media.caller.publish(b"\x10" * 160).payload == b"\x10" * 160
    pcma = LegSource("caller", "PCMA")
    pcma.set_audible(False)
    assert pcma.publish(b"\x10" * 160).payload == b"\xd5" * 160  # A-law zero sample


def test_taps_see_every_packet() -> None:
    source = LegSource("agent")
    seen: list[tuple[str, EncodedPacket]] = []
    source.taps.append(lambda leg, p: seen.append((leg, p)))
    sent = source.publish(bytes(160))
    assert seen == [("agent", sent)]


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
    assert fast.dropped == 0 and fast.delivered == 1000
    assert stalled.dropped == 1000 - stalled.maxlen and len(stalled) == stalled.maxlen
    assert [p.sequence for p in stalled._items] == list(range(990, 1000))  # the newest kept


def test_detach_closes_the_queue() -> None:
    source = LegSource("caller")
    queue = ListenerQueue(2)
    source.attach(queue)
    source.detach(queue)
    assert queue.closed and source.listener_count == 0
    source.publish(bytes(160))
    assert len(queue) == 0


async def test_closing_a_call_wakes_every_listener() -> None:
    media = CallMedia()
    queues = {leg: ListenerQueue(4) for leg in ("agent", "caller")}
    for leg, queue in queues.items():
        media.leg(leg).attach(queue)  # type: ignore[arg-type]
    assert media.listener_count == 1
    waiting = [asyncio.create_task(q.get()) for q in queues.values()]
    await asyncio.sleep(0)
    media.close()
    for task in waiting:
        with pytest.raises(QueueClosed):
            await asyncio.wait_for(task, 1)
    assert media.listener_count == 0


# --- what aiortc needs --------------------------------------------------------------------


@pytest.mark.parametrize("mime", ["audio/PCMU", "audio/PCMA"])
def test_aiortc_packs_the_packet_as_it_is(mime: str) -> None:
    """``RTCRtpSender`` hands anything that is not a decoded frame to the codec's ``pack()``."""
    encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=8000, channels=1))
    sent = EncodedPacket(bytes(range(160)), 4000, 0, 0)
    assert isinstance(EncodedPacket.time_base, fractions.Fraction)
    assert sent.time_base == fractions.Fraction(1, 8000)
    payloads, timestamp = encoder.pack(sent)
    assert payloads == [bytes(range(160))]
    assert timestamp == 4000  # 1/8000 s units map onto the 8 kHz RTP clock unchanged

"""RedisCallBus against a real redis-server: order, roster, liveness, relay, outage, shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

import live.bus.redis as redis_bus
from live.bus.redis import RedisCallBus
from live.codec import encode_event
from live.errors import BusUnavailable
from live.model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenerInfo,
    ListenStarted,
)
from live.types import CallId, Consent, NodeId, SessionId
from tests.conftest import RedisServer
from tests.helpers import reserved_port
from tests.support.wait import wait_for


def call(call_id: str, node: str = "node-a", **changes: object) -> CallInfo:
    info = CallInfo(CallId(call_id), "twilio", "agent-1", time.time(), NodeId(node))
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


def listener(session_id: str, node: str = "node-b", name: str = "Sam") -> ListenerInfo:
    return ListenerInfo(SessionId(session_id), "sup-1", name, "quality", time.time(), NodeId(node))


async def settle(predicate: Callable[[], bool], what: str = "the bus to deliver") -> None:
    await wait_for(predicate, 30, what, every=0.02)


async def settle_snapshot(bus: RedisCallBus, check: Callable[[list[CallInfo]], bool]) -> None:
    async def settled() -> list[CallInfo] | None:
        calls = await bus.snapshot()
        return calls if check(calls) else None

    await wait_for(settled, 30, f"{bus.node_id}'s snapshot to settle")


async def stop_heartbeat(bus: RedisCallBus) -> None:
    """Make ``bus`` look hung: its heartbeat stops (a fault hard to cause otherwise)."""
    [task] = [t for t in bus._tasks if t.get_name() == "redis-heartbeat"]
    while not task.done():  # a cancel can get lost in redis-py on Python 3.11: insist
        task.cancel()
        await asyncio.wait([task], timeout=0.05)


def recorder(bus: RedisCallBus) -> list[BusEvent]:
    seen: list[BusEvent] = []
    bus.subscribe(seen.append)
    return seen


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client to look at (or, for faults, tamper with) what the bus keeps in Redis."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisCallBus, RedisCallBus]]:
    a, b = RedisCallBus(redis_url, "node-a"), RedisCallBus(redis_url, "node-b")
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_events_reach_every_node_in_one_order(
    pair: tuple[RedisCallBus, RedisCallBus],
) -> None:
    a, b = pair
    seen_a, seen_b = recorder(a), recorder(b)
    await a.publish(CallStarted(call("CA1")))
    # Both nodes publish at once: whatever Redis's order, every node sees the same one.
    await asyncio.gather(
        *(a.publish(CallUpdated(call("CA1", queue=f"q{i}"))) for i in range(10)),
        *(
            b.publish(ListenStarted(CallId("CA1"), listener(f"ls_{i}"), ("agent",)))
            for i in range(10)
        ),
    )
    await a.publish(CallEnded(CallId("CA1"), time.time()))
    await settle(lambda: len(seen_a) == 22 and len(seen_b) == 22)
    assert seen_a == seen_b
    assert seen_a[0].kind == "call.started" and seen_a[-1].kind == "call.ended"
    updates = [e.call.queue for e in seen_a if isinstance(e, CallUpdated)]
    assert updates == [f"q{i}" for i in range(10)]  # one publisher's events keep their order


async def test_snapshot_shows_calls_of_other_nodes_with_their_listeners(
    pair: tuple[RedisCallBus, RedisCallBus], raw: aioredis.Redis
) -> None:
    a, b = pair
    seen_b = recorder(b)
    await a.publish(CallStarted(call("CA1")))
    await b.publish(ListenStarted(CallId("CA1"), listener("ls_1", name="Sam"), ("agent", "caller")))
    await a.publish(CallUpdated(call("CA1", consent=Consent.DENIED)))  # keeps the listener
    [shown] = await b.snapshot()
    assert shown.call_id == "CA1" and shown.consent is Consent.DENIED
    assert [x.display_name for x in shown.listeners] == ["Sam"]
    assert await a.snapshot() == [shown]

    await b.publish(ListenStarted(CallId("CA1"), listener("ls_2", name="Kim"), ("agent",)))
    await b.publish(ListenEnded(CallId("CA1"), SessionId("ls_1"), "stopped", time.time()))
    [shown] = await a.snapshot()
    assert [x.display_name for x in shown.listeners] == ["Kim"]

    await a.publish(CallEnded(CallId("CA1"), time.time()))
    assert await b.snapshot() == []
    assert await raw.hlen(a.keys.listens) == 0  # the ended call's listeners went with it
    await settle(lambda: len(seen_b) == 6)


async def test_a_broken_subscriber_or_message_does_not_stop_delivery(
    pair: tuple[RedisCallBus, RedisCallBus], raw: aioredis.Redis
) -> None:
    a, b = pair

    def broken(event: BusEvent) -> None:
        raise RuntimeError("subscriber bug")

    b.subscribe(broken)
    seen = recorder(b)
    await raw.publish(b.keys.events, b"\xc1 not msgpack")
    await raw.publish(b.keys.events, b"\x81\xa1k\x91\x01")  # {"k": [1]}: decodes, fits nothing
    await a.publish(CallStarted(call("CA1")))
    await a.publish(CallEnded(CallId("CA1"), time.time()))
    await settle(lambda: len(seen) == 2)
    assert [e.kind for e in seen] == ["call.started", "call.ended"]


async def test_unsubscribed_handler_gets_nothing(pair: tuple[RedisCallBus, RedisCallBus]) -> None:
    a, b = pair
    gone: list[BusEvent] = []
    unsubscribe = b.subscribe(gone.append)
    unsubscribe()
    unsubscribe()  # idempotent
    seen = recorder(b)
    await a.publish(CallStarted(call("CA1")))
    await settle(lambda: len(seen) == 1)
    assert gone == []


async def test_a_silent_node_drops_out_of_snapshot(redis_url: str) -> None:
    buses = [
        RedisCallBus(redis_url, f"node-{n}", heartbeat_s=0.1, node_timeout_s=0.6) for n in "abc"
    ]
    a, b, c = buses
    for bus in buses:
        await bus.start()
    try:
        await a.publish(CallStarted(call("CA1", node="node-a")))
        await c.publish(CallStarted(call("CC1", node="node-c")))
        await c.publish(ListenStarted(CallId("CA1"), listener("ls_1", node="node-c"), ("agent",)))
        before = await b.snapshot()
        assert [x.call_id for x in before] == ["CA1", "CC1"]
        assert len(before[0].listeners) == 1
        await stop_heartbeat(c)
        await settle_snapshot(b, lambda calls: [x.call_id for x in calls] == ["CA1"])
        [only] = await b.snapshot()
        assert only.call_id == "CA1" and only.listeners == ()  # its listener went with it
    finally:
        for bus in buses:
            await bus.aclose()


async def test_a_closed_node_withdraws_and_announces_its_calls(
    redis_url: str, raw: aioredis.Redis
) -> None:
    b = RedisCallBus(redis_url, "node-b")
    c = RedisCallBus(redis_url, "node-c")
    await b.start()
    await c.start()
    try:
        seen = recorder(b)
        await c.publish(CallStarted(call("CC1", node="node-c")))
        await c.publish(ListenStarted(CallId("CC1"), listener("ls_1", node="node-b"), ("agent",)))
        await c.aclose()
        await settle(lambda: any(isinstance(e, CallEnded) for e in seen))
        assert await b.snapshot() == []
        assert await raw.hlen(b.keys.calls) == 0 and await raw.hlen(b.keys.listens) == 0
        assert await raw.zscore(b.keys.nodes, "node-c") is None
        await c.aclose()  # closing twice is harmless
    finally:
        await b.aclose()


async def test_a_node_restarted_after_a_crash_withdraws_its_leftovers(
    redis_url: str, raw: aioredis.Redis
) -> None:
    b = RedisCallBus(redis_url, "node-b")
    await b.start()
    seen = recorder(b)
    # What a crashed node-a left: a call and a listen in the hashes, a recent heartbeat.
    left = call("CA1", node="node-a")
    await raw.hset(b.keys.calls, "CA1", encode_event(CallUpdated(left)))
    leftover_listen = ListenStarted(CallId("CB9"), listener("ls_9", node="node-a"), ("agent",))
    await raw.hset(b.keys.listens, "ls_9", encode_event(leftover_listen))
    await raw.zadd(b.keys.nodes, {"node-a": time.time()})
    assert [x.call_id for x in await b.snapshot()] == ["CA1"]
    a = RedisCallBus(redis_url, "node-a")
    await a.start()
    try:
        assert await b.snapshot() == []
        await settle(lambda: len(seen) == 2)
        assert {e.kind for e in seen} == {"call.ended", "listen.ended"}
        assert [e.reason for e in seen if isinstance(e, ListenEnded)] == ["node-lost"]
    finally:
        await a.aclose()
        await b.aclose()


async def test_media_relay_on_demand(
    pair: tuple[RedisCallBus, RedisCallBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    monkeypatch.setattr(redis_bus, "WANT_TTL_S", 0.5)
    got: list[bytes] = []
    also: list[bytes] = []

    def broken(data: bytes) -> None:
        raise RuntimeError("feed bug")

    assert not a.media_wanted(CallId("CA1"))
    unsubscribe = await b.subscribe_media(CallId("CA1"), got.append)
    unsubscribe_broken = await b.subscribe_media(CallId("CA1"), broken)
    unsubscribe_other = await b.subscribe_media(CallId("CA2"), also.append)
    await b.want_media(CallId("CA1"))
    await settle(lambda: a.media_wanted(CallId("CA1")))
    assert not a.media_wanted(CallId("CA2"))
    packets = [i.to_bytes(2, "big") * 80 for i in range(200)]  # 2 s of one leg, at once
    for packet in packets:
        a.publish_media(CallId("CA1"), packet)
    a.publish_media(CallId("CA2"), b"other")
    await settle(lambda: len(got) == 200 and len(also) == 1)
    assert got == packets  # in order, none lost, the broken handler notwithstanding
    assert a.media_dropped == 0
    await settle(lambda: not a.media_wanted(CallId("CA1")), "the media request to expire")

    await unsubscribe()
    await unsubscribe()  # idempotent
    await unsubscribe_broken()
    a.publish_media(CallId("CA1"), b"after")
    a.publish_media(CallId("CA2"), b"still")
    await settle(lambda: len(also) == 2)
    assert len(got) == 200
    await unsubscribe_other()


async def test_media_queue_drops_oldest_when_redis_cannot_keep_up(
    pair: tuple[RedisCallBus, RedisCallBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    monkeypatch.setattr(redis_bus, "MEDIA_QUEUE_PACKETS", 5)
    got: list[bytes] = []
    unsubscribe = await b.subscribe_media(CallId("CA1"), got.append)
    for i in range(8):  # no await point between them: the writer cannot run meanwhile
        a.publish_media(CallId("CA1"), bytes([i]))
    await settle(lambda: len(got) == 5)
    assert got == [bytes([i]) for i in range(3, 8)] and a.media_dropped == 3
    await unsubscribe()


async def test_dead_redis_refuses_then_recovers(own_redis: RedisServer) -> None:
    bus = RedisCallBus(own_redis.url, "node-a", heartbeat_s=0.2)
    other = RedisCallBus(own_redis.url, "node-b", heartbeat_s=0.2)
    await bus.start()
    await other.start()
    seen = recorder(bus)
    media: list[bytes] = []
    unsubscribe = await other.subscribe_media(CallId("CA1"), media.append)
    try:
        await bus.publish(CallStarted(call("CA1")))
        own_redis.stop()
        with pytest.raises(BusUnavailable):
            await bus.publish(CallStarted(call("CA2")))
        with pytest.raises(BusUnavailable):
            await bus.snapshot()
        with pytest.raises(BusUnavailable):
            await other.want_media(CallId("CA1"))
        bus.publish_media(CallId("CA1"), b"lost")  # never raises, never blocks
        # Both nodes notice the outage (and their readers start backing off).
        await settle(lambda: bus.problem is not None and other.problem is not None, "the outage noticed")

        own_redis.start()  # empty: nothing was persisted

        async def carried_again() -> bool:
            try:
                await bus.publish(CallUpdated(call("CA1", queue="back")))
            except BusUnavailable:
                return False
            return any(isinstance(e, CallUpdated) for e in seen)

        await wait_for(carried_again, 30, "the bus to carry events again", every=0.2)
        # What node-a still asserts (including a call announced during the outage) is
        # written back once its heartbeat finds Redis empty.
        await settle_snapshot(other, lambda calls: {c.call_id for c in calls} == {"CA1", "CA2"})
        # The media subscription came back too.

        def relayed() -> bool:
            bus.publish_media(CallId("CA1"), b"back")
            return bool(media)

        await wait_for(relayed, 30, "the media relay to recover", every=0.2)
        assert set(media) == {b"back"}
    finally:
        await unsubscribe()
        await bus.aclose()
        await other.aclose()


async def test_aclose_leaves_nothing_running_or_registered(
    redis_url: str, raw: aioredis.Redis
) -> None:
    before = asyncio.all_tasks()
    bus = RedisCallBus(redis_url, "node-a")
    await bus.start()
    await bus.publish(CallStarted(call("CA1")))
    unsubscribe = await bus.subscribe_media(CallId("CA9"), lambda data: None)
    bus.publish_media(CallId("CA1"), b"x")
    assert await raw.zscore(bus.keys.nodes, "node-a") is not None
    await bus.aclose()
    assert asyncio.all_tasks() - before == set()
    assert await raw.hlen(bus.keys.calls) == 0
    assert await raw.zscore(bus.keys.nodes, "node-a") is None
    clients = await raw.client_list()
    assert len(clients) == 1  # only ``raw`` itself is still connected
    await unsubscribe()  # after close: harmless
    with pytest.raises(BusUnavailable):
        await bus.publish(CallStarted(call("CA2")))


async def test_unreachable_redis_at_start_is_a_clear_error() -> None:
    before = asyncio.all_tasks()
    with reserved_port() as held:  # ours, and nothing listens on it: connections are refused
        bus = RedisCallBus(f"redis://127.0.0.1:{held.getsockname()[1]}/0", "node-a")
        with pytest.raises(BusUnavailable):
            await bus.start()
    assert asyncio.all_tasks() - before == set()
    await bus.aclose()


async def test_the_pools_connections_from_before_a_restart_are_not_an_error(own_redis: RedisServer) -> None:
    """Redis restarted: each pooled connection of the old server is dead; the first command
    on it is retried on a new one, not failed while Redis is up."""
    bus = RedisCallBus(own_redis.url, NodeId("node-a"))
    await bus.start()
    try:
        await stop_heartbeat(bus)
        await asyncio.gather(*(bus.view() for _ in range(4)))  # four connections in the pool
        own_redis.stop()
        own_redis.start()
        for n in range(4):
            await bus.publish(CallStarted(call(f"CA{n}")))
        assert len((await bus.view()).calls) == 0  # not beating: its calls do not count
    finally:
        await bus.aclose()

"""RedisCallBus against a real redis-server: order, roster, liveness, relay, outage."""

from __future__ import annotations

import asyncio
import time

import pytest

from live.bus.redis import RedisCallBus
from live.errors import BusUnavailable
from live.model import CallEnded, CallInfo, CallStarted, CallUpdated, ListenerInfo, ListenStarted
from live.types import CallId, Consent, NodeId, SessionId
from tests.conftest import RedisServer


def call(call_id: str, node: str = "node-a", **kw: object) -> CallInfo:
    return CallInfo(CallId(call_id), "twilio", "agent-1", time.time(), NodeId(node), **kw)  # type: ignore[arg-type]


async def settle(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_events_reach_every_node_in_order(redis_url: str) -> None:
    a, b = RedisCallBus(redis_url, "node-a"), RedisCallBus(redis_url, "node-b")
    await a.start()
    await b.start()
    seen_a: list[str] = []
    seen_b: list[str] = []
    a.subscribe(lambda e: seen_a.append(e.kind))
    b.subscribe(lambda e: seen_b.append(e.kind))
    try:
        await a.publish(CallStarted(call("CA1")))
        await a.publish(CallUpdated(call("CA1", consent=Consent.DENIED)))
        listener = ListenerInfo(SessionId("ls_1"), "sup", "Sam", "quality", time.time(), NodeId("node-b"))
        await b.publish(ListenStarted(CallId("CA1"), listener, ("agent",)))
        await settle(lambda: len(seen_a) == 3 and len(seen_b) == 3)
        assert seen_a == seen_b == ["call.started", "call.updated", "listen.started"]
        snapshot = await b.snapshot()
        assert [c.call_id for c in snapshot] == ["CA1"]
        assert snapshot[0].consent is Consent.DENIED
        assert [x.display_name for x in snapshot[0].listeners] == ["Sam"]
        await a.publish(CallEnded(CallId("CA1"), time.time()))
        await settle(lambda: len(seen_b) == 4)
        assert await b.snapshot() == []
    finally:
        await a.aclose()
        await b.aclose()


async def test_silent_node_drops_out_and_closed_node_withdraws(redis_url: str) -> None:
    a = RedisCallBus(redis_url, "node-a", heartbeat_s=0.1, node_timeout_s=0.5)
    b = RedisCallBus(redis_url, "node-b", heartbeat_s=0.1, node_timeout_s=0.5)
    await a.start()
    await b.start()
    try:
        await a.publish(CallStarted(call("CA2")))
        assert [c.call_id for c in await b.snapshot()] == ["CA2"]
        for task in a._tasks:  # a node that hangs: no more heartbeats
            task.cancel()
        await asyncio.sleep(0.8)
        assert await b.snapshot() == []
    finally:
        await a.aclose()
        await b.aclose()
    c = RedisCallBus(redis_url, "node-c")
    await c.start()
    await c.publish(CallStarted(call("CA3", node="node-c")))
    await c.aclose()
    d = RedisCallBus(redis_url, "node-d")
    await d.start()
    try:
        assert await d.snapshot() == []
    finally:
        await d.aclose()


async def test_media_relay_on_demand(redis_url: str) -> None:
    a, b = RedisCallBus(redis_url, "node-a"), RedisCallBus(redis_url, "node-b")
    await a.start()
    await b.start()
    got: list[bytes] = []
    try:
        assert not a.media_wanted(CallId("CA4"))
        unsubscribe = await b.subscribe_media(CallId("CA4"), got.append)
        await b.want_media(CallId("CA4"))
        await settle(lambda: a.media_wanted(CallId("CA4")))
        for i in range(5):
            await a.publish_media(CallId("CA4"), bytes([i]) * 10)
        await settle(lambda: len(got) == 5)
        assert got[0] == b"\x00" * 10
        await unsubscribe()
    finally:
        await a.aclose()
        await b.aclose()


async def test_dead_redis_refuses_then_recovers(own_redis: RedisServer) -> None:
    bus = RedisCallBus(own_redis.url, "node-a")
    await bus.start()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(e.kind))
    try:
        own_redis.stop()
        with pytest.raises(BusUnavailable):
            await bus.publish(CallStarted(call("CA5")))
        own_redis.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                await bus.publish(CallStarted(call("CA6")))
                await settle(lambda: "call.started" in seen, timeout=1)
                break
            except (BusUnavailable, AssertionError):
                assert time.monotonic() < deadline, "the bus did not recover"
                await asyncio.sleep(0.3)
    finally:
        await bus.aclose()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("redis-")]


async def test_unreachable_redis_at_start_is_a_clear_error() -> None:
    from tests.support.server import free_port

    bus = RedisCallBus(f"redis://127.0.0.1:{free_port()}/0", "node-a")
    with pytest.raises(BusUnavailable):
        await bus.start()

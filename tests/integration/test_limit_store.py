"""The cluster-wide limit store against a real Redis: the Lua buckets do what the in-memory
ones do, listen leases are counted across nodes and expire with a dead node, and the
fallback to per-node limits while Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from live.errors import BusUnavailable
from live.limits import LimitStore, RateLimit, SharedLimits
from live.limits.shared import UNSHARED
from live.limits.store import Mode
from tests.conftest import RedisServer
from tests.support.wait import wait_for


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[LimitStore]:
    store = LimitStore(redis_url, "node-a")
    await store.start()
    yield store
    await store.aclose()


async def test_redis_buckets_count_like_the_in_memory_ones(store: LimitStore, redis_url: str) -> None:
    shared, local = RateLimit(2, 2, floor=-2), RateLimit(2, 2, floor=-2)
    steps: tuple[Mode, ...] = ("take", "take", "take", "spend", "spend", "spend")
    for step in steps:
        in_redis = await store.rate("t", "key", shared, step)
        in_memory = getattr(local, step)("key", 0.0)
        # Redis's clock moves on a little between steps; at 2 a minute that is far below a second.
        if step == "take":
            assert in_redis == pytest.approx(in_memory, abs=1.0)
        in_redis = await store.rate("t", "key", shared, "wait")
        assert in_redis == pytest.approx(local.wait("key", 0.0), abs=1.0), step
    assert in_redis == pytest.approx(90.0, abs=1.0)  # three tokens of debt, 30 s each
    async with aioredis.Redis.from_url(redis_url) as client:
        assert 0 < await client.ttl("live:limit:t:key") <= 121  # gone once it would be full again


async def test_listen_leases_are_one_count_across_nodes(store: LimitStore, redis_url: str) -> None:
    other = LimitStore(redis_url, "node-b")
    dying = LimitStore(redis_url, "node-c", slot_lease_s=0.5)
    for one in (other, dying):
        await one.start()
    try:
        assert await store.take_hold("sup", "p:node-a:1", [], 3) is None
        assert await other.take_hold("sup", "p:node-b:1", [], 3) is None
        await dying.write_sessions({"sup": ["c1"]})
        assert await store.take_hold("sup", "p:node-a:2", [], 3) == 3  # two holds and c1
        # Answered: node a's hold becomes its session, node b's request made none.
        await store.drop_hold("sup", "p:node-a:1", ["a1"])
        await other.drop_hold("sup", "p:node-b:1", [])
        assert await other.take_hold("sup", "p:node-b:2", [], 2) == 2  # a1 and c1
        # Node c stops renewing (it died): its session leaves the count with its lease.
        await wait_for(lambda: _granted(other, "sup", "p:node-b:3", 2), 30, "node c's lease to run out", every=0.1)
        # A node withdraws its sessions with an empty list; others' stay.
        await store.write_sessions({"sup": []})
        async with aioredis.Redis.from_url(redis_url) as client:
            assert await client.zrange("live:listening:sup", 0, -1) == [b"p:node-b:3"]
    finally:
        for one in (other, dying):
            await one.aclose()


async def _granted(store: LimitStore, user_id: str, hold: str, cap: int) -> bool:
    return await store.take_hold(user_id, hold, [], cap) is None


async def test_without_redis_the_node_falls_back_and_comes_back(own_redis: RedisServer) -> None:
    shared = SharedLimits(LimitStore(own_redis.url, "node-a"), retry_s=0)
    await shared.start()
    limit = RateLimit(10, 10)
    try:
        assert await shared.attempt(lambda s: s.rate("r", "k", limit, "take")) == 0.0
        assert shared.in_use and "live_limits_shared 1" in shared.metric_lines()
        own_redis.stop()
        assert await shared.attempt(lambda s: s.rate("r", "k", limit, "take")) is UNSHARED
        assert await shared.attempt(lambda s: s.rate("r", "k", limit, "take")) is UNSHARED
        assert not shared.in_use and shared.fallbacks == 1  # one fallback per outage
        assert shared.store is not None
        with pytest.raises(BusUnavailable):
            await shared.store.take_hold("sup", "p:node-a:1", [], 1)
        own_redis.start()
        await wait_for(
            lambda: _shared(shared, limit), 30, "the shared limits to answer again", every=0.1
        )
        assert shared.in_use and shared.metric_lines()[1:] == [
            "live_limits_shared 1", "# TYPE live_limits_fallbacks_total counter", "live_limits_fallbacks_total 1"
        ]
    finally:
        await shared.aclose()


async def _shared(shared: SharedLimits, limit: RateLimit) -> bool:
    return await shared.attempt(lambda s: s.rate("r", "k", limit, "take")) is not UNSHARED

"""Cluster-wide limits: three nodes on one real Redis share one count of listens at once and
one set of sign-in buckets; while Redis is down each node applies its own limits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.conftest import RedisServer
from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
CALLER = tone(660, 2.0, 0.3)
NAMES = ("node-a", "node-b", "node-c")
FLOOR = "203.0.113.50"  # a contact-centre floor behind one NAT address


def jarless() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, redis_url: str, **overrides: Any) -> AsyncIterator[list[RunningServer]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                running_server(tmp_path / name, redis_url=redis_url, node_id=name, **overrides)
            )
            for name in NAMES
        ]


async def metric(server: RunningServer, name: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/metrics") as response:
        text = await response.text()
    return next((line.split()[-1] for line in text.splitlines() if line.startswith(f"{name} ")), "")


async def listening_count(redis_url: str, user_id: str) -> int:
    async with aioredis.Redis.from_url(redis_url) as client:
        return int(await client.zcard(f"live:listening:{user_id}"))


async def test_five_listens_through_three_nodes_meet_one_cap(tmp_path: Path, redis_url: str) -> None:
    async with cluster(tmp_path, redis_url, listens_per_supervisor=4) as nodes:
        sender = TwilioSender(nodes[0].twilio_url, "CA-cap", LOUD, CALLER, consent="granted")
        await sender.start()
        listeners: list[Listener] = []
        try:
            for node in nodes:
                await wait_call(node, "CA-cap")
            # Four listens by one supervisor, spread over the three nodes.
            for n in range(4):
                node = nodes[n % 3]
                listeners.append(Listener(node.base_url, node.tokens["sup"]))
                await listeners[-1].listen("CA-cap")
            # The fifth is refused wherever it is asked: no node has four of its own.
            for node in nodes:
                fifth = Listener(node.base_url, node.tokens["sup"])
                listeners.append(fifth)
                with pytest.raises(RuntimeError, match="429.*too_many_listens"):
                    await fifth.listen("CA-cap")
            assert sum(node.state.limits.refused["listens_at_once"] for node in nodes) == 3
            # Another supervisor is not affected.
            other = Listener(nodes[2].base_url, nodes[2].tokens["sup2"])
            listeners.append(other)
            await other.listen("CA-cap")
            # Stopping one listen on node a frees a place on node c.
            assert await listeners[0].stop() == 200
            await wait_for(
                lambda: _count_is(redis_url, "sup", 3), 30, "node a to give the place back", every=0.1
            )
            again = Listener(nodes[2].base_url, nodes[2].tokens["sup"])
            listeners.append(again)
            await again.listen("CA-cap")
            await again.wait_frames(5)  # a listen through another node than the call's is heard
        finally:
            for listener in listeners:
                await listener.close()
            await sender.stop()


async def _count_is(redis_url: str, user_id: str, expected: int) -> bool:
    return await listening_count(redis_url, user_id) == expected


async def bad_link(http: aiohttp.ClientSession, node: RunningServer, token: str) -> tuple[int, str]:
    async with http.get(
        f"{node.base_url}/auth/link", params={"token": token}, headers={"X-Forwarded-For": FLOOR}, allow_redirects=False
    ) as response:
        return response.status, response.headers.get("Location", "")


async def test_bad_links_from_a_shared_address_never_stop_a_valid_link(tmp_path: Path, redis_url: str) -> None:
    async with cluster(
        tmp_path,
        redis_url,
        trusted_proxies="127.0.0.1",
        signin_failures_per_minute=3,
        signin_address_failures_per_minute=5,
        signin_backoff_max_ms=1,
    ) as nodes, jarless() as http:
        answers = [await bad_link(http, nodes[n % 3], f"lt_wrong{n}") for n in range(10)]
        assert answers == [(302, "/signin/?error=bad_link")] * 10
        # Each node saw at most four of them, fewer than the threshold of five: the address
        # is slowed because the cluster counts them together...
        for node in nodes:
            assert await bad_link(http, node, node.tokens["agent"]) == (302, "/agent/")
        assert nodes[2].state.limits.slowed["signin_address"] >= 1
        # ...and no answer from that address was a refusal.
        assert sum(sum(node.state.limits.refused.values()) for node in nodes) == 0


async def password(
    http: aiohttp.ClientSession, node: RunningServer, user: str, secret: str, address: str
) -> int:
    async with http.post(
        f"{node.base_url}/auth/signin",
        json={"user": user, "password": secret},
        headers={"X-Forwarded-For": address},
    ) as response:
        return response.status


async def test_an_attacked_user_is_throttled_across_the_cluster(tmp_path: Path, redis_url: str) -> None:
    async with cluster(
        tmp_path, redis_url, trusted_proxies="127.0.0.1", signin_failures_per_minute=3, signin_user_failures_per_minute=4
    ) as nodes, jarless() as http:
        for node in nodes:
            node.state.users.set_password("sup", "right one")
            node.state.users.set_password("agent", "agent's own")
        # Four guesses at one account from four addresses through three nodes...
        statuses = [await password(http, nodes[n % 3], "sup", "guess", f"192.0.2.{n + 1}") for n in range(4)]
        assert statuses == [401] * 4
        # ...and the account is protected on every node, the right password included,
        # though node c saw a single failure of its own.
        for node in nodes:
            assert await password(http, node, "sup", "guess", "198.51.100.7") == 429
        assert await password(http, nodes[2], "sup", "right one", "198.51.100.8") == 429
        # Others at the attackers' addresses sign in as usual.
        for n, node in enumerate(nodes):
            assert await password(http, node, "agent", "agent's own", f"192.0.2.{n + 1}") == 200
        # Guesses at one account from one address are refused at the lower per-address limit.
        pair = [await password(http, nodes[n % 3], "agent", "guess", FLOOR) for n in range(4)]
        assert pair == [401, 401, 401, 429]


async def test_while_redis_is_down_each_node_applies_its_own_limits(tmp_path: Path, own_redis: RedisServer) -> None:
    async with cluster(tmp_path, own_redis.url, listens_per_supervisor=1) as nodes:
        a, b = nodes[0], nodes[1]
        sender = TwilioSender(a.twilio_url, "CA-down", LOUD, CALLER, consent="granted")
        await sender.start()
        listeners: list[Listener] = []
        try:
            await wait_call(a, "CA-down")
            await wait_call(b, "CA-down")
            assert await metric(a, "live_limits_shared") == "1"
            own_redis.stop()
            # Listening still works, and this node's own count applies.
            first = Listener(a.base_url, a.tokens["sup"])
            listeners.append(first)
            await first.listen("CA-down")
            await first.wait_frames(5)
            second = Listener(a.base_url, a.tokens["sup"])
            listeners.append(second)
            with pytest.raises(RuntimeError, match="429.*too_many_listens"):
                await second.listen("CA-down")
            assert await metric(a, "live_limits_shared") == "0"
            assert await metric(a, "live_limits_fallbacks_total") == "1"

            own_redis.start()  # empty: nothing was persisted
            # Node a writes its running listen back; the cap is cluster-wide again.
            await wait_for(lambda: _shared_again(a), 30, "node a to use Redis again", every=0.2)
            await wait_for(lambda: _count_is(own_redis.url, "sup", 1), 30, "node a's listen in Redis", every=0.2)
            third = Listener(b.base_url, b.tokens["sup"])
            listeners.append(third)
            with pytest.raises(RuntimeError, match="429.*too_many_listens"):
                await third.listen("CA-down")
        finally:
            for listener in listeners:
                await listener.close()
            await sender.stop()


async def _shared_again(node: RunningServer) -> bool:
    return await metric(node, "live_limits_shared") == "1"

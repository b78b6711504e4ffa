"""Durable revocation: three nodes on one PostgreSQL and one Redis, both started by the test.

A sign-out is kept in PostgreSQL and every node reads it there, so it holds through a Redis
outage and a Redis restarted empty, on every node and on a node started afterwards. A node
that cannot read the store for longer than ``LIVE_REVOCATION_BOUND_S`` refuses cookies and API
tokens with 503 ``revocations_unavailable`` and accepts them again once the store is back.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import RedisServer
from tests.conftest_pg import _bindir
from tests.integration.test_attacks import jarless, link_cookie, me
from tests.integration.test_ledger_faults import OwnPostgres
from tests.support.process import live_cli
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

FAST = {"revocation_poll_s": 1, "revocation_bound_s": 3}


@pytest.fixture
def own_postgres() -> Iterator[tuple[OwnPostgres, str]]:
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries (initdb, postgres) are missing: run deploy/run-tests.sh")
    server = OwnPostgres(bindir)
    try:
        server.start()
        yield server, server.create_database("revocations")
    finally:
        server.stop()


@asynccontextmanager
async def cluster(
    tmp_path: Path, ledger_url: str, redis_url: str, names: tuple[str, ...]
) -> AsyncIterator[list[RunningServer]]:
    """Nodes sharing the ledger's database, Redis, the session secret and one user file
    (copied from the first node's data directory, so every node knows its tokens)."""
    async with AsyncExitStack() as stack:
        nodes: list[RunningServer] = []
        for name in names:
            data = tmp_path / name
            if nodes:
                data.mkdir(parents=True, exist_ok=True)
                shutil.copy(nodes[0].settings.users_path, data / "users.json")
            nodes.append(
                await stack.enter_async_context(
                    running_server(data, ledger_url=ledger_url, redis_url=redis_url, node_id=name, **FAST)
                )
            )
        yield nodes


async def bearer(http: aiohttp.ClientSession, server: RunningServer, token: str) -> tuple[int, Any]:
    async with http.get(f"{server.base_url}/api/me", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def sign_out(http: aiohttp.ClientSession, server: RunningServer, cookie: str) -> None:
    status, body = await me(http, server, cookie)
    assert status == 200, body
    async with http.post(
        f"{server.base_url}/auth/signout",
        headers={"Cookie": f"live_session={cookie}", "X-CSRF-Token": body["csrf_token"]},
    ) as response:
        assert response.status == 200, await response.text()


async def refused_everywhere(http: aiohttp.ClientSession, nodes: list[RunningServer], cookie: str, what: str) -> None:
    async def refused() -> bool:
        return [(await me(http, node, cookie))[0] for node in nodes] == [401] * len(nodes)

    await wait_for(refused, 30, what, every=0.1)


async def test_a_sign_out_holds_on_every_node_through_redis_outages_and_restarts(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    _pg, url = own_postgres
    redis = RedisServer().start()
    try:
        async with cluster(tmp_path, url, redis.url, ("a", "b", "c")) as (a, b, c), jarless() as http:
            during_outage = await link_cookie(http, a, "sup")
            before_restart = await link_cookie(http, a, "sup")
            kept = await link_cookie(http, a, "sup")
            for node in (a, b, c):
                for cookie in (during_outage, before_restart, kept):
                    assert (await me(http, node, cookie))[0] == 200

            # Learnt through Redis (and the store); then Redis restarts with an empty memory.
            await sign_out(http, a, before_restart)
            await refused_everywhere(http, [b, c], before_restart, "B and C to learn the sign-out")

            # Signed out on A while Redis is down: B and C learn it from PostgreSQL alone.
            redis.stop()
            await sign_out(http, a, during_outage)
            await refused_everywhere(http, [a, b, c], during_outage, "the sign-out during the outage on B and C")

            redis.start()  # the same port, nothing in it
            async with cluster(tmp_path / "late", url, redis.url, ("d",)) as (d,):
                for node in (a, b, c, d):
                    assert (await me(http, node, before_restart))[0] == 401
                    assert (await me(http, node, during_outage))[0] == 401
                    assert (await me(http, node, kept))[0] == 200  # only what was signed out

            # A node restarted after all that (same data directory) still refuses both.
        async with cluster(tmp_path, url, redis.url, ("b",)) as (b_again,), jarless() as http:
            assert (await me(http, b_again, before_restart))[0] == 401
            assert (await me(http, b_again, during_outage))[0] == 401
            assert (await me(http, b_again, kept))[0] == 200
    finally:
        redis.cleanup()


async def test_signout_from_the_command_line_withdraws_cookies_and_tokens_on_every_node(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    _pg, url = own_postgres
    redis = RedisServer().start()
    try:
        async with cluster(tmp_path, url, redis.url, ("a", "b", "c")) as nodes, jarless() as http:
            a = nodes[0]
            cookie = await link_cookie(http, a, "sup")
            token = a.tokens["sup"]
            for node in nodes:
                assert (await bearer(http, node, token))[0] == 200
            redis.stop()  # the operator's command reaches the others through PostgreSQL
            env = {"LIVE_LEDGER_URL": url, "LIVE_REDIS_URL": redis.url}
            printed = await asyncio.to_thread(live_cli, a.settings.data_dir, "users", "signout", "sup", "--tokens", env=env)
            assert "API token(s) withdrawn" in printed
            await refused_everywhere(http, nodes, cookie, "the command line's sign-out on every node")

            async def token_refused() -> bool:
                return [(await bearer(http, node, token))[0] for node in nodes] == [401] * len(nodes)

            # B and C still hold the token in their own user files: the shared store refuses it.
            await wait_for(token_refused, 30, "the withdrawn token to be refused on every node", every=0.1)
    finally:
        redis.cleanup()


async def test_a_node_cut_off_from_the_store_refuses_credentials_and_recovers(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    pg, url = own_postgres
    redis = RedisServer().start()
    try:
        async with cluster(tmp_path, url, redis.url, ("a", "b")) as (a, b), jarless() as http:
            cookie = await link_cookie(http, a, "sup")
            token = b.tokens["sup"]
            assert (await me(http, b, cookie))[0] == 200

            pg.pg_ctl_stop()  # Redis stays up: it alone is not enough to know every sign-out

            async def refused() -> bool:
                cookie_answer = await me(http, b, cookie)
                token_answer = await bearer(http, b, token)
                return all(
                    status == 503 and body["error"]["code"] == "revocations_unavailable"
                    for status, body in (cookie_answer, token_answer)
                )

            await wait_for(refused, 60, "node B to refuse credentials it cannot check", every=0.2)
            async with http.get(f"{b.base_url}/readyz") as response:
                assert response.status == 503
            async with http.get(f"{b.base_url}/metrics") as response:
                assert "live_revocations_current 0" in (await response.text()).splitlines()
            # Requests without credentials are not affected.
            async with http.get(f"{b.base_url}/healthz") as response:
                assert response.status == 200

            pg.launch()

            async def accepted() -> bool:
                return (await me(http, b, cookie))[0] == 200 and (await bearer(http, b, token))[0] == 200

            await wait_for(accepted, 60, "node B to accept credentials once the store is back", every=0.2)
            async with http.get(f"{b.base_url}/metrics") as response:
                assert "live_revocations_current 1" in (await response.text()).splitlines()
            # And what is signed out from now on is refused, as before the outage.
            await sign_out(http, a, cookie)
            await refused_everywhere(http, [a, b], cookie, "the sign-out after the outage")
    finally:
        redis.cleanup()

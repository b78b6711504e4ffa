"""Abuse limits not covered by ``test_abuse_limits.py``: the node-wide socket cap, the agent's
socket, the JSON a refused upgrade carries, ``Retry-After`` on listen floods, a sign-in body
over the size limit, and whose address counts behind a chain of trusted proxies."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import aiohttp

from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

PROXIES = "127.0.0.1,10.0.0.2"  # the test client is the outer proxy, 10.0.0.2 an inner one


def jarless() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


def upgrade_headers(token: str) -> dict[str, str]:
    """A WebSocket handshake by hand, so that a refusal's JSON body can be read."""
    return {
        "Authorization": f"Bearer {token}",
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }


async def refused_upgrade(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, str]:
    async with http.get(url, headers=upgrade_headers(token)) as response:
        return response.status, (await response.json())["error"]["code"]


async def test_the_node_wide_socket_cap_answers_503_before_the_upgrade(tmp_path: Path) -> None:
    async with running_server(tmp_path, ws_total=2, ws_per_user=8) as server, jarless() as http:
        url = f"{server.ws_url}/api/events"
        sup = {"Authorization": f"Bearer {server.tokens['sup']}"}
        first = await http.ws_connect(url, headers=sup)
        second = await http.ws_connect(url, headers=sup)
        try:
            assert await refused_upgrade(http, f"{server.base_url}/api/events", server.tokens["sup2"]) == (
                503,
                "too_many_connections",
            )
            assert server.state.limits.refused["ws_total"] == 1
            # Plain requests are still served while the sockets are full.
            async with http.get(f"{server.base_url}/api/calls", headers=sup) as response:
                assert response.status == 200
        finally:
            await first.close()
            await second.close()


async def test_the_agent_socket_is_capped_per_person(tmp_path: Path) -> None:
    async with running_server(tmp_path, ws_per_user=1) as server, jarless() as http:
        agent = {"Authorization": f"Bearer {server.tokens['agent']}"}
        async with http.ws_connect(f"{server.ws_url}/api/agent/events", headers=agent):
            status, code = await refused_upgrade(http, f"{server.base_url}/api/agent/events", server.tokens["agent"])
            assert (status, code) == (429, "too_many_connections")
        # Once the socket is gone, the agent gets in again.
        await wait_for(
            lambda: not server.state.limits.open_ws.get("agent"), 30, "the agent's socket to be freed"
        )
        async with http.ws_connect(f"{server.ws_url}/api/agent/events", headers=agent):
            pass


async def test_a_listen_flood_is_told_when_to_come_back(tmp_path: Path) -> None:
    async with running_server(tmp_path, listens_per_minute=2) as server, jarless() as http:
        statuses, retry_after = [], ""
        for _ in range(3):
            async with http.post(
                f"{server.base_url}/api/calls/CA-none/listen",
                json={"type": "offer", "sdp": "v=0", "purpose": "quality"},
                headers={"Authorization": f"Bearer {server.tokens['sup']}"},
            ) as response:
                body = await response.json()
                statuses.append((response.status, body["error"]["code"]))
                retry_after = response.headers.get("Retry-After", "")
        assert statuses[-1] == (429, "rate_limited") and statuses[0][0] != 429
        assert int(retry_after) >= 1


async def test_an_oversized_sign_in_body_is_a_json_413(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        async with http.post(
            f"{server.base_url}/auth/signin",
            data=b'{"user": "sup", "password": "' + b"x" * (70 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "too_large"
        async with http.get(f"{server.base_url}/healthz") as response:
            assert response.status == 200


async def sign_in_via(http: aiohttp.ClientSession, server: RunningServer, user: str, forwarded_for: str) -> int:
    async with http.post(
        f"{server.base_url}/auth/signin",
        json={"user": user, "password": "guess"},
        headers={"X-Forwarded-For": forwarded_for},
    ) as response:
        return response.status


async def test_behind_trusted_proxies_the_last_untrusted_hop_counts(tmp_path: Path) -> None:
    async with running_server(
        tmp_path, trusted_proxies=PROXIES, signin_failures_per_minute=3, signin_address_failures_per_minute=3,
        signin_backoff_max_ms=1,
    ) as server, jarless() as http:
        # The attacker writes whatever it likes at the left of the header; the inner proxy
        # appends the real address, so rotating the forged part does not help: one user's
        # guesses from that address are refused...
        statuses = [await sign_in_via(http, server, "sup", f"192.0.2.{n}, 203.0.113.7, 10.0.0.2") for n in range(4)]
        assert statuses == [401, 401, 401, 429]
        # ...and guesses at other users from it are slowed (never refused: see live.limits.signin).
        assert await sign_in_via(http, server, "sup2", "192.0.2.9, 203.0.113.7, 10.0.0.2") == 401
        assert server.state.limits.slowed["signin_address"] == 2
        # A colleague behind the same proxies at another address is not slowed.
        assert await sign_in_via(http, server, "auditor", "198.51.100.20, 10.0.0.2") == 401
        assert server.state.limits.slowed["signin_address"] == 2
        # A malformed hop counts against the proxy that passed it on, not a made-up address.
        buckets = server.state.limits.rates["signin_address"].buckets
        assert "203.0.113.7" in buckets and "198.51.100.20" in buckets
        assert "127.0.0.1" not in buckets
        assert await sign_in_via(http, server, "auditor", "not-an-address") == 401
        assert "127.0.0.1" in buckets

"""Abuse limits against a real server: sign-in and token guessing, listen floods, too many
sockets, oversized messages. Each time the honest users next to the attacker carry on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
CALLER = tone(660, 2.0, 0.3)
PROXY = "127.0.0.1"  # the test client stands in for a reverse proxy


def jarless() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def sign_in(http: aiohttp.ClientSession, server: RunningServer, user: str, password: str, client: str) -> tuple[int, dict]:
    async with http.post(
        f"{server.base_url}/auth/signin",
        json={"user": user, "password": password},
        headers={"X-Forwarded-For": client},
    ) as response:
        body = await response.json()
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return response.status, body


async def test_password_guessing_is_stopped_and_others_carry_on(tmp_path: Path) -> None:
    async with running_server(
        tmp_path, trusted_proxies=PROXY, signin_failures_per_minute=5, signin_user_failures_per_minute=5
    ) as server, jarless() as http:
        server.state.users.set_password("sup", "right one")
        server.state.users.set_password("agent", "agent's own")
        attacker = "203.0.113.7"
        for _ in range(5):
            assert (await sign_in(http, server, "sup", "guess", attacker))[0] == 401
        status, body = await sign_in(http, server, "sup", "guess", attacker)
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        # A colleague behind the same address signs in: someone else's failures there never
        # refuse a valid password (a contact-centre floor shares one NAT address)...
        assert (await sign_in(http, server, "agent", "agent's own", attacker))[0] == 200
        # ...nor does a colleague elsewhere notice anything.
        assert (await sign_in(http, server, "agent", "agent's own", "198.51.100.20"))[0] == 200
        # The attacked user is protected from every address for a while.
        assert (await sign_in(http, server, "sup", "right one", "198.51.100.20"))[0] == 429
        # Guessing one user's password from many addresses: that user is protected for a while.
        for n in range(5):
            await sign_in(http, server, "admin", "guess", f"192.0.2.{n + 1}")
        assert (await sign_in(http, server, "admin", "guess", "192.0.2.99"))[0] == 429
        assert server.state.limits.refused["signin"] >= 3


async def test_successful_sign_ins_are_never_limited(tmp_path: Path) -> None:
    """A whole shift signing in through one NAT address: only failures count."""
    async with running_server(tmp_path, signin_failures_per_minute=3) as server, jarless() as http:
        for _ in range(30):
            async with http.get(
                f"{server.base_url}/auth/link", params={"token": server.tokens["agent"]}, allow_redirects=False
            ) as response:
                assert response.status == 302 and response.headers["Location"] == "/agent/"


async def test_link_token_guessing_is_slowed_but_never_refuses_a_valid_link(tmp_path: Path) -> None:
    """Unknown links name no user: they count per address, which only slows the answers."""
    async with running_server(
        tmp_path, signin_failures_per_minute=2, signin_address_failures_per_minute=4, signin_backoff_max_ms=1
    ) as server, jarless() as http:
        statuses = []
        for n in range(6):
            async with http.get(
                f"{server.base_url}/auth/link", params={"token": f"lt_guess{n}"}, allow_redirects=False
            ) as response:
                statuses.append((response.status, response.headers["Location"]))
        assert statuses == [(302, "/signin/?error=bad_link")] * 6
        assert server.state.limits.slowed["signin_address"] == 2
        async with http.get(
            f"{server.base_url}/auth/link", params={"token": server.tokens["agent"]}, allow_redirects=False
        ) as response:
            assert response.status == 302 and response.headers["Location"] == "/agent/"
        async with http.get(f"{server.base_url}/metrics") as response:
            assert 'live_abuse_slowed_total{limit="signin_address"} 3' in await response.text()


async def test_unknown_bearer_tokens_are_slowed_but_valid_ones_always_work(tmp_path: Path) -> None:
    async with running_server(tmp_path, bad_tokens_per_minute=5) as server, jarless() as http:
        url = f"{server.base_url}/api/calls"
        statuses = []
        for n in range(7):
            async with http.get(url, headers={"Authorization": f"Bearer lt_guess{n}"}) as response:
                statuses.append(response.status)
        assert statuses == [401] * 5 + [429] * 2
        async with http.get(url, headers={"Authorization": f"Bearer {server.tokens['sup']}"}) as response:
            assert response.status == 200
        async with http.get(f"{server.base_url}/metrics") as response:
            assert 'live_abuse_refused_total{limit="bad_token"} 2' in await response.text()


async def test_a_forged_forwarded_for_header_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    async with running_server(tmp_path, signin_failures_per_minute=3) as server, jarless() as http:
        server.state.users.set_password("sup", "right one")
        statuses = [(await sign_in(http, server, "sup2", "guess", f"10.0.0.{n}"))[0] for n in range(5)]
        assert statuses == [401, 401, 401, 429, 429]  # rotating the header does not help


async def test_listen_floods_and_too_many_listens_at_once(tmp_path: Path) -> None:
    async with running_server(tmp_path, listens_per_supervisor=1, listens_per_minute=3) as server, jarless() as http:
        sender = TwilioSender(server.twilio_url, "CA-flood", LOUD, CALLER, consent="granted")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-flood")
            await listener.listen("CA-flood")

            async def listen_again() -> tuple[int, str]:
                async with http.post(
                    f"{server.base_url}/api/calls/CA-flood/listen",
                    json={"type": "offer", "sdp": "v=0", "purpose": "quality"},
                    headers={"Authorization": f"Bearer {server.tokens['sup']}"},
                ) as response:
                    return response.status, (await response.json())["error"]["code"]

            assert await listen_again() == (429, "too_many_listens")
            await listener.stop()
            assert await listen_again() == (400, "bad_sdp")  # past the limit: a real answer
            assert await listen_again() == (429, "rate_limited")  # the fourth listen request within a minute
            # Another supervisor is not affected.
            other = Listener(server.base_url, server.tokens["sup2"])
            try:
                await other.listen("CA-flood")
            finally:
                await other.close()
        finally:
            await listener.close()
            await sender.stop()


async def test_websocket_connection_limits(tmp_path: Path) -> None:
    async with running_server(tmp_path, ws_per_user=2, ingest_connections=1) as server, jarless() as http:
        headers = {"Authorization": f"Bearer {server.tokens['sup']}"}
        first = await http.ws_connect(f"{server.ws_url}/api/events", headers=headers)
        second = await http.ws_connect(f"{server.ws_url}/api/events", headers=headers)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{server.ws_url}/api/events", headers=headers)
        assert refused.value.status == 429
        # Another supervisor still gets in; closing a socket frees a place.
        async with http.ws_connect(
            f"{server.ws_url}/api/events", headers={"Authorization": f"Bearer {server.tokens['sup2']}"}
        ) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
        await first.close()
        await wait_for(
            lambda: server.state.limits.open_ws.get("sup", 0) < 2, 30, "a socket place to be freed"
        )
        third = await http.ws_connect(f"{server.ws_url}/api/events", headers=headers)
        await second.close()
        await third.close()

        sender = TwilioSender(server.twilio_url, "CA-one", LOUD, CALLER)
        await sender.start()
        try:
            with pytest.raises(aiohttp.WSServerHandshakeError) as full:
                await http.ws_connect(server.twilio_url)
            assert full.value.status == 503
        finally:
            await sender.stop()


async def test_an_oversized_roster_message_closes_only_that_socket(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        headers = {"Authorization": f"Bearer {server.tokens['sup']}"}
        async with http.ws_connect(f"{server.ws_url}/api/events", headers=headers) as big, http.ws_connect(
            f"{server.ws_url}/api/events", headers={"Authorization": f"Bearer {server.tokens['sup2']}"}
        ) as other:
            await big.receive_json(timeout=5)
            await other.receive_json(timeout=5)
            await big.send_str('"' + "x" * 10_000 + '"')
            closing = await big.receive(timeout=5)
            assert closing.type == WSMsgType.CLOSE and closing.data == 1009
            await other.send_str('"ping"')
            assert await other.receive_json(timeout=5) == {"type": "pong"}
        async with http.post(
            f"{server.base_url}/api/calls/CA-x/consent", data=b"{" + b" " * 70_000 + b"}", headers=headers
        ) as response:
            assert response.status == 413 and (await response.json())["error"]["code"] == "too_large"


async def test_parallel_listen_requests_cannot_slip_past_the_limit(tmp_path: Path) -> None:
    async with running_server(tmp_path, listens_per_supervisor=2) as server:
        sender = TwilioSender(server.twilio_url, "CA-race", LOUD, CALLER, consent="granted")
        await sender.start()
        listeners = [Listener(server.base_url, server.tokens["sup"]) for _ in range(6)]
        try:
            await wait_call(server, "CA-race")
            results = await asyncio.gather(*(one.listen("CA-race") for one in listeners), return_exceptions=True)
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(results) - len(refused) == 2, results
            assert all("too_many_listens" in str(r) for r in refused), refused
            assert len(server.state.node.listens.sessions) == 2
        finally:
            for listener in listeners:
                await listener.close()
            await sender.stop()

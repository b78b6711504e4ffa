"""Attacks on sign-in, sessions and roles, each against a real running server.

CSRF, a foreign Origin on WebSockets, expired, forged and replayed session cookies, withdrawn
and made-up bearer tokens, session fixation, people reaching for what their role does not
give them (an agent or an auditor listening, a supervisor listening outside their teams or
reading the ledger), and path traversal on the static files.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.auth import SessionCodec
from live.auth.tokens import b64url_decode, b64url_encode
from tests.integration.test_policy_enforced import policy_text, wait_call
from tests.support.g711 import tone
from tests.support.process import live_cli
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
CALLER = tone(660, 2.0, 0.3)


async def link_cookie(http: aiohttp.ClientSession, server: RunningServer, user: str, jar_cookie: str = "") -> str:
    headers = {"Cookie": f"live_session={jar_cookie}"} if jar_cookie else {}
    async with http.get(
        f"{server.base_url}/auth/link",
        params={"token": server.tokens[user]},
        headers=headers,
        allow_redirects=False,
    ) as response:
        assert response.status == 302
        return response.cookies["live_session"].value


async def me(http: aiohttp.ClientSession, server: RunningServer, cookie: str) -> tuple[int, Any]:
    async with http.get(f"{server.base_url}/api/me", headers={"Cookie": f"live_session={cookie}"}) as response:
        return response.status, await response.json()


def jarless() -> aiohttp.ClientSession:
    """A client that sends only the cookies a test names (no jar of its own)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def test_csrf_state_changes_need_the_session_token(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        cookie = await link_cookie(http, server, "admin")
        status, body = await me(http, server, cookie)
        csrf = body["csrf_token"]
        url = f"{server.base_url}/api/admin/policy/reload"
        for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": SessionCodec("x", 60).csrf_token("s")}):
            # What a cross-site form or fetch could send: the cookie rides along, the token not.
            async with http.post(url, headers={"Cookie": f"live_session={cookie}", **headers}, data="a=b") as response:
                assert response.status == 403 and (await response.json())["error"]["code"] == "csrf"
        async with http.post(url, headers={"Cookie": f"live_session={cookie}", "X-CSRF-Token": csrf}) as response:
            assert response.status == 200, await response.text()
        # The token of one session is no good for another session of the same user.
        other = await link_cookie(http, server, "admin")
        async with http.post(url, headers={"Cookie": f"live_session={other}", "X-CSRF-Token": csrf}) as response:
            assert response.status == 403
        # Login CSRF: a foreign page posting the attacker's credentials is refused.
        server.state.users.set_password("agent", "attacker's password")
        async with http.post(
            f"{server.base_url}/auth/signin",
            json={"user": "agent", "password": "attacker's password"},
            headers={"Origin": "https://evil.example"},
        ) as response:
            assert response.status == 403 and (await response.json())["error"]["code"] == "bad_origin"
            assert "live_session" not in response.cookies


async def test_websockets_refuse_a_foreign_origin(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        for user, path in (("sup", "/api/events"), ("agent", "/api/agent/events")):
            cookie = await link_cookie(http, server, user)
            for origin in ("https://evil.example", "null", server.base_url.replace("127.0.0.1", "localhost")):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(
                        f"{server.ws_url}{path}", headers={"Cookie": f"live_session={cookie}", "Origin": origin}
                    )
                assert refused.value.status == 403
            async with http.ws_connect(
                f"{server.ws_url}{path}", headers={"Cookie": f"live_session={cookie}", "Origin": server.base_url}
            ) as ws:
                assert (await ws.receive_json(timeout=5))["type"] in ("snapshot", "monitoring")


def forge(cookie: str, **changes: Any) -> str:
    body, signature = cookie.split(".", 1)
    data = json.loads(b64url_decode(body))
    data.update(changes)
    return f"{b64url_encode(json.dumps(data).encode())}.{signature}"


async def test_expired_forged_and_replayed_sessions_are_refused(tmp_path: Path) -> None:
    async with running_server(tmp_path, session_ttl_s=3600) as server, jarless() as http:
        good = await link_cookie(http, server, "agent")
        assert (await me(http, server, good))[0] == 200
        codec = server.state.sessions
        expired, _ = codec.issue("admin", time.time() - 7200)  # signed with the real key
        wrong_key, _ = SessionCodec("not-the-secret", 3600).issue("admin", time.time())
        cases = {
            "expired": expired,
            "other user in the body": forge(good, u="admin"),
            "later expiry in the body": forge(good, exp=time.time() + 10**8),
            "role claim added": forge(good, r="admin"),
            "signed with another key": wrong_key,
            "unsigned": good.split(".")[0],
            "garbage": "%%%not-a-cookie",
        }
        for name, cookie in cases.items():
            status, body = await me(http, server, cookie)
            assert (status, body["error"]["code"]) == (401, "signed_out"), name

        # Sign out, then replay the cookie: the server has revoked it.
        status, body = await me(http, server, good)
        async with http.post(
            f"{server.base_url}/auth/signout",
            headers={"Cookie": f"live_session={good}", "X-CSRF-Token": body["csrf_token"]},
        ) as response:
            assert response.status == 200
            assert "live_session=\"\"" in response.headers["Set-Cookie"] or "Max-Age=0" in response.headers["Set-Cookie"]
        assert (await me(http, server, good))[0] == 401

    # Revocation outlives a restart (same data directory).
    async with running_server(tmp_path, session_ttl_s=3600) as server, jarless() as http:
        assert (await me(http, server, good))[0] == 401


async def test_bearer_tokens_unknown_malformed_and_withdrawn(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        url = f"{server.base_url}/api/calls"
        for header in ("Bearer lt_made-up", "Basic c3VwOnB3", "Bearer ", "lt_no-scheme"):
            async with http.get(url, headers={"Authorization": header}) as response:
                assert response.status == 401 and (await response.json())["error"]["code"] == "bad_token", header
        token = server.tokens["sup"]
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
        # An operator withdraws the tokens from another process while the server runs.
        printed = await asyncio.to_thread(live_cli, tmp_path, "users", "signout", "sup", "--tokens")
        assert "1 API token(s) withdrawn" in printed
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 401


async def test_session_fixation_a_planted_cookie_is_replaced_and_revoked(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        server.state.users.set_password("sup", "correct horse")
        # The attacker signs in as themselves and plants that cookie in the victim's browser.
        planted = await link_cookie(http, server, "agent")
        async with http.post(
            f"{server.base_url}/auth/signin",
            json={"user": "sup", "password": "correct horse"},
            headers={"Cookie": f"live_session={planted}"},
        ) as response:
            assert response.status == 200
            fresh = response.cookies["live_session"].value
        assert fresh != planted
        codec = server.state.sessions
        assert codec.read(fresh, time.time()).session_id != codec.read(planted, time.time()).session_id  # type: ignore[union-attr]
        # The victim is themselves; the planted session is dead, so the attacker holds nothing.
        assert (await me(http, server, fresh))[1]["user_id"] == "sup"
        assert (await me(http, server, planted))[0] == 401
        # A made-up session id cannot be planted at all: it is not signed.
        made_up = planted.split(".")[0] + ".AAAA"
        assert (await me(http, server, made_up))[0] == 401


async def test_password_change_signs_out_every_browser(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, jarless() as http:
        first = await link_cookie(http, server, "auditor")
        second = await link_cookie(http, server, "auditor")
        await server.state.revocations.revoke_user("auditor", time.time())
        assert (await me(http, server, first))[0] == 401
        assert (await me(http, server, second))[0] == 401
        after = await link_cookie(http, server, "auditor")
        assert (await me(http, server, after))[0] == 200
        # From the command line while serving (`live users signout`), picked up within a second.
        await asyncio.to_thread(live_cli, tmp_path, "users", "signout", "auditor")
        async def signed_out() -> bool:
            return (await me(http, server, after))[0] == 401

        await wait_for(signed_out, 30, "the signout from the command line to take effect", every=0.1)


async def test_roles_reach_only_their_own(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text(), encoding="utf-8")
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server, jarless() as http:
        sender = TwilioSender(server.twilio_url, "CA-att", LOUD, CALLER)
        await sender.start()
        try:
            await wait_call(server, "CA-att")  # agent-1, team billing: sup's team, not sup2's

            async def listen(user: str) -> tuple[int, str]:
                async with http.post(
                    f"{server.base_url}/api/calls/CA-att/listen",
                    json={"type": "offer", "sdp": "v=0", "purpose": "quality"},
                    headers={"Authorization": f"Bearer {server.tokens[user]}"},
                ) as response:
                    return response.status, (await response.json())["error"]["code"]

            assert await listen("agent") == (403, "role_forbidden")
            assert await listen("auditor") == (403, "role_forbidden")
            assert await listen("sup2") == (403, "outside_team")
            refused = await server.state.node.ledger.entries(kind="listen.refused")
            assert [(e.fields["user_id"], e.fields["code"]) for e in refused] == [
                ("agent", "role_forbidden"),
                ("auditor", "role_forbidden"),
                ("sup2", "outside_team"),
            ]
            # A supervisor reads no ledger and exports nothing; an agent only their own.
            for path in ("/api/audit/sessions", "/api/audit/export?agent=agent-1", "/api/audit/report", "/api/audit/verify"):
                async with http.get(
                    f"{server.base_url}{path}", headers={"Authorization": f"Bearer {server.tokens['sup']}"}
                ) as response:
                    assert response.status == 403, path
            async with http.get(
                f"{server.base_url}/api/audit/export?agent=agent-1&format=jsonl",
                headers={"Authorization": f"Bearer {server.tokens['agent']}"},
            ) as response:
                assert response.status == 403, await response.text()
        finally:
            await sender.stop()


async def raw_get(server: RunningServer, target: str) -> tuple[int, bytes]:
    """Send the request line exactly as written (a client library would normalise '..')."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


async def test_static_files_do_not_leave_their_folder(tmp_path: Path) -> None:
    secret = Path(__file__).resolve().parents[2] / "pyproject.toml"
    marker = b"[project]"
    assert marker in secret.read_bytes()
    async with running_server(tmp_path) as server:
        status, body = await raw_get(server, "/console/console.js")
        assert status == 200 and b"Cache-Control: no-cache" in body  # revalidated every time
        for target in (
            "/console/../../pyproject.toml",
            "/console/..%2f..%2fpyproject.toml",
            "/console/%2e%2e/%2e%2e/pyproject.toml",
            "/shared/..%5c..%5cpyproject.toml",
            "/agent/....//....//pyproject.toml",
            "/audit/%252e%252e/%252e%252e/pyproject.toml",
            "/console/../../live/config.py",
            "/signin//etc/passwd",
            "/console/%00.js",
        ):
            status, body = await raw_get(server, target)
            assert status in (400, 403, 404), (target, status)
            assert marker not in body and b"root:" not in body and b"dataclass" not in body, target
        # Data files in the data directory are not served either.
        for target in ("/users.json", "/ledger.sqlite3", "/console/../users.json"):
            status, body = await raw_get(server, target)
            assert status in (400, 403, 404), (target, status)
            assert b"scrypt" not in body


async def test_a_sign_out_on_one_node_ends_the_session_on_every_node(tmp_path: Path, redis_url: str) -> None:
    """Two nodes share the session secret and a Redis: a cookie signed out on one is refused
    by the other within the revocation refresh interval (one second)."""
    async with (
        running_server(tmp_path / "a", redis_url=redis_url, node_id="a") as node_a,
        running_server(tmp_path / "b", redis_url=redis_url, node_id="b") as node_b,
        jarless() as http,
    ):
        cookie = await link_cookie(http, node_a, "sup")
        # Node B accepts node A's cookie (same secret; both nodes know user "sup"), and
        # each node keeps its revocations in its own data directory: only Redis links them.
        assert (await me(http, node_b, cookie))[0] == 200
        status, body = await me(http, node_a, cookie)
        async with http.post(
            f"{node_a.base_url}/auth/signout",
            headers={"Cookie": f"live_session={cookie}", "X-CSRF-Token": body["csrf_token"]},
        ) as response:
            assert response.status == 200
        async def signed_out_on_b() -> bool:
            return (await me(http, node_b, cookie))[0] == 401

        await wait_for(signed_out_on_b, 30, "node B to learn of the signout", every=0.1)

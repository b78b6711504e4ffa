"""Role × route matrix, generated from the router itself.

Every route the server mounts (the OIDC routes included, with an issuer configured) is
called by nobody, by each role with a bearer token, and by each role with a browser session
cookie but no CSRF token. A route without a rule in ``live/server/access.py`` fails here
and stops the server from starting at all; a role the table does not allow must get 401 or
403, and a role it allows must get past the access check. Every WebSocket message type is
sent by every role that may open the socket, and the socket re-checks the session before it
answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from live.config import load_settings
from live.server import create_app
from live.server.access import check_routes
from live.server.pages import WEB_ROOT
from live.server.route import route_key
from live.server.routes import ACCESS, WS_MESSAGES
from live.types import Role
from tests.support.server import PEOPLE, RunningServer, running_server

ROLE_OF_USER = {"agent": Role.AGENT, "sup": Role.SUPERVISOR, "auditor": Role.AUDITOR, "admin": Role.ADMIN}
OIDC = {
    "oidc_issuer": "http://127.0.0.1:9/",  # never contacted: the matrix stops before the provider
    "oidc_client_id": "live",
    "oidc_client_secret": "s3cret",
}
INGEST_SECRET = "ingest-secret-for-the-matrix"


def concrete_path(canonical: str) -> str:
    """A request path for a route: placeholders filled, a real file for a static folder."""
    path = canonical.replace("{call_id}", "CA-matrix").replace("{session_id}", "S-matrix")
    path = path.replace("{notice_id}", "N-matrix").replace("{kind}", "freeswitch")
    folder = WEB_ROOT / canonical.strip("/")
    if canonical.count("/") == 1 and folder.is_dir() and canonical != "/":
        first = sorted(p.name for p in folder.iterdir() if p.is_file())[0]
        path = f"{canonical}/{first}"
    assert "{" not in path, f"fill the placeholder of {canonical} in this test"
    return path


@contextlib.asynccontextmanager
async def matrix_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(
        tmp_path, ingest_loopback_trust=False, ingest_secret=INGEST_SECRET, **OIDC
    ) as server:
        yield server


async def session_cookie(http: aiohttp.ClientSession, server: RunningServer, user: str) -> str:
    async with http.get(
        f"{server.base_url}/auth/link", params={"token": server.tokens[user]}, allow_redirects=False
    ) as response:
        assert response.status == 302
        return response.cookies["live_session"].value


def passes_access(status: int, body: Any) -> bool:
    """Did the request get past the access check (whatever the handler then said)?"""
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    if status == 401:
        return code not in ("signed_out", "bad_token")  # e.g. a wrong password is past the check
    if status == 403:
        return code not in ("role_forbidden", "csrf")
    return True


async def call(
    http: aiohttp.ClientSession, server: RunningServer, method: str, path: str, headers: dict[str, str]
) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    async with http.request(method, f"{server.base_url}{path}", **kwargs) as response:
        text = (await response.read()).decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        return response.status, body


def test_every_route_has_an_access_rule_and_a_missing_one_stops_the_server(tmp_path: Path) -> None:
    settings = load_settings({}, None, data_dir=tmp_path, **OIDC)
    app = create_app(settings)
    keys = {route_key(r) for r in app.router.routes()}
    assert keys <= set(ACCESS), keys - set(ACCESS)
    assert ("GET", "/auth/oidc/callback") in keys  # the matrix covers OIDC's routes too
    # Every rule in the table is a real route: no stale entries that would hide a typo.
    assert set(ACCESS) <= keys, set(ACCESS) - keys

    async def unguarded(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    app.router.add_get("/api/forgotten", unguarded)
    with pytest.raises(RuntimeError, match="GET /api/forgotten"):
        check_routes(app)


async def test_role_by_route_matrix(tmp_path: Path) -> None:
    async with matrix_server(tmp_path) as server, aiohttp.ClientSession() as http:
        routes = sorted({route_key(r) for r in server_app(server).router.routes()})
        assert len(routes) >= 30
        cookies = {user: await session_cookie(http, server, user) for user in ROLE_OF_USER}
        failures: list[str] = []
        for method, canonical in routes:
            rule = ACCESS[(method, canonical)]
            path = concrete_path(canonical)
            # Nobody
            status, body = await call(http, server, method, path, {})
            if rule.kind in ("roles", "signed_in") and status != 401:
                failures.append(f"{method} {path} anonymous: {status}")
            if rule.kind == "ingest" and status != 401:
                failures.append(f"{method} {path} anonymous ingest: {status}")
            for user, role in ROLE_OF_USER.items():
                # A bearer token
                status, body = await call(
                    http, server, method, path, {"Authorization": f"Bearer {server.tokens[user]}"}
                )
                if rule.kind == "ingest":
                    # A person's token is not an ingest credential.
                    if status != 401:
                        failures.append(f"{method} {path} as {user} (token) on ingest: {status}")
                    continue
                allowed = rule.allows(role)
                if allowed != passes_access(status, body):
                    failures.append(f"{method} {path} as {user} (token): {status} {body!r:.120}")
                if not allowed and rule.kind in ("roles", "signed_in"):
                    if (status, body.get("error", {}).get("code")) != (403, "role_forbidden"):
                        failures.append(f"{method} {path} as {user}: {status} {body!r:.120}")
                # A browser session without the CSRF token: state changes are refused.
                http.cookie_jar.clear()
                status, body = await call(
                    http, server, method, path, {"Cookie": f"live_session={cookies[user]}"}
                )
                if rule.kind in ("roles", "signed_in") and method not in ("GET", "HEAD"):
                    if (status, body.get("error", {}).get("code")) != (403, "csrf"):
                        failures.append(f"{method} {path} as {user} (cookie, no CSRF): {status} {body!r:.120}")
                elif allowed != passes_access(status, body):
                    failures.append(f"{method} {path} as {user} (cookie): {status} {body!r:.120}")
        assert not failures, "\n".join(failures)


def server_app(server: RunningServer) -> web.Application:
    assert server.app is not None
    return server.app


async def test_every_websocket_message_type_by_every_role(tmp_path: Path) -> None:
    async with matrix_server(tmp_path) as server, aiohttp.ClientSession() as http:
        ws_routes = {
            canonical
            for method, canonical in {route_key(r) for r in server_app(server).router.routes()}
            if ACCESS[(method, canonical)].websocket and ACCESS[(method, canonical)].kind != "ingest"
        }
        assert ws_routes == set(WS_MESSAGES)
        for canonical, messages in WS_MESSAGES.items():
            rule = ACCESS[("GET", canonical)]
            for user, role in ROLE_OF_USER.items():
                headers = {"Authorization": f"Bearer {server.tokens[user]}"}
                if not rule.allows(role):
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await http.ws_connect(f"{server.ws_url}{canonical}", headers=headers)
                    assert refused.value.status == 403
                    continue
                for kind, allowed_roles in messages.items():
                    async with http.ws_connect(f"{server.ws_url}{canonical}", headers=headers) as ws:
                        await ws.receive(timeout=5)  # the snapshot / monitoring state
                        await ws.send_json({"type": kind})
                        reply = await ws.receive(timeout=5)
                        if role in allowed_roles:
                            assert reply.type == WSMsgType.TEXT and json.loads(reply.data) == {"type": "pong"}
                        else:
                            assert reply.type == WSMsgType.CLOSE and reply.data == 4403
                # A message type the socket does not know closes it.
                async with http.ws_connect(f"{server.ws_url}{canonical}", headers=headers) as ws:
                    await ws.receive(timeout=5)
                    await ws.send_json({"type": "listen", "call_id": "CA-1"})
                    reply = await ws.receive(timeout=5)
                    assert reply.type == WSMsgType.CLOSE and reply.data == 4400


async def test_a_socket_stops_when_its_session_is_signed_out(tmp_path: Path) -> None:
    """The role and session are checked again for every message and while idle."""
    async with running_server(tmp_path) as server, aiohttp.ClientSession() as http:
        for user, canonical in (("sup", "/api/events"), ("agent", "/api/agent/events")):
            cookie = await session_cookie(http, server, user)
            http.cookie_jar.clear()
            headers = {"Cookie": f"live_session={cookie}", "Origin": server.base_url}
            async with http.ws_connect(f"{server.ws_url}{canonical}", headers=headers) as ws:
                await ws.receive(timeout=5)
                await ws.send_str('"ping"')
                assert json.loads((await ws.receive(timeout=5)).data) == {"type": "pong"}
                async with http.get(f"{server.base_url}/api/me", headers={"Cookie": f"live_session={cookie}"}) as me:
                    csrf = (await me.json())["csrf_token"]
                async with http.post(
                    f"{server.base_url}/auth/signout",
                    headers={"Cookie": f"live_session={cookie}", "X-CSRF-Token": csrf},
                ) as out:
                    assert out.status == 200 and (await out.json())["signed_out"] is True
                await ws.send_str('"ping"')
                reply = await ws.receive(timeout=5)
                assert reply.type == WSMsgType.CLOSE and reply.data == 4401, reply


async def test_an_idle_socket_is_closed_when_the_user_is_removed(tmp_path: Path) -> None:
    import live.server.api as api

    original = api.RECHECK_S
    api.RECHECK_S = 0.2
    try:
        async with running_server(tmp_path) as server, aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {server.tokens['sup2']}"}
            async with http.ws_connect(f"{server.ws_url}/api/events", headers=headers) as ws:
                await ws.receive(timeout=5)
                server.state.users.remove("sup2")
                reply = await asyncio.wait_for(ws.receive(), 5)
                assert reply.type == WSMsgType.CLOSE and reply.data == 4401
    finally:
        api.RECHECK_S = original
    assert "sup2" in PEOPLE

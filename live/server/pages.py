"""Sign-in routes and the static browser pages under ``web/``."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from ..errors import Unauthorized
from ..types import Role
from .api import read_json
from .errors import Handler
from .security import SESSION_COOKIE, identify
from .state import STATE

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
HOME_BY_ROLE = {Role.SUPERVISOR: "/console/", Role.AGENT: "/agent/", Role.AUDITOR: "/audit/", Role.ADMIN: "/console/"}


def _start_session(request: web.Request, response: web.StreamResponse, user_id: str) -> None:
    state = request.app[STATE]
    cookie, _session = state.sessions.issue(user_id, time.time())
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=state.settings.session_ttl_s,
        httponly=True,
        samesite="Strict",
        secure=request.secure or state.settings.public_url.startswith("https://"),
        path="/",
    )


async def sign_in_link(request: web.Request) -> web.StreamResponse:
    """``/auth/link?token=…``: a personal sign-in link (a fresh session every time)."""
    token = request.query.get("token", "")
    user = request.app[STATE].users.by_token(token) if token else None
    if user is None:
        raise web.HTTPFound("/signin/?error=bad_link")
    response = web.HTTPFound(HOME_BY_ROLE.get(user.role, "/"))
    _start_session(request, response, user.user_id)
    response.headers["Referrer-Policy"] = "no-referrer"
    raise response


async def sign_in(request: web.Request) -> web.Response:
    body = await read_json(request)
    user = request.app[STATE].users.by_password(str(body.get("user", "")), str(body.get("password", "")))
    if user is None:
        raise Unauthorized("wrong user or password", code="bad_credentials")
    response = web.json_response({"user_id": user.user_id, "home": HOME_BY_ROLE.get(user.role, "/")})
    _start_session(request, response, user.user_id)
    return response


async def sign_out(request: web.Request) -> web.Response:
    response = web.json_response({"signed_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / name / "index.html")


def _signed_in_page(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if identify(request) is None:
            raise web.HTTPFound("/signin/")
        return _page(name)

    return handler


async def signin_page(request: web.Request) -> web.StreamResponse:
    return _page("signin")


async def index_page(request: web.Request) -> web.StreamResponse:
    identity = identify(request)
    if identity is not None:
        raise web.HTTPFound(HOME_BY_ROLE.get(identity.role, "/signin/"))
    return web.FileResponse(WEB_ROOT / "index.html")


def setup(app: web.Application) -> None:
    app.router.add_get("/auth/link", sign_in_link)
    app.router.add_post("/auth/signin", sign_in)
    app.router.add_post("/auth/signout", sign_out)
    app.router.add_get("/", index_page)
    app.router.add_get("/signin/", signin_page)
    for folder in ("console", "agent", "audit"):
        if (WEB_ROOT / folder / "index.html").is_file():
            app.router.add_get(f"/{folder}/", _signed_in_page(folder))
    for folder in ("console", "signin", "shared", "agent", "audit"):
        if (WEB_ROOT / folder).is_dir():
            app.router.add_static(f"/{folder}/", WEB_ROOT / folder, show_index=False, follow_symlinks=False)

"""Sign-in routes and the static browser pages under ``web/``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aiohttp import web

from ..auth import Identity
from ..errors import Forbidden, Unauthorized
from ..auth.oidc import OidcClient, OidcSettings
from .oidc_routes import CALLBACK_PATH, setup_oidc_routes
from ..config import Settings
from ..types import Role
from .abuse import check_user_signin
from .api import read_json
from .errors import Handler
from .security import SESSION_COOKIE, check_origin, identify, require
from .state import STATE

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
HOME_BY_ROLE = {Role.SUPERVISOR: "/console/", Role.AGENT: "/agent/", Role.AUDITOR: "/audit/", Role.ADMIN: "/console/"}


async def start_session(
    request: web.Request, response: web.StreamResponse, user_id: str, identity: Identity | None = None
) -> None:
    """Sign the browser in on ``response`` with a brand-new session.

    Rotation: whatever session cookie the browser brought (a planted one included) is revoked
    and replaced, so a session id known before sign-in is worthless after it.
    """
    state = request.app[STATE]
    now = time.time()
    previous = state.sessions.read(request.cookies.get(SESSION_COOKIE, ""), now)
    if previous is not None:
        await state.revocations.revoke(previous.session_id, previous.expires_at)
    cookie, _session = state.sessions.issue(user_id, now, identity=identity)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=state.settings.session.ttl_s,
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
    await start_session(request, response, user.user_id)
    response.headers["Referrer-Policy"] = "no-referrer"
    raise response


async def sign_in_methods(request: web.Request) -> web.Response:
    """What the sign-in page offers: links and passwords always, OIDC when configured."""
    settings = request.app[STATE].settings
    return web.json_response({"link": True, "password": True, "oidc": bool(settings.oidc.issuer)})


async def sign_in(request: web.Request) -> web.Response:
    # A foreign page must not sign this browser into someone else's account (login CSRF).
    check_origin(request)
    body = await read_json(request)
    check_user_signin(request, str(body.get("user", ""))[:200])
    user = request.app[STATE].users.by_password(str(body.get("user", "")), str(body.get("password", "")))
    if user is None:
        raise Unauthorized("wrong user or password", code="bad_credentials")
    response = web.json_response({"user_id": user.user_id, "home": HOME_BY_ROLE.get(user.role, "/")})
    await start_session(request, response, user.user_id)
    return response


async def sign_out(request: web.Request) -> web.Response:
    """End this browser's session on the server (a copy of the cookie stops working too)."""
    require(request)
    state = request.app[STATE]
    session = state.sessions.read(request.cookies.get(SESSION_COOKIE, ""), time.time())
    if session is not None:
        await state.revocations.revoke(session.session_id, session.expires_at)
    response = web.json_response({"signed_out": session is not None})
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


def setup_oidc(app: web.Application, settings: Settings) -> None:
    """Mount ``/auth/oidc/login`` and ``/auth/oidc/callback`` when an issuer is configured."""
    if not settings.oidc.issuer:
        return
    redirect_uri = settings.oidc.redirect_uri or f"{settings.base_url}{CALLBACK_PATH}"
    oidc = OidcSettings(
        issuer=settings.oidc.issuer,
        client_id=settings.oidc.client_id,
        client_secret=settings.oidc.client_secret.get_secret_value(),
        redirect_uri=redirect_uri,
        role_claim=settings.oidc.role_claim,
        teams_claim=settings.oidc.teams_claim,
        role_map=settings.oidc.role_map,
        scopes=settings.oidc.scopes,
    )

    async def start_oidc_session(request: web.Request, response: web.StreamResponse, identity: Identity) -> None:
        # A provider's subject must never become a local user (who may hold another role).
        if identity.user_id in {u.user_id for u in request.app[STATE].users.list()}:
            log.warning("OIDC sign-in refused: the subject collides with a local user id")
            raise Forbidden("this account collides with a local user; ask an admin", code="oidc_user_collides")
        await start_session(request, response, identity.user_id, identity)

    setup_oidc_routes(
        app,
        OidcClient(oidc),
        start_oidc_session,
        redirect_uri,
        landing=lambda identity: HOME_BY_ROLE.get(identity.role, "/"),
        cookie_secret=settings.session.secret.get_secret_value() or None,
    )


def setup(app: web.Application) -> None:
    setup_oidc(app, app[STATE].settings)
    app.router.add_get("/auth/link", sign_in_link)
    app.router.add_post("/auth/signin", sign_in)
    app.router.add_get("/auth/methods", sign_in_methods)
    app.router.add_post("/auth/signout", sign_out)
    app.router.add_get("/", index_page)
    app.router.add_get("/signin/", signin_page)
    for folder in ("console", "agent", "audit"):
        if (WEB_ROOT / folder / "index.html").is_file():
            app.router.add_get(f"/{folder}/", _signed_in_page(folder))
    for folder in ("console", "signin", "shared", "agent", "audit"):
        if (WEB_ROOT / folder).is_dir():
            app.router.add_static(f"/{folder}/", WEB_ROOT / folder, show_index=False, follow_symlinks=False)

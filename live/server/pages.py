"""Sign-in routes and the static browser pages under ``web/``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..auth import Identity
from ..auth.oidc import OidcClient, OidcSettings
from ..config import Settings
from ..errors import Forbidden, Unauthorized
from ..types import Role
from .abuse import check_user_signin
from .bodies import answer
from .errors import Handler
from .oidc_routes import CALLBACK_PATH, install_oidc
from .route import PAGE, PUBLIC, SIGNED_IN, Entry, Param, Reply, Route, Static, takes
from .schemas import SignedIn, SignedOut, SignIn, SignInMethods
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
    return answer(SignInMethods(link=True, password=True, oidc=bool(settings.oidc.issuer)))


async def sign_in(request: web.Request, body: SignIn) -> web.Response:
    # The route checks the Origin first: a foreign page must not sign this browser into
    # someone else's account (login CSRF).
    await check_user_signin(request, body.user[:200])
    user = request.app[STATE].users.by_password(body.user, body.password)
    if user is None:
        raise Unauthorized("wrong user or password", code="bad_credentials")
    response = answer(SignedIn(user_id=user.user_id, home=HOME_BY_ROLE.get(user.role, "/")))
    await start_session(request, response, user.user_id)
    return response


async def sign_out(request: web.Request) -> web.Response:
    """End this browser's session on the server (a copy of the cookie stops working too)."""
    require(request)
    state = request.app[STATE]
    session = state.sessions.read(request.cookies.get(SESSION_COOKIE, ""), time.time())
    if session is not None:
        await state.revocations.revoke(session.session_id, session.expires_at)
    response = answer(SignedOut(signed_out=session is not None))
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

    install_oidc(
        app,
        OidcClient(oidc),
        start_oidc_session,
        redirect_uri,
        landing=lambda identity: HOME_BY_ROLE.get(identity.role, "/"),
        cookie_secret=settings.session.secret.get_secret_value() or None,
    )


def setup(app: web.Application) -> None:
    """OpenID Connect sign-in, when an issuer is configured."""
    setup_oidc(app, app[STATE].settings)


def _has_page(name: str) -> Callable[[web.Application], bool]:
    return lambda _app: (WEB_ROOT / name / "index.html").is_file()


ROUTES: tuple[Entry, ...] = (
    Route(
        method="GET",
        path="/auth/link",
        handler=sign_in_link,
        rule=PUBLIC,
        operation_id="signInLink",
        summary="Personal sign-in link: a fresh session cookie.",
        tag="auth",
        params=(Param("token", "The personal sign-in token."),),
        replies=(
            Reply(
                302,
                "To the role's home page with a session cookie, or to `/signin/?error=bad_link` for an unknown token.",
                headers={"Location": {"schema": {"type": "string"}}},
            ),
        ),
        limit="signin",
    ),
    Route(
        method="POST",
        path="/auth/signin",
        handler=takes(SignIn, sign_in),
        rule=PUBLIC,
        operation_id="signIn",
        summary="Sign in with a password: sets the session cookie.",
        tag="auth",
        description="403 `bad_origin` when a foreign page posts it (login CSRF).",
        replies=(
            Reply(200, "Signed in; `Set-Cookie: live_session=...` (HttpOnly, SameSite=Strict).", SignedIn),
        ),
        errors=(401, 403),
        limit="signin",
        checks=(check_origin,),
    ),
    Route(
        method="GET",
        path="/auth/methods",
        handler=sign_in_methods,
        rule=PUBLIC,
        operation_id="signInMethods",
        summary="What the sign-in page offers.",
        tag="auth",
        replies=(Reply(200, "OK", SignInMethods),),
    ),
    Route(
        method="POST",
        path="/auth/signout",
        handler=sign_out,
        rule=SIGNED_IN,
        operation_id="signOut",
        summary="End this browser's session on the server.",
        tag="auth",
        replies=(Reply(200, "The session cookie is cleared.", SignedOut),),
    ),
    Route(method="GET", path="/", handler=index_page, rule=PAGE),
    Route(method="GET", path="/signin/", handler=signin_page, rule=PUBLIC),
    *(
        Route(method="GET", path=f"/{name}/", handler=_signed_in_page(name), rule=PAGE, when=_has_page(name))
        for name in ("console", "agent", "audit")
    ),
    *(Static(f"/{name}", WEB_ROOT / name) for name in ("console", "signin", "shared", "agent", "audit")),
)

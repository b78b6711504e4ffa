"""The browser side of OpenID Connect sign-in: ``/auth/oidc/login`` and ``/auth/oidc/callback``.

The handlers keep the flow's secrets (state, nonce, PKCE verifier, where to go next) in a
short-lived signed cookie that only the callback path receives, drive ``OidcClient``
(``live.auth.oidc``) and hand the resulting ``Identity`` to the server's own
``start_session``; they do not know how sessions are stored. ``install_oidc`` gives an
application its ``OidcFlow``; the routes (``ROUTES``) are mounted only where one is installed.
"""

from __future__ import annotations

import hmac
import html
import inspect
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ..auth import Identity
from ..auth.oidc import OidcClient, identity_from_claims
from ..auth.tokens import SignedTokens
from ..errors import BadRequest, ConfigError, LiveError, Unauthorized
from .route import PUBLIC, Entry, Param, Reply, Route, mount

log = logging.getLogger(__name__)

LOGIN_PATH = "/auth/oidc/login"
CALLBACK_PATH = "/auth/oidc/callback"
STATE_COOKIE = "live_oidc"
STATE_TTL_S = 600  # the provider's login page must be finished within ten minutes


# --- browser routes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the callback needs from the login that started it; kept in the browser, signed."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    expires_at: float


class PendingLoginCodec:
    """``PendingLogin`` in a signed token of its own purpose: no session cookie opens as one."""

    def __init__(self, secret: str) -> None:
        self._tokens = SignedTokens(secret, "oidc-login")

    def seal(self, login: PendingLogin) -> str:
        fields = {
            "state": login.state,
            "nonce": login.nonce,
            "verifier": login.code_verifier,
            "next": login.next_path,
        }
        return self._tokens.seal(fields, login.expires_at)

    def open(self, cookie: str, now: float) -> PendingLogin | None:
        opened = self._tokens.open(cookie, now)
        if opened is None:
            return None
        fields = opened.fields
        values = [fields.get(name) for name in ("state", "nonce", "verifier", "next")]
        if not all(isinstance(value, str) for value in values):
            return None
        state, nonce, verifier, next_path = (str(value) for value in values)
        return PendingLogin(state, nonce, verifier, next_path, opened.expires_at)


def local_path(value: str | None) -> str:
    """``value`` if it is a path on this site (``/console/``), else ``""``: no open redirects."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return ""
    if any(ord(c) < 0x21 or c == "\\" for c in value):
        return ""
    return value


def _continue_page(location: str) -> web.Response:
    """A page that moves on to ``location`` by itself.

    Not a 302: the callback is reached by a cross-site redirect from the provider, and a
    redirect chain started cross-site would not carry a ``SameSite=Strict`` session cookie
    to the landing page. A navigation the page itself starts is same-site.
    """
    href = html.escape(location, quote=True)
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={href}"><title>Signed in</title></head>'
        f'<body><p>Signed in. <a href="{href}">Continue</a></p></body></html>'
    )
    response = web.Response(text=text, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


StartSession = Callable[[web.Request, web.StreamResponse, Identity], "Awaitable[None] | None"]
Landing = Callable[[Identity], str]


@dataclass(frozen=True, slots=True)
class OidcFlow:
    """One application's OpenID Connect sign-in: the client, and where the flow lands."""

    client: OidcClient
    start_session: StartSession
    redirect_uri: str
    landing: Landing
    codec: PendingLoginCodec
    cookie_path: str  # the login cookie goes only to the callback's folder (behind a prefix, if any)
    secure: bool


OIDC_FLOW: web.AppKey[OidcFlow] = web.AppKey("live_oidc_flow", OidcFlow)


def install_oidc(
    app: web.Application,
    client: OidcClient,
    start_session: StartSession,
    redirect_uri: str,
    *,
    landing: str | Landing = "/",
    cookie_secret: str | None = None,
) -> None:
    """Give ``app`` its OpenID Connect flow (``ROUTES`` are mounted where one is installed).

    ``redirect_uri`` is the callback's public URL as registered at the provider (it may sit
    behind a path prefix, but must end in ``/auth/oidc/callback``). ``start_session(request,
    response, identity)`` (sync or async) signs the browser in on ``response``. ``landing``
    is where a signed-in user goes when the login did not ask for ``?next=/path``.
    ``cookie_secret`` signs the in-flight login cookie; by default it is derived from the
    client secret, which every node of a cluster shares. The app owns ``client`` from now on
    and closes it on cleanup.
    """
    public_path = urllib.parse.urlsplit(redirect_uri).path
    if not public_path.endswith(CALLBACK_PATH):
        raise ConfigError(
            f"OIDC redirect URI must end in {CALLBACK_PATH}: {redirect_uri!r}",
            setting="oidc_redirect_uri",
        )
    app[OIDC_FLOW] = OidcFlow(
        client=client,
        start_session=start_session,
        redirect_uri=redirect_uri,
        landing=(lambda _identity: landing) if isinstance(landing, str) else landing,
        codec=PendingLoginCodec(cookie_secret or client.settings.client_secret),
        cookie_path=public_path[: -len("callback")],
        secure=redirect_uri.startswith("https://"),
    )

    async def close_client(_app: web.Application) -> None:
        await client.aclose()

    app.on_cleanup.append(close_client)


def setup_oidc_routes(
    app: web.Application,
    client: OidcClient,
    start_session: StartSession,
    redirect_uri: str,
    *,
    landing: str | Landing = "/",
    cookie_secret: str | None = None,
) -> None:
    """``install_oidc`` and mount ``ROUTES``: OpenID Connect sign-in on an application of
    one's own (the live server mounts its whole route table instead)."""
    install_oidc(app, client, start_session, redirect_uri, landing=landing, cookie_secret=cookie_secret)
    mount(app, ROUTES)


async def login(request: web.Request) -> web.StreamResponse:
    flow = request.app[OIDC_FLOW]
    auth = await flow.client.authorization_url(flow.redirect_uri)
    pending = PendingLogin(
        auth.state,
        auth.nonce,
        auth.code_verifier,
        local_path(request.query.get("next")),
        time.time() + STATE_TTL_S,
    )
    response = web.Response(status=302, headers={"Location": auth.url, "Cache-Control": "no-store"})
    response.set_cookie(
        STATE_COOKIE,
        flow.codec.seal(pending),
        max_age=STATE_TTL_S,
        path=flow.cookie_path,
        httponly=True,
        samesite="Lax",  # must come back on the provider's top-level redirect to us
        secure=flow.secure,
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    flow = request.app[OIDC_FLOW]
    client = flow.client
    query = request.query
    try:
        if "error" in query:
            # RFC 6749 section 4.1.2.1: the user declined, or the provider refused.
            raise Unauthorized(
                f"the provider did not sign you in: {query['error']} {query.get('error_description', '')}".strip(),
                code="oidc_provider_error",
                provider_error=query["error"],
            )
        pending = flow.codec.open(request.cookies.get(STATE_COOKIE, ""), time.time())
        if pending is None:
            raise Unauthorized(
                "sign-in expired or began in another browser; start again",
                code="oidc_missing_state",
            )
        if not hmac.compare_digest(query.get("state", "").encode(), pending.state.encode()):
            raise Unauthorized("sign-in state does not match", code="oidc_bad_state")
        metadata = await client.discover()
        iss = query.get("iss")
        if (iss is not None and iss != metadata.issuer) or (iss is None and metadata.iss_parameter_supported):
            raise Unauthorized("authorization response is from another issuer", code="oidc_bad_issuer")
        code = query.get("code", "")
        if not code:
            raise BadRequest("authorization response has no code", code="oidc_missing_code")
        tokens = await client.exchange(code, flow.redirect_uri, pending.code_verifier)
        claims = await client.validate_id_token(tokens.id_token, pending.nonce)
        identity = identity_from_claims(claims, client.settings.claim_mapping)
    except LiveError as exc:
        log.warning("OIDC sign-in refused: %s (%r)", exc.code, exc.message)
        raise
    log.info("OIDC sign-in: %s as %s", identity.user_id, identity.role.value)
    response = _continue_page(pending.next_path or flow.landing(identity))
    response.del_cookie(STATE_COOKIE, path=flow.cookie_path)
    started = flow.start_session(request, response, identity)
    if inspect.isawaitable(started):
        await started
    return response


def _installed(app: web.Application) -> bool:
    return OIDC_FLOW in app


ROUTES: tuple[Entry, ...] = (
    Route(
        method="GET",
        path=LOGIN_PATH,
        handler=login,
        rule=PUBLIC,
        operation_id="oidcLogin",
        summary="Start an OpenID Connect sign-in.",
        tag="auth",
        description="Mounted only when an OIDC issuer is configured.",
        params=(Param("next", "A local path to land on after sign-in."),),
        replies=(
            Reply(
                302,
                "To the provider's authorization endpoint.",
                headers={"Location": {"schema": {"type": "string"}}},
            ),
        ),
        errors=(503,),
        optional="oidc",
        when=_installed,
    ),
    Route(
        method="GET",
        path=CALLBACK_PATH,
        handler=callback,
        rule=PUBLIC,
        operation_id="oidcCallback",
        summary="The provider's redirect back (RFC 6749 4.1.2).",
        tag="auth",
        description="Mounted only when an OIDC issuer is configured.",
        params=(
            Param("code", "Authorization code."),
            Param("state", "The state sent with the login."),
            Param("iss", "The issuer (RFC 9207)."),
            Param("error", "The provider's error (RFC 6749 4.1.2.1)."),
            Param("error_description", "The provider's error text."),
        ),
        replies=(
            Reply(
                200,
                "Signed in: a page that moves on to the landing page by itself.",
                media={"text/html": {"type": "string"}},
            ),
        ),
        errors=(400, 401, 403, 503),
        optional="oidc",
        when=_installed,
    ),
)

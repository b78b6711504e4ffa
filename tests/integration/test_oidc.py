"""OpenID Connect sign-in against a real OpenID Provider (panva/oidc-provider on Node.js).

The provider (``tests/support/oidc_provider``) runs as a separate process; an aiohttp client
with a cookie jar plays the browser: it follows the redirects, fills the provider's login and
consent forms and ends signed in on a small aiohttp app that mounts ``setup_oidc_routes``.
Forged tokens (expired, wrong issuer, several audiences, rotated keys) come from an in-test
issuer whose keys and tokens are made with joserfc and whose discovery document and JWKS are
served by a local aiohttp app.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from live.auth import Identity, SessionCodec
from live.auth.oidc import (
    AuthorizationRequest,
    ClaimMapping,
    OidcClient,
    OidcSettings,
    TokenResponse,
    code_challenge,
    identity_from_claims,
)
from live.auth.tokens import b64url_decode as unb64
from live.auth.tokens import b64url_encode as b64
from live.errors import ConfigError, Forbidden, LiveError, ServiceUnavailable, Unauthorized
from live.server.errors import error_middleware
from live.server.oidc_routes import local_path, setup_oidc_routes
from live.types import Role
from tests.helpers import reserved_port
from tests.support.oidc_provider import OidcProvider, ProviderUnavailable, running_oidc_provider

SESSION_COOKIE = "live_session"
COOKIE_SECRET = "test-secret"  # signs sessions and the login state, as the server does


def error_code(exc: pytest.ExceptionInfo[LiveError]) -> str:
    return exc.value.code


# --- the provider and a small app using the routes -------------------------------------------


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    """A port held for this module's app (the provider must know its redirect URI first)."""
    with reserved_port() as held:
        yield held.getsockname()[1]


@pytest.fixture(scope="module")
def provider(app_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    redirect_uri = f"http://127.0.0.1:{app_port}/auth/oidc/callback"
    try:
        with running_oidc_provider(redirect_uri, tmp_path_factory.mktemp("oidc")) as running:
            yield running
    except ProviderUnavailable as exc:
        pytest.fail(f"the OIDC test provider needs node and npm (deploy/run-tests.sh): {exc}")


def settings_for(
    provider: OidcProvider, client_id: str = "live-test", **overrides: Any
) -> OidcSettings:
    return OidcSettings(
        issuer=provider.issuer,
        client_id=client_id,
        client_secret=provider.secret(client_id),
        redirect_uri=provider.redirect_uri,
        scopes=("openid", "profile", "live"),
        **overrides,
    )


@contextlib.asynccontextmanager
async def live_app(port: int, settings: OidcSettings) -> AsyncIterator[str]:
    """An aiohttp app with the OIDC routes, a cookie session and ``/whoami``, on ``port``."""
    app = web.Application(middlewares=[error_middleware])
    sessions = SessionCodec(COOKIE_SECRET, 3600)
    people: dict[str, Identity] = {}

    def start_session(
        request: web.Request, response: web.StreamResponse, identity: Identity
    ) -> None:
        people[identity.user_id] = identity
        cookie, _ = sessions.issue(identity.user_id, time.time())
        response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="Strict", path="/")

    async def whoami(request: web.Request) -> web.Response:
        session = sessions.read(request.cookies.get(SESSION_COOKIE, ""), time.time())
        if session is None:
            raise Unauthorized("sign in first", code="signed_out")
        identity = people[session.user_id]
        return web.json_response({**identity.to_json(), "via": identity.via})

    app.router.add_get("/whoami", whoami)
    app.router.add_get("/console/", whoami)
    setup_oidc_routes(
        app,
        OidcClient(settings),
        start_session,
        settings.redirect_uri,
        landing="/whoami",
        cookie_secret=COOKIE_SECRET,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: keep cookies for an IP host (127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


@dataclass
class Page:
    status: int
    url: str
    text: str = ""
    steps: list[str] = field(default_factory=list)


async def browse(
    http: aiohttp.ClientSession,
    url: str,
    provider: OidcProvider,
    *,
    login: str,
    stop_at: str | None = None,
) -> Page:
    """Follow redirects like a browser and fill the provider's login and consent forms.

    Returns the first page that is not a redirect or a provider form, or, with ``stop_at``,
    the first URL starting with it (not requested: the test takes the code from it).
    """
    method, data, steps = "GET", None, list[str]()
    for _ in range(20):
        if stop_at is not None and url.startswith(stop_at):
            return Page(0, url, steps=steps)
        steps.append(f"{method} {url}")
        async with http.request(method, url, data=data, allow_redirects=False) as response:
            text = await response.text()
            if response.status in (301, 302, 303, 307, 308):
                url, method, data = urljoin(url, response.headers["Location"]), "GET", None
                continue
            if response.status == 200 and url.startswith(provider.issuer) and "<form" in text:
                form = _Form()
                form.feed(text)
                assert form.action is not None
                data = (
                    {**form.fields, "login": login, "password": "any"}
                    if "login" in form.fields
                    else form.fields
                )
                url, method = urljoin(url, form.action), "POST"
                continue
            return Page(response.status, url, text, steps)
    raise AssertionError(f"too many steps: {steps}")


async def real_tokens(
    provider: OidcProvider, client: OidcClient, login: str = "sam"
) -> tuple[TokenResponse, AuthorizationRequest]:
    """A real sign-in at the provider; the code is exchanged directly by ``client``."""
    auth = await client.authorization_url(provider.redirect_uri)
    async with browser() as http:
        page = await browse(http, auth.url, provider, login=login, stop_at=provider.redirect_uri)
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == [auth.state], page
    assert query["iss"] == [provider.issuer]  # RFC 9207
    tokens = await client.exchange(query["code"][0], provider.redirect_uri, auth.code_verifier)
    return tokens, auth


# --- full flow through the routes ------------------------------------------------------------


async def test_supervisor_signs_in_end_to_end(provider: OidcProvider, app_port: int) -> None:
    async with live_app(app_port, settings_for(provider)) as base, browser() as http:
        page = await browse(http, f"{base}/auth/oidc/login?next=/console/", provider, login="sam")
        assert page.status == 200, (page, provider.log())
        assert page.url.startswith(f"{base}/auth/oidc/callback?code=")
        assert (
            'content="0;url=/console/"' in page.text
        )  # a same-site hop to where the user was going
        assert any(
            "/interaction/" in step for step in page.steps
        )  # really went through the login form
        cookies = {c.key: c for c in http.cookie_jar}
        assert SESSION_COOKIE in cookies and "live_oidc" not in cookies  # login state used up
        async with http.get(f"{base}/console/") as response:
            assert response.status == 200
            assert await response.json() == {
                "user_id": "sam",
                "display_name": "Sam Supervisor",
                "role": "supervisor",
                "teams": ["billing", "sales"],
                "via": "session",
            }


async def test_group_claim_maps_to_role_and_unmapped_user_is_refused(
    provider: OidcProvider, app_port: int
) -> None:
    settings = settings_for(
        provider,
        role_claim="groups",
        role_map={"qa-supervisors": "supervisor", "works-council": "auditor"},
    )
    async with live_app(app_port, settings) as base:
        async with browser() as http:
            page = await browse(http, f"{base}/auth/oidc/login", provider, login="dana")
            assert page.status == 200 and "url=/whoami" in page.text
            async with http.get(f"{base}/whoami") as response:
                assert (await response.json())["role"] == "auditor"
        async with browser() as http:
            page = await browse(http, f"{base}/auth/oidc/login", provider, login="nora")
            assert page.status == 403
            assert json.loads(page.text)["error"]["code"] == "oidc_no_role"
            assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}
            async with http.get(f"{base}/whoami") as response:
                assert response.status == 401


async def test_login_redirect_carries_pkce_state_nonce_and_a_lax_cookie(
    provider: OidcProvider, app_port: int
) -> None:
    async with live_app(app_port, settings_for(provider)) as base, browser() as http:
        async with http.get(
            f"{base}/auth/oidc/login?next=//evil.example/", allow_redirects=False
        ) as response:
            assert response.status == 302
            location = urlsplit(response.headers["Location"])
            cookie_header = response.headers["Set-Cookie"]
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert f"{location.scheme}://{location.netloc}" == provider.issuer
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["response_type"] == "code" and query["client_id"] == "live-test"
        assert (
            len(query["state"]) >= 43
            and len(query["nonce"]) >= 43
            and query["state"] != query["nonce"]
        )
        assert (
            "HttpOnly" in cookie_header
            and "SameSite=Lax" in cookie_header
            and "Path=/auth/oidc/" in cookie_header
        )
        assert query["state"] not in cookie_header  # signed but opaque enough: not the plain value
        # The open redirect in ?next= was dropped: the user lands on the default page.
        page = await browse(http, response.headers["Location"], provider, login="sam")
        assert page.status == 200 and "url=/whoami" in page.text and "evil" not in page.text


async def test_callback_refuses_missing_or_wrong_state_and_provider_errors(
    provider: OidcProvider, app_port: int
) -> None:
    async with live_app(app_port, settings_for(provider)) as base, browser() as http:
        async with http.get(f"{base}/auth/oidc/callback?code=abc&state=xyz") as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "oidc_missing_state"
        # A session cookie signed with the same secret is no login state (purpose binding).
        session_cookie, _ = SessionCodec(COOKIE_SECRET, 3600).issue("sam", time.time())
        async with http.get(
            f"{base}/auth/oidc/callback?code=abc&state=xyz",
            headers={"Cookie": f"live_oidc={session_cookie}"},
        ) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "oidc_missing_state"
        async with http.get(f"{base}/auth/oidc/login", allow_redirects=False) as response:
            assert response.status == 302
        async with http.get(f"{base}/auth/oidc/callback?code=abc&state=not-the-state") as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "oidc_bad_state"
        async with http.get(f"{base}/auth/oidc/callback?error=access_denied&state=x") as response:
            assert response.status == 401
            body = await response.json()
            assert body["error"]["code"] == "oidc_provider_error"
            assert body["error"]["provider_error"] == "access_denied"


async def test_user_who_aborts_at_the_provider_is_not_signed_in(
    provider: OidcProvider, app_port: int
) -> None:
    async with live_app(app_port, settings_for(provider)) as base, browser() as http:
        async with http.get(
            f"{base}/auth/oidc/login"
        ) as response:  # lands on the provider's login form
            assert response.status == 200 and "/interaction/" in str(response.url)
            abort = f"{str(response.url).rstrip('/')}/abort"
        async with http.get(abort) as response:  # the provider sends the browser back with an error
            assert response.status == 401
            assert (await response.json())["error"]["provider_error"] == "access_denied"
        assert SESSION_COOKIE not in {c.key for c in http.cookie_jar}


# --- real tokens, checked and tampered with --------------------------------------------------


async def test_real_id_token_validates_and_tampering_is_caught(provider: OidcProvider) -> None:
    async with OidcClient(settings_for(provider)) as client:
        tokens, auth = await real_tokens(provider, client)
        claims = await client.validate_id_token(tokens.id_token, auth.nonce)
        assert (
            claims["sub"] == "sam"
            and claims["live_role"] == "supervisor"
            and claims["aud"] == "live-test"
        )
        header, payload, signature = tokens.id_token.split(".")
        assert json.loads(unb64(header))["alg"] == "RS256"

        flipped = bytearray(unb64(signature))
        flipped[17] ^= 0x01
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(f"{header}.{payload}.{b64(bytes(flipped))}", auth.nonce)
        assert error_code(exc) == "oidc_bad_signature"

        promoted = json.loads(unb64(payload)) | {"live_role": "admin"}
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(
                f"{header}.{b64(json.dumps(promoted).encode())}.{signature}", auth.nonce
            )
        assert error_code(exc) == "oidc_bad_signature"

        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(tokens.id_token, "another-sign-in's-nonce")
        assert error_code(exc) == "oidc_bad_nonce"


async def test_alg_none_and_hmac_key_confusion_are_refused(provider: OidcProvider) -> None:
    async with OidcClient(settings_for(provider)) as client:
        tokens, auth = await real_tokens(provider, client)
        header, payload, _signature = tokens.id_token.split(".")
        kid = json.loads(unb64(header))["kid"]
        for alg in ("none", "None", "NONE"):
            unsigned = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
            with pytest.raises(Unauthorized) as exc:
                await client.validate_id_token(f"{unsigned}.{payload}.", auth.nonce)
            assert error_code(exc) == "oidc_unsupported_alg"
        # HS256 "signed" with the provider's public key: anyone could make this token. The
        # library refuses a PEM public key as an HMAC secret; the published JWK's text stands
        # in for it.
        async with aiohttp.ClientSession() as http, http.get(f"{provider.issuer}/jwks") as response:
            jwk = next(k for k in (await response.json())["keys"] if k["kid"] == kid)
        confused = OctKey.import_key(json.dumps(jwk).encode())
        claims = json.loads(unb64(payload))
        forged = jwt.encode({"alg": "HS256", "kid": kid}, claims, confused, algorithms=["HS256"])
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(forged, auth.nonce)
        assert error_code(exc) == "oidc_unsupported_alg"


async def test_token_for_another_client_is_refused(provider: OidcProvider) -> None:
    async with (
        OidcClient(settings_for(provider)) as ours,
        OidcClient(settings_for(provider, "other-app")) as theirs,
    ):
        tokens, auth = await real_tokens(provider, theirs)
        assert (await theirs.validate_id_token(tokens.id_token, auth.nonce))["aud"] == "other-app"
        with pytest.raises(Unauthorized) as exc:
            await ours.validate_id_token(tokens.id_token, auth.nonce)
        assert error_code(exc) == "oidc_wrong_audience"


async def test_es256_tokens_from_the_provider_validate(provider: OidcProvider) -> None:
    async with OidcClient(settings_for(provider, "live-test-es256")) as client:
        tokens, auth = await real_tokens(provider, client, login="alex")
        assert json.loads(unb64(tokens.id_token.split(".")[0]))["alg"] == "ES256"
        claims = await client.validate_id_token(tokens.id_token, auth.nonce)
        identity = identity_from_claims(claims, client.settings.claim_mapping)
        assert (identity.user_id, identity.role, identity.teams) == (
            "alex",
            Role.AGENT,
            ("billing",),
        )


async def test_provider_enforces_pkce_and_single_use_codes(provider: OidcProvider) -> None:
    async with OidcClient(settings_for(provider)) as client:
        auth = await client.authorization_url(provider.redirect_uri)
        async with browser() as http:
            page = await browse(
                http, auth.url, provider, login="sam", stop_at=provider.redirect_uri
            )
        code = parse_qs(urlsplit(page.url).query)["code"][0]
        with pytest.raises(Unauthorized) as exc:
            await client.exchange(
                code, provider.redirect_uri, "x" * 64
            )  # not this login's verifier
        assert (
            error_code(exc) == "oidc_token_error"
            and exc.value.fields["provider_error"] == "invalid_grant"
        )
        # The right verifier works once; replaying the code is refused (RFC 6749 4.1.2).
        tokens = await client.exchange(code, provider.redirect_uri, auth.code_verifier)
        await client.validate_id_token(tokens.id_token, auth.nonce)
        with pytest.raises(Unauthorized) as exc:
            await client.exchange(code, provider.redirect_uri, auth.code_verifier)
        assert exc.value.fields["provider_error"] == "invalid_grant"


async def test_wrong_client_secret_is_a_token_error(provider: OidcProvider) -> None:
    settings = settings_for(provider)
    wrong = OidcSettings(**{**_fields(settings), "client_secret": "not-the-secret"})
    async with OidcClient(settings) as right, OidcClient(wrong) as client:
        auth = await client.authorization_url(provider.redirect_uri)
        async with browser() as http:
            page = await browse(
                http, auth.url, provider, login="sam", stop_at=provider.redirect_uri
            )
        code = parse_qs(urlsplit(page.url).query)["code"][0]
        with pytest.raises(Unauthorized) as exc:
            await client.exchange(code, provider.redirect_uri, auth.code_verifier)
        assert exc.value.fields["provider_error"] == "invalid_client"
        assert right.settings.client_secret != wrong.client_secret


def _fields(settings: OidcSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in OidcSettings.__dataclass_fields__}


# --- forged tokens from an in-test issuer ----------------------------------------------------


@dataclass
class Forger:
    """An issuer we control: keys and tokens made with joserfc, discovery and JWKS served by
    a local app."""

    issuer: str = ""
    private: dict[str, RSAKey | ECKey | OKPKey] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0
    advertised_issuer: str | None = None

    def add_key(self, kid: str, kind: str = "rsa", *, publish: bool = True) -> None:
        key: RSAKey | ECKey | OKPKey
        if kind == "rsa":
            key = RSAKey.generate_key(2048)
        elif kind == "ec":
            key = ECKey.generate_key("P-256")
        else:
            key = OKPKey.generate_key("Ed25519")
        self.private[kid] = key
        if publish:
            self.published.append({**key.as_dict(private=False), "kid": kid, "use": "sig"})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.issuer,
            "aud": "live-test",
            "sub": "sam",
            "iat": now,
            "exp": now + 300,
            "nonce": "n-1",
        }
        return {**base, "live_role": "supervisor", **overrides}

    def sign(self, claims: dict[str, Any], kid: str) -> str:
        key = self.private[kid]
        alg = {"RSA": "RS256", "EC": "ES256", "OKP": "Ed25519"}[key.key_type]
        return jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg])


@pytest.fixture
async def forger() -> AsyncIterator[Forger]:
    forger = Forger()

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": forger.advertised_issuer or forger.issuer,
                "authorization_endpoint": f"{forger.issuer}/auth",
                "token_endpoint": f"{forger.issuer}/token",
                "jwks_uri": f"{forger.issuer}/jwks",
            }
        )

    async def jwks(request: web.Request) -> web.Response:
        forger.jwks_fetches += 1
        return web.json_response({"keys": forger.published})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        forger.issuer = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield forger
    finally:
        await runner.cleanup()


def forged_settings(forger: Forger) -> OidcSettings:
    return OidcSettings(
        forger.issuer, "live-test", "s3cret", "http://127.0.0.1:9/auth/oidc/callback"
    )


async def test_forged_tokens_rs256_es256_eddsa_validate(forger: Forger) -> None:
    for kid, kind in (("r1", "rsa"), ("e1", "ec"), ("o1", "okp")):
        forger.add_key(kid, kind)
    async with OidcClient(forged_settings(forger)) as client:
        for kid in ("r1", "e1", "o1"):
            claims = await client.validate_id_token(forger.sign(forger.claims(), kid), "n-1")
            assert claims["sub"] == "sam"
        assert forger.jwks_fetches == 1  # cached


async def test_expiry_and_not_before_with_leeway(forger: Forger) -> None:
    forger.add_key("k1")
    now = int(time.time())
    async with OidcClient(forged_settings(forger)) as client:  # leeway 60 s
        await client.validate_id_token(forger.sign(forger.claims(exp=now - 30), "k1"), "n-1")
        cases = {
            "oidc_expired": forger.claims(iat=now - 900, exp=now - 120),
            "oidc_not_yet_valid": forger.claims(nbf=now + 600),
        }
        cases_iat = forger.claims(iat=now + 600, exp=now + 900)
        for code, claims in [*cases.items(), ("oidc_not_yet_valid", cases_iat)]:
            with pytest.raises(Unauthorized) as exc:
                await client.validate_id_token(forger.sign(claims, "k1"), "n-1")
            assert error_code(exc) == code
        without_exp = {k: v for k, v in forger.claims().items() if k != "exp"}
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(forger.sign(without_exp, "k1"), "n-1")
        assert error_code(exc) == "oidc_malformed_token"


async def test_issuer_and_audience_rules(forger: Forger) -> None:
    forger.add_key("k1")
    async with OidcClient(forged_settings(forger)) as client:
        refused = {
            "oidc_bad_issuer": forger.claims(iss="https://evil.example"),
            "oidc_wrong_audience": forger.claims(aud=["other-app", "live-test"]),  # several, no azp
        }
        refused_azp = forger.claims(aud=["live-test", "other-app"], azp="other-app")
        for code, claims in [*refused.items(), ("oidc_wrong_audience", refused_azp)]:
            with pytest.raises(Unauthorized) as exc:
                await client.validate_id_token(forger.sign(claims, "k1"), "n-1")
            assert error_code(exc) == code
        ok = forger.claims(aud=["other-app", "live-test"], azp="live-test")
        assert (await client.validate_id_token(forger.sign(ok, "k1"), "n-1"))["azp"] == "live-test"


async def test_discovery_must_name_the_configured_issuer(forger: Forger) -> None:
    forger.advertised_issuer = "https://someone-else.example"
    async with OidcClient(forged_settings(forger)) as client:
        with pytest.raises(Unauthorized) as exc:
            await client.discover()
        assert error_code(exc) == "oidc_bad_issuer"


async def test_unknown_kid_refetches_keys_but_not_on_every_request(forger: Forger) -> None:
    forger.add_key("old")
    clock = [time.time()]
    settings = forged_settings(forger)
    async with OidcClient(settings, jwks_refetch_interval_s=30, clock=lambda: clock[0]) as client:
        await client.validate_id_token(forger.sign(forger.claims(iat=int(clock[0])), "old"), "n-1")
        assert forger.jwks_fetches == 1
        forger.add_key("new")  # the provider rotates: the new key is published, tokens use it
        clock[0] += 31
        claims = forger.claims(iat=int(clock[0]), exp=int(clock[0]) + 300)
        await client.validate_id_token(forger.sign(claims, "new"), "n-1")
        assert forger.jwks_fetches == 2
        # A token naming a key nobody published: one refetch at most per interval.
        forger.add_key("ghost", publish=False)
        for _ in range(5):
            with pytest.raises(Unauthorized) as exc:
                await client.validate_id_token(forger.sign(claims, "ghost"), "n-1")
            assert error_code(exc) == "oidc_unknown_key"
        assert forger.jwks_fetches == 2
        # Someone else's key under a published kid: a bad signature, not an unknown key.
        forger.private["new"] = RSAKey.generate_key(2048)
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(forger.sign(claims, "new"), "n-1")
        assert error_code(exc) == "oidc_bad_signature"


async def test_withdrawn_key_stops_working_once_the_cache_is_old(forger: Forger) -> None:
    forger.add_key("k1")
    clock = [time.time()]
    async with OidcClient(
        forged_settings(forger), jwks_max_age_s=600, clock=lambda: clock[0]
    ) as client:
        await client.validate_id_token(forger.sign(forger.claims(), "k1"), "n-1")
        forger.published.clear()
        clock[0] += 601
        claims = forger.claims(iat=int(clock[0]), exp=int(clock[0]) + 300)
        with pytest.raises(Unauthorized) as exc:
            await client.validate_id_token(forger.sign(claims, "k1"), "n-1")
        assert error_code(exc) == "oidc_unknown_key"


async def test_unreachable_provider_is_503() -> None:
    with reserved_port() as held:  # ours, and nothing listens on it: connections are refused
        settings = OidcSettings(
            f"http://127.0.0.1:{held.getsockname()[1]}",
            "live-test",
            "s",
            "http://127.0.0.1:9/auth/oidc/callback",
        )
        async with OidcClient(settings, timeout_s=2) as client:
            with pytest.raises(ServiceUnavailable) as exc:
                await client.authorization_url(settings.redirect_uri)
        assert exc.value.status == 503 and exc.value.code == "oidc_provider_unavailable"


# --- pure parts --------------------------------------------------------------------------


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_identity_from_claims() -> None:
    direct = ClaimMapping()
    identity = identity_from_claims(
        {"sub": "u1", "name": "U One", "live_role": "auditor", "live_teams": "t1"}, direct
    )
    assert identity == Identity("u1", "U One", Role.AUDITOR, ("t1",), via="session")
    assert (
        identity_from_claims({"sub": "u2", "live_role": ["nonsense", "agent"]}, direct).role
        is Role.AGENT
    )
    assert (
        identity_from_claims(
            {"sub": "u2", "preferred_username": "u.two", "live_role": "agent"}, direct
        ).display_name
        == "u.two"
    )
    mapped = ClaimMapping(
        role_claim="groups", role_map=(("live-admins", Role.ADMIN), ("qa", Role.SUPERVISOR))
    )
    # The map's order decides between several matching groups.
    assert (
        identity_from_claims({"sub": "u3", "groups": ["qa", "live-admins"]}, mapped).role
        is Role.ADMIN
    )
    # With a map, a group literally named like a role does not count.
    for claims in (
        {"sub": "u4", "groups": ["supervisor"]},
        {"sub": "u4"},
        {"sub": "u4", "groups": 7},
    ):
        with pytest.raises(Forbidden) as exc:
            identity_from_claims(claims, mapped)
        assert exc.value.status == 403 and exc.value.code == "oidc_no_role"
    with pytest.raises(Unauthorized):
        identity_from_claims({"live_role": "agent"}, direct)


def test_settings_are_checked_when_made() -> None:
    good: dict[str, Any] = {
        "issuer": "https://id.example",
        "client_id": "c",
        "client_secret": "s",
        "redirect_uri": "https://live.example/auth/oidc/callback",
    }
    assert OidcSettings(**good, role_map={"g": "supervisor"}).claim_mapping.role_map == (
        ("g", Role.SUPERVISOR),
    )
    for bad in (
        {"issuer": "http://id.example"},  # plain http off this machine
        {"role_map": {"g": "overlord"}},
        {"client_secret": ""},
        {"scopes": ("profile",)},
        {"redirect_uri": "/auth/oidc/callback"},
        {"leeway_s": 301},  # clock skew is bounded to a few minutes
        {"leeway_s": -1},
    ):
        with pytest.raises(ConfigError):
            OidcSettings(**(good | bad))
    assert (
        OidcSettings(**(good | {"issuer": "http://127.0.0.1:4000"})).issuer
        == "http://127.0.0.1:4000"
    )


def test_next_path_is_local_only() -> None:
    assert local_path("/console/?call=1") == "/console/?call=1"
    for bad in (
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "console",
        "/a b",
        None,
        "",
    ):
        assert local_path(bad) == ""


def test_setup_refuses_a_redirect_uri_that_is_not_the_callback(tmp_path: Path) -> None:
    settings = OidcSettings(
        "https://id.example", "c", "s", "https://live.example/auth/oidc/callback"
    )
    with pytest.raises(ConfigError):
        setup_oidc_routes(
            web.Application(), OidcClient(settings), lambda *a: None, "https://live.example/oidc/cb"
        )

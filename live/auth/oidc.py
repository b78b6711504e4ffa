"""OpenID Connect sign-in: the authorization code flow with PKCE, for a confidential client.

What it follows, and where:

- OpenID Connect Discovery 1.0 section 4: metadata from ``{issuer}/.well-known/openid-configuration``;
  its ``issuer`` must be identical to the configured one (section 4.3).
- OpenID Connect Core 1.0 section 3.1.2.1 and RFC 7636: the authorization request carries a
  random ``state`` (CSRF, RFC 6749 section 10.12), a random ``nonce`` (replay, Core 15.5.2)
  and an S256 ``code_challenge``; the ``plain`` method is never used.
- RFC 9207: if the provider puts ``iss`` in the authorization response it must be ours, and
  if it advertises that it does, a response without it is refused (mix-up defence).
- Core 3.1.3.1-3.1.3.3: the code is exchanged at the token endpoint with
  ``client_secret_basic`` (or ``client_secret_post`` if that is all the provider offers).
- Core 3.1.3.7 (checked by ``live.auth.id_token``): the ID token's signature (keys from
  ``jwks_uri``, refetched once when a token names an unknown ``kid``: providers rotate keys),
  ``iss``, ``aud``/``azp``, ``exp``/``iat``/``nbf`` (with a small, bounded leeway for clock
  skew) and ``nonce``.

Who gets in is decided by ``identity_from_claims``: a role from one claim (directly, or via a
configured map of claim values such as group names), teams from another; no role, no entry
(403). The browser routes that drive the flow are in ``live.server.oidc_routes``.

Failures are ``Unauthorized`` (401) with an ``oidc_*`` code, ``Forbidden`` (403,
``oidc_no_role``) for a valid user without a role, and ``ServiceUnavailable`` (503) when the
provider cannot be reached or answers nonsense.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

import aiohttp
from yarl import URL

from ..errors import ConfigError, Forbidden, ServiceUnavailable, Unauthorized
from ..types import Role
from .id_token import IdTokenVerifier
from .identity import Identity
from .jwt import MAX_LEEWAY_S
from .tokens import b64url_encode

MAX_DOCUMENT_BYTES = 512 * 1024  # discovery, JWKS and token responses are a few kB


# --- settings and claim mapping -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """How ID token claims become an ``Identity``.

    ``role_claim`` holds a string or a list of strings. Without ``role_map`` its values must be
    role names (``supervisor``, ...). With ``role_map`` (pairs of claim value and role, e.g.
    ``("qa-supervisors", Role.SUPERVISOR)``) only mapped values count, and the first pair that
    matches wins: order the map from the role that should prevail.
    """

    role_claim: str = "live_role"
    teams_claim: str = "live_teams"
    role_map: tuple[tuple[str, Role], ...] = ()
    user_claim: str = "sub"
    name_claim: str = "name"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """One OpenID Provider and this server's registration with it."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)  # never in a log line
    redirect_uri: str
    role_claim: str = "live_role"
    teams_claim: str = "live_teams"
    role_map: Mapping[str, str] = field(default_factory=dict)  # claim value -> role name
    scopes: tuple[str, ...] = ("openid", "profile")
    leeway_s: int = 60

    def __post_init__(self) -> None:
        issuer = urllib.parse.urlsplit(self.issuer)
        # Discovery 1.0 section 3: the issuer is an https URL. Plain http only for a provider
        # on this machine (tests, a local dev provider).
        if issuer.scheme != "https" and not (
            issuer.scheme == "http" and _is_loopback(issuer.hostname or "")
        ):
            raise ConfigError(
                f"OIDC issuer must be an https URL: {self.issuer!r}", setting="oidc_issuer"
            )
        if issuer.query or issuer.fragment:
            raise ConfigError("OIDC issuer has no query or fragment", setting="oidc_issuer")
        if not self.client_id or not self.client_secret:
            raise ConfigError(
                "OIDC needs a client id and a client secret", setting="oidc_client_id"
            )
        redirect = urllib.parse.urlsplit(self.redirect_uri)
        if redirect.scheme not in ("https", "http") or not redirect.netloc:
            raise ConfigError(
                f"OIDC redirect URI must be absolute: {self.redirect_uri!r}",
                setting="oidc_redirect_uri",
            )
        if not 0 <= self.leeway_s <= MAX_LEEWAY_S:
            raise ConfigError(f"OIDC clock leeway must be 0..{MAX_LEEWAY_S} s, not {self.leeway_s}")
        if "openid" not in self.scopes:
            raise ConfigError("OIDC scopes must include 'openid'", setting="oidc_scopes")
        _ = self.claim_mapping  # validates role_map now, not at the first sign-in

    @property
    def claim_mapping(self) -> ClaimMapping:
        pairs = []
        for value, role in self.role_map.items():
            try:
                pairs.append((str(value), Role(role)))
            except ValueError:
                raise ConfigError(
                    f"OIDC role map: {role!r} is not a role", setting="oidc_role_map"
                ) from None
        return ClaimMapping(self.role_claim, self.teams_claim, tuple(pairs))


def _strings(value: object) -> list[str]:
    """A claim that may be one string or a list of strings, as a list (other types ignored)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def identity_from_claims(claims: Mapping[str, Any], mapping: ClaimMapping) -> Identity:
    """The ``Identity`` validated claims stand for; ``Forbidden`` (``oidc_no_role``) if none."""
    user_id = claims.get(mapping.user_claim)
    if not isinstance(user_id, str) or not user_id:
        raise Unauthorized(
            f"ID token has no {mapping.user_claim!r} claim", code="oidc_missing_claim"
        )
    values = _strings(claims.get(mapping.role_claim))
    role: Role | None = None
    if mapping.role_map:
        role = next((r for value, r in mapping.role_map if value in values), None)
    else:
        role = next((Role(v) for v in values if v in Role._value2member_map_), None)
    if role is None:
        raise Forbidden(
            f"{user_id} signed in, but their {mapping.role_claim!r} claim gives no role here",
            code="oidc_no_role",
        )
    name = claims.get(mapping.name_claim) or claims.get("preferred_username") or user_id
    teams = tuple(dict.fromkeys(_strings(claims.get(mapping.teams_claim))))
    # via="session": the sign-in ends in a cookie session, and cookie sessions are what the
    # server's CSRF check applies to (a new "via" value would slip past it).
    return Identity(user_id, str(name), role, teams, via="session")


# --- the provider ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_endpoint_auth_methods: tuple[str, ...] = ("client_secret_basic",)
    iss_parameter_supported: bool = False

    @classmethod
    def from_json(cls, document: Any, expected_issuer: str) -> ProviderMetadata:
        if not isinstance(document, dict):
            raise TypeError("discovery document is not a JSON object")
        if document.get("issuer") != expected_issuer:
            raise Unauthorized(
                f"provider calls itself {document.get('issuer')!r}, configured issuer is {expected_issuer!r}",
                code="oidc_bad_issuer",
            )
        endpoints = {
            name: document.get(name)
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        }
        for name, url in endpoints.items():
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ValueError(f"discovery document has no usable {name}")
        methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        return cls(
            issuer=expected_issuer,
            authorization_endpoint=str(endpoints["authorization_endpoint"]),
            token_endpoint=str(endpoints["token_endpoint"]),
            jwks_uri=str(endpoints["jwks_uri"]),
            token_endpoint_auth_methods=tuple(_strings(methods)),
            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
            is True,
        )


class AuthorizationRequest(NamedTuple):
    """Where to send the browser, and the secrets to keep until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class TokenResponse:
    id_token: str
    access_token: str
    token_type: str
    expires_in: int | None
    raw: Mapping[str, Any]


def code_challenge(code_verifier: str) -> str:
    """RFC 7636 section 4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``."""
    return b64url_encode(hashlib.sha256(code_verifier.encode("ascii")).digest())


class OidcClient:
    """A relying party for one OpenID Provider.

    Discovery and the JWKS are fetched on first use and cached. Keys are refetched when a
    token names a key we do not have (at most once per ``jwks_refetch_interval_s``, so forged
    ``kid`` values cannot make us hammer the provider) and when the cached set is older than
    ``jwks_max_age_s`` (so a key the provider withdrew stops being accepted).

    Owns its ``aiohttp.ClientSession`` unless one is given; close with ``aclose()``.
    """

    def __init__(
        self,
        settings: OidcSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        jwks_refetch_interval_s: float = 10.0,
        jwks_max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._jwks_refetch_interval_s = jwks_refetch_interval_s
        self._jwks_max_age_s = jwks_max_age_s
        self._clock = clock
        self._metadata: ProviderMetadata | None = None
        self._verifier: IdTokenVerifier | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # created lazily: a ClientSession belongs to a running loop
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def _request_json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """``(status, parsed JSON)``; the provider being unreachable or incoherent is a 503."""
        try:
            async with self._http().request(
                method, url, timeout=self._timeout, **kwargs
            ) as response:
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise ValueError(f"response larger than {MAX_DOCUMENT_BYTES} bytes")
                status = response.status
            return status, json.loads(bytes(body)) if body else None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ServiceUnavailable(
                f"OIDC provider unreachable ({method} {url}): {exc!r}",
                code="oidc_provider_unavailable",
            ) from exc
        except ValueError as exc:
            raise ServiceUnavailable(
                f"OIDC provider sent an unreadable answer ({method} {url}): {exc}",
                code="oidc_bad_provider_response",
            ) from exc

    async def _get_document(self, url: str) -> Any:
        status, document = await self._request_json(
            "GET", url, headers={"Accept": "application/json"}
        )
        if status != 200:
            raise ServiceUnavailable(
                f"{url} answered HTTP {status}", code="oidc_provider_unavailable"
            )
        return document

    async def discover(self) -> ProviderMetadata:
        """The provider's metadata (Discovery 1.0 section 4), fetched once."""
        if self._metadata is None:
            async with self._lock:
                if self._metadata is None:
                    url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    try:
                        document = await self._get_document(url)
                        self._metadata = ProviderMetadata.from_json(document, self.settings.issuer)
                    except (TypeError, ValueError) as exc:
                        raise ServiceUnavailable(
                            str(exc), code="oidc_bad_provider_response"
                        ) from exc
        return self._metadata

    async def authorization_url(self, redirect_uri: str) -> AuthorizationRequest:
        """A fresh authorization request: random state and nonce, an S256 PKCE challenge."""
        metadata = await self.discover()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(48)  # 64 unreserved characters (RFC 7636 4.1: 43-128)
        url = URL(metadata.authorization_endpoint).update_query(
            response_type="code",
            client_id=self.settings.client_id,
            redirect_uri=redirect_uri,
            scope=" ".join(self.settings.scopes),
            state=state,
            nonce=nonce,
            code_challenge=code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return AuthorizationRequest(str(url), state, nonce, code_verifier)

    async def exchange(self, code: str, redirect_uri: str, code_verifier: str) -> TokenResponse:
        """Trade an authorization code for tokens (Core 3.1.3.1-3.1.3.3, RFC 7636 4.5)."""
        metadata = await self.discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        methods = metadata.token_endpoint_auth_methods
        if "client_secret_basic" in methods or not methods:
            # RFC 6749 section 2.3.1: id and secret are form-encoded before Basic encoding.
            pair = f"{urllib.parse.quote_plus(self.settings.client_id)}:{urllib.parse.quote_plus(self.settings.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif "client_secret_post" in methods:
            form.update(
                client_id=self.settings.client_id, client_secret=self.settings.client_secret
            )
        else:
            raise ServiceUnavailable(
                f"provider offers no client secret authentication ({', '.join(methods)})",
                code="oidc_unsupported_client_auth",
            )
        status, body = await self._request_json(
            "POST", metadata.token_endpoint, data=form, headers=headers
        )
        if not isinstance(body, dict):
            raise ServiceUnavailable(
                f"token endpoint answered HTTP {status} without JSON",
                code="oidc_bad_provider_response",
            )
        if status != 200:
            error = str(body.get("error", "unknown"))
            if status >= 500:
                raise ServiceUnavailable(
                    f"token endpoint failed: {error}", code="oidc_provider_unavailable"
                )
            raise Unauthorized(
                f"provider refused the code: {error}: {body.get('error_description', '')}".rstrip(
                    ": "
                ),
                code="oidc_token_error",
                provider_error=error,
            )
        id_token, token_type = body.get("id_token"), str(body.get("token_type", ""))
        if not isinstance(id_token, str):
            raise Unauthorized(
                "token response has no ID token (is 'openid' in scope?)", code="oidc_no_id_token"
            )
        if token_type.lower() != "bearer":  # Core 3.1.3.3: token_type MUST be Bearer
            raise Unauthorized(f"unexpected token type {token_type!r}", code="oidc_token_error")
        expires_in = body.get("expires_in")
        return TokenResponse(
            id_token,
            str(body.get("access_token", "")),
            token_type,
            expires_in
            if isinstance(expires_in, int) and not isinstance(expires_in, bool)
            else None,
            body,
        )

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for this client and this sign-in's ``nonce``."""
        metadata = await self.discover()
        if self._verifier is None:
            jwks_uri = metadata.jwks_uri

            async def fetch_jwks() -> Any:
                return await self._get_document(jwks_uri)

            self._verifier = IdTokenVerifier(
                fetch_jwks,
                issuer=metadata.issuer,
                client_id=self.settings.client_id,
                leeway_s=self.settings.leeway_s,
                refetch_interval_s=self._jwks_refetch_interval_s,
                max_age_s=self._jwks_max_age_s,
                clock=self._clock,
            )
        return await self._verifier.verify(id_token, nonce)

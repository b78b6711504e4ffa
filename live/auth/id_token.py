"""Verifying one provider's ID tokens: its signing keys, cached and refreshed, and the rules.

OpenID Connect Core 1.0 section 10.1.1: a provider rotates its signing keys by publishing the
new key in its JWK Set before using it. So the set is fetched on first use and cached; it is
fetched again when a token names a key we do not have (at most once per
``refetch_interval_s``, so made-up ``kid`` values cannot make us hammer the provider) and
when the cached set is older than ``max_age_s`` (so a key the provider withdrew stops being
accepted). Signatures and claims are checked by ``live.auth.jwt``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ServiceUnavailable, Unauthorized
from .jwt import (
    MAX_LEEWAY_S,
    SignedJwt,
    SigningKey,
    jwks_from_json,
    key_fits,
    parse_jwt,
    validate_id_token_claims,
    verify_signature,
)

log = logging.getLogger(__name__)

FetchJwks = Callable[[], Awaitable[Any]]


class IdTokenVerifier:
    """Checks ID tokens of ``issuer`` for ``client_id`` against keys ``fetch_jwks`` returns.

    ``fetch_jwks()`` returns the provider's JWK Set document (parsed JSON); it raises
    ``ServiceUnavailable`` when the provider cannot be reached.
    """

    def __init__(
        self,
        fetch_jwks: FetchJwks,
        *,
        issuer: str,
        client_id: str,
        leeway_s: float = 60.0,
        refetch_interval_s: float = 10.0,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= leeway_s <= MAX_LEEWAY_S:
            raise ValueError(f"clock leeway must be 0..{MAX_LEEWAY_S} s, not {leeway_s}")
        self._fetch_jwks = fetch_jwks
        self.issuer = issuer
        self.client_id = client_id
        self.leeway_s = leeway_s
        self._refetch_interval_s = refetch_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._keys: tuple[SigningKey, ...] = ()
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def _refresh(self, *, unknown_kid: bool) -> None:
        """Fetch the set unless the cached copy is young enough for this reason to refetch."""
        fetched = self._fetched_at
        min_age = self._refetch_interval_s if unknown_kid else self._max_age_s
        if fetched is not None and self._clock() - fetched < min_age:
            return
        async with self._lock:
            if self._fetched_at != fetched:
                return  # another request refreshed them while we waited
            document = await self._fetch_jwks()
            try:
                self._keys = jwks_from_json(document)
            except TypeError as exc:
                raise ServiceUnavailable(
                    f"bad JWKS: {exc}", code="oidc_bad_provider_response"
                ) from exc
            self._fetched_at = self._clock()
            log.debug("fetched %d signing keys of %s", len(self._keys), self.issuer)

    def _named(self, kid: str | None) -> list[SigningKey]:
        return [key for key in self._keys if kid is None or key.kid == kid]

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for this client and this sign-in's ``nonce``."""
        token = parse_jwt(id_token)
        await self._refresh(unknown_kid=False)  # first use, or the cached set is too old
        candidates = self._named(token.kid)
        if not candidates:
            await self._refresh(unknown_kid=True)  # the provider may have rotated its keys
            candidates = self._named(token.kid)
        if not candidates:
            raise Unauthorized(
                f"no signing key {token.kid!r} at the provider", code="oidc_unknown_key"
            )
        fitting = [key for key in candidates if key_fits(key, token.alg)]
        if not fitting:
            raise Unauthorized(f"no provider key fits {token.alg}", code="oidc_bad_signature")
        # Usually one key; a token without a kid is tried against every key that fits its alg.
        if not any(_verifies(token, key) for key in fitting):
            raise Unauthorized("ID token signature does not verify", code="oidc_bad_signature")
        claims = dict(token.claims)
        validate_id_token_claims(
            claims,
            issuer=self.issuer,
            client_id=self.client_id,
            nonce=nonce,
            now=self._clock(),
            leeway_s=self.leeway_s,
        )
        return claims


def _verifies(token: SignedJwt, key: SigningKey) -> bool:
    try:
        verify_signature(token, key)
    except Unauthorized:
        return False
    return True

"""Signed JSON Web Tokens checked against a provider's public keys, through ``joserfc``.

This module is the adapter between the OpenID Connect relying party and the JOSE library:
it decides which tokens and keys we accept and turns the library's errors into
``live.errors.Unauthorized`` with ``oidc_*`` codes. The JWS compact serialisation (RFC 7515
section 7.1), JWK parsing (RFC 7517, RFC 7518 section 6, RFC 8037), signature verification
and the registered claims (RFC 7519 section 4.1) are the library's work. What we add:

- An allow-list of asymmetric algorithms (RFC 7518 section 3, RFC 8037, RFC 9864). Refused
  before a key is touched: ``alg: none`` (RFC 7518 section 3.6) and every ``HS*``. An HMAC
  "verified" with a public key is the classic key-confusion forgery: the key is public, so
  anyone can sign.
- A ``crit`` header (RFC 7515 section 4.1.11), which also covers RFC 7797 unencoded payloads:
  we understand no extensions, so we must reject.
- Only signing keys we can trust from a JWK Set: RSA of at least 2048 bits (RFC 7518 section
  3.3), EC on the curve its algorithm names, Ed25519/Ed448; no symmetric or encryption keys.
- The ID token rules of OpenID Connect Core 1.0 section 3.1.3.7 on top of RFC 7519's: ``iss``
  and ``aud`` required, ``azp`` when there are several audiences, ``exp`` and ``iat``
  required, a bounded leeway for clock skew, and the sign-in's ``nonce``.

Nothing here does I/O; ``live.auth.id_token`` fetches and caches the keys.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import (
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
    SecurityWarning,
)
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from ..errors import Unauthorized

SigningKey = RSAKey | ECKey | OKPKey

RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGS = frozenset({"ES256", "ES384", "ES512"})
OKP_ALGS = frozenset({"EdDSA", "Ed25519"})  # "Ed25519" is the fully specified name (RFC 9864)
SUPPORTED_ALGS = RSA_ALGS | EC_ALGS | OKP_ALGS
MIN_RSA_BITS = 2048  # RFC 7518 section 3.3: "a key of size 2048 bits or larger MUST be used"
MAX_LEEWAY_S = 300  # RFC 7519 section 4.1.4: "usually no more than a few minutes"
_EC_CURVES = frozenset({"P-256", "P-384", "P-521"})
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
# The library's registry, limited to our allow-list: it refuses every other "alg" itself too.
# Header parameters it does not know are let through (providers add their own), as before.
_REGISTRY = jws.JWSRegistry(algorithms=sorted(SUPPORTED_ALGS), strict_check_header=False)
# The library's default header limit (512 bytes) is too small for a header carrying an
# ``x5c`` certificate chain (RFC 7515 section 4.1.6); the token response is capped anyway.
_REGISTRY.max_header_length = 16 * 1024


def _malformed(message: str) -> Unauthorized:
    return Unauthorized(message, code="oidc_malformed_token")


@dataclass(frozen=True, slots=True)
class SignedJwt:
    """A JWS in compact form, split and decoded but not yet trusted."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    compact: jws.CompactSignature

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def parse_jwt(token: str) -> SignedJwt:
    """Split ``header.payload.signature`` and decode the JSON; refuse unsupported algorithms."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        # Five parts would be a JWE (RFC 7516): encrypted ID tokens are not supported.
        raise _malformed("an ID token is three base64url parts separated by dots")
    if not all(_SEGMENT.fullmatch(part) for part in parts[:2]) or not (
        parts[2] == "" or _SEGMENT.fullmatch(parts[2])
    ):
        raise _malformed("an ID token's parts are base64url")
    try:
        compact = jws.extract_compact(token.encode("ascii"), registry=_REGISTRY)
    except (JoseError, ValueError, TypeError) as exc:  # no "alg" at all is malformed too
        raise _malformed(f"undecodable token: {exc}") from exc
    headers = compact.headers()
    alg = headers.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        raise Unauthorized(
            f"token algorithm {alg!r} is not accepted", code="oidc_unsupported_alg", alg=str(alg)
        )
    if "crit" in headers or "b64" in headers:
        raise Unauthorized("token has critical header extensions", code="oidc_unsupported_alg")
    try:
        claims = json.loads(compact.payload or b"")
    except ValueError as exc:
        raise _malformed(f"undecodable token: {exc}") from exc
    if not isinstance(claims, dict):
        raise _malformed("token header and payload must be JSON objects")
    return SignedJwt(headers, claims, compact)


# --- keys --------------------------------------------------------------------------------


def _usable(key: SigningKey) -> bool:
    if isinstance(key, RSAKey):
        return bool(key.public_key.key_size >= MIN_RSA_BITS)
    if isinstance(key, ECKey):
        return key.curve_name in _EC_CURVES
    return key.curve_name in _OKP_CURVES


def jwks_from_json(document: Any) -> tuple[SigningKey, ...]:
    """The usable public signing keys of a JWK Set (RFC 7517 section 5).

    Keys we cannot use (symmetric ``oct`` keys, encryption keys, small RSA keys, points off
    their curve, unknown types) are skipped, as section 5 asks, rather than failing the whole
    set. Private parts a provider should never publish are dropped. ``TypeError`` if it is no
    JWK Set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TypeError("a JWK Set is an object with a 'keys' array")
    kinds: dict[str, type[SigningKey]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    private = {"d", "p", "q", "dp", "dq", "qi", "oth"}
    keys: list[SigningKey] = []
    for raw in document["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        kind = kinds.get(raw.get("kty"))  # type: ignore[arg-type]
        if kind is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)
                key = kind.import_key({k: v for k, v in raw.items() if k not in private})
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if _usable(key):
            keys.append(key)
    return tuple(keys)


def key_fits(key: SigningKey, alg: str) -> bool:
    """Whether ``key`` may verify a token signed with ``alg`` (type, curve, ``use``, ``alg``)."""
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864
            _REGISTRY.get_alg(alg).check_key(key)
    except JoseError:
        return False
    if alg == "EdDSA":  # the polymorphic name covers both Edwards curves
        return isinstance(key, OKPKey) and key.curve_name in _OKP_CURVES
    return True


def verify_signature(token: SignedJwt, key: SigningKey) -> None:
    """Check the JWS signature of ``token`` with ``key``; ``oidc_bad_signature`` if it fails."""
    if not key_fits(key, token.alg):
        raise Unauthorized(f"key {key.kid!r} cannot verify {token.alg}", code="oidc_bad_signature")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            valid = jws.validate_compact(token.compact, key, registry=_REGISTRY)
    except JoseError as exc:
        raise Unauthorized(
            f"ID token signature does not verify: {exc}", code="oidc_bad_signature"
        ) from exc
    if not valid:
        raise Unauthorized("ID token signature does not verify", code="oidc_bad_signature")


# --- claims ------------------------------------------------------------------------------

# Which error code a failed registered claim gives, in the order they are reported.
_CLAIM_CODES = {
    "iss": "oidc_bad_issuer",
    "aud": "oidc_wrong_audience",
    "sub": "oidc_missing_claim",
    "exp": "oidc_malformed_token",
    "iat": "oidc_malformed_token",
    "nbf": "oidc_malformed_token",
}


def _number(claims: Mapping[str, Any], name: str) -> None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _malformed(f"ID token claim {name!r} must be a number")


def _audiences(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _refusal(exc: ClaimError) -> Unauthorized:
    if isinstance(exc, ExpiredTokenError):
        return Unauthorized("ID token has expired", code="oidc_expired")
    names = exc.claim.split(",")
    if isinstance(exc, MissingClaimError):
        name = next(n for n in _CLAIM_CODES if n in names)
        return Unauthorized(f"ID token has no {name!r} claim", code=_CLAIM_CODES[name])
    name = names[0]
    if name in ("nbf", "iat"):  # types were checked first: only "in the future" is left
        return Unauthorized(
            "ID token is not valid yet (check the clocks)", code="oidc_not_yet_valid"
        )
    code = _CLAIM_CODES.get(name, "oidc_malformed_token")
    if code == "oidc_bad_issuer":
        return Unauthorized(f"ID token issuer is not the configured one: {exc}", code=code)
    if code == "oidc_wrong_audience":
        return Unauthorized("ID token was issued for another client", code=code)
    return Unauthorized(f"ID token claim {name!r} is invalid", code=code)


def validate_id_token_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    leeway_s: float,
) -> None:
    """OpenID Connect Core 1.0 section 3.1.3.7, steps 2-3 and 9-11, on already-verified claims."""
    # Types first, so that the library's time checks can only mean "too early" or "too late".
    for name in ("exp", "iat", "nbf"):
        if name in claims:
            _number(claims, name)
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=int(min(max(leeway_s, 0), MAX_LEEWAY_S)),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(dict(claims))
    except ClaimError as exc:
        raise _refusal(exc) from exc
    audiences = _audiences(claims.get("aud"))
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise Unauthorized(
            "ID token with several audiences names no azp", code="oidc_wrong_audience"
        )
    if azp is not None and azp != client_id:
        raise Unauthorized(
            "ID token was authorized for another client (azp)", code="oidc_wrong_audience"
        )
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        raise Unauthorized("ID token nonce does not match this sign-in", code="oidc_bad_nonce")

"""ID token verification: tokens and keys made by joserfc, the JWK Set served from memory.

A provider here is a set of joserfc keys and a function that returns its published JWK Set;
tokens are signed with ``joserfc.jwt.encode``. The real provider (oidc-provider on Node.js)
is exercised in ``tests/integration/test_oidc.py``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from live.auth.id_token import IdTokenVerifier
from live.auth.jwt import jwks_from_json, key_fits, parse_jwt
from live.auth.tokens import b64url_encode
from live.errors import LiveError, ServiceUnavailable, Unauthorized

ISSUER = "https://id.example"
CLIENT = "live-test"
NONCE = "n-1"
NOW = 1_700_000_000
Key = RSAKey | ECKey | OKPKey


def new_key(kind: str) -> Key:
    if kind == "rsa":
        return RSAKey.generate_key(2048)
    if kind == "ec":
        return ECKey.generate_key("P-256")
    return OKPKey.generate_key("Ed25519")


@pytest.fixture(scope="module")
def rsa_keys() -> list[RSAKey]:
    """RSA keys are slow to make: a few, shared by the module's tests."""
    return [RSAKey.generate_key(2048) for _ in range(3)]


@dataclass
class Provider:
    """Keys by kid, the ones published in the JWK Set, and how often the set was fetched."""

    keys: dict[str, Key] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    clock: list[float] = field(default_factory=lambda: [float(NOW)])

    def add(self, kid: str, key: Key, *, publish: bool = True, **extra: str) -> None:
        self.keys[kid] = key
        if publish:
            self.published.append({**key.as_dict(private=False), "kid": kid, **extra})

    async def jwks(self) -> Any:
        self.fetches += 1
        return {"keys": list(self.published)}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock[0])
        base = {"iss": ISSUER, "aud": CLIENT, "sub": "sam", "iat": now, "exp": now + 300}
        return {**base, "nonce": NONCE, "live_role": "supervisor", **overrides}

    def sign(self, claims: dict[str, Any], kid: str, alg: str | None = None) -> str:
        key = self.keys[kid]
        alg = alg or {"RSA": "RS256", "EC": "ES256", "OKP": "Ed25519"}[key.key_type]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated (RFC 9864)
            return jwt.encode({"alg": alg, "kid": kid}, claims, key, algorithms=[alg])

    def verifier(self, **options: Any) -> IdTokenVerifier:
        return IdTokenVerifier(
            self.jwks, issuer=ISSUER, client_id=CLIENT, clock=lambda: self.clock[0], **options
        )


async def refused(verifier: IdTokenVerifier, token: str, nonce: str = NONCE) -> str:
    with pytest.raises(Unauthorized) as exc:
        await verifier.verify(token, nonce)
    assert exc.value.status == 401
    return exc.value.code


@pytest.fixture
def provider(rsa_keys: list[RSAKey]) -> Provider:
    provider = Provider()
    provider.add("r1", rsa_keys[0])
    return provider


# --- signatures and algorithms -------------------------------------------------------------


async def test_good_tokens_of_every_supported_key_type_verify(provider: Provider) -> None:
    provider.add("e1", new_key("ec"))
    provider.add("o1", new_key("okp"))
    verifier = provider.verifier()
    for kid, alg in (("r1", "RS256"), ("r1", "PS256"), ("r1", "RS512"), ("e1", "ES256")):
        claims = await verifier.verify(provider.sign(provider.claims(), kid, alg), NONCE)
        assert claims["sub"] == "sam" and claims["live_role"] == "supervisor"
    for alg in ("Ed25519", "EdDSA"):
        assert (await verifier.verify(provider.sign(provider.claims(), "o1", alg), NONCE))["sub"]
    assert provider.fetches == 1  # the key set is cached
    # Header parameters beyond alg and kid, an x5c chain of a few kB among them, are fine.
    chain = [b64url_encode(bytes(1500)).replace("-", "A").replace("_", "A")[:2000]] * 3
    header = {"alg": "RS256", "kid": "r1", "x5c": chain, "x-provider": "own"}
    lenient = jws.JWSRegistry(algorithms=["RS256"], strict_check_header=False)
    token = jwt.encode(header, provider.claims(), provider.keys["r1"], registry=lenient)
    assert (await verifier.verify(token, NONCE))["sub"] == "sam"


async def test_a_token_signed_with_another_key_is_refused(
    provider: Provider, rsa_keys: list[RSAKey]
) -> None:
    verifier = provider.verifier()
    provider.keys["r1"] = rsa_keys[1]  # someone else's key under the published kid
    assert await refused(verifier, provider.sign(provider.claims(), "r1")) == "oidc_bad_signature"
    good = provider.sign(provider.claims(), "r1")
    head, _body, signature = good.split(".")
    promoted = b64url_encode(b'{"sub":"sam","live_role":"admin"}')
    assert await refused(verifier, f"{head}.{promoted}.{signature}") == "oidc_bad_signature"


async def test_an_algorithm_that_does_not_fit_the_key_is_refused(
    provider: Provider, rsa_keys: list[RSAKey]
) -> None:
    provider.add("pinned", rsa_keys[1], alg="RS256")
    provider.add("e1", new_key("ec"))
    verifier = provider.verifier()
    # The key says RS256 only; a PS256 signature by the very same key does not count.
    assert await refused(verifier, provider.sign(provider.claims(), "pinned", "PS256")) == (
        "oidc_bad_signature"
    )
    # An ES256 token naming the RSA key's kid; a P-256 key asked to check ES384.
    provider.keys["r1"] = provider.keys["e1"]
    assert await refused(verifier, provider.sign(provider.claims(), "r1", "ES256")) == (
        "oidc_bad_signature"
    )
    provider.keys["e1"] = ECKey.generate_key("P-384")
    assert await refused(verifier, provider.sign(provider.claims(), "e1", "ES384")) == (
        "oidc_bad_signature"
    )


async def test_alg_none_is_refused(provider: Provider) -> None:
    verifier = provider.verifier()
    with pytest.warns(SecurityWarning):
        unsigned = jwt.encode(
            {"alg": "none", "kid": "r1"}, provider.claims(), None, algorithms=["none"]
        )
    assert unsigned.endswith(".")
    assert await refused(verifier, unsigned) == "oidc_unsupported_alg"
    _head, body, _ = provider.sign(provider.claims(), "r1").split(".")
    for alg in ("None", "NONE"):
        header = b64url_encode(f'{{"alg":"{alg}","kid":"r1"}}'.encode())
        assert await refused(verifier, f"{header}.{body}.") == "oidc_unsupported_alg"
    assert provider.fetches == 0  # refused before any key was needed


async def test_hmac_signed_with_the_public_key_is_refused(provider: Provider) -> None:
    """Key confusion: HS256 "signed" with the provider's public key, which anyone has.

    The library will not take a PEM public key as an HMAC secret; the published JWK's text
    serves the same purpose (a verifier that mixed up key types would accept it).
    """
    published = json.dumps(provider.published[0]).encode()
    confused = OctKey.import_key(published)
    for alg in ("HS256", "HS512"):
        token = jwt.encode({"alg": alg, "kid": "r1"}, provider.claims(), confused, algorithms=[alg])
        assert await refused(provider.verifier(), token) == "oidc_unsupported_alg"
    assert provider.fetches == 0


# --- claims ----------------------------------------------------------------------------------


async def test_expiry_and_not_before_with_leeway(provider: Provider) -> None:
    verifier = provider.verifier(leeway_s=60)
    now = NOW
    accepted = [
        provider.claims(exp=now - 30),  # expired, within the leeway
        provider.claims(nbf=now + 30, iat=now + 30),  # a provider clock slightly ahead
    ]
    for claims in accepted:
        await verifier.verify(provider.sign(claims, "r1"), NONCE)
    cases = [
        ("oidc_expired", provider.claims(iat=now - 900, exp=now - 120)),
        ("oidc_not_yet_valid", provider.claims(nbf=now + 600)),
        ("oidc_not_yet_valid", provider.claims(iat=now + 600, exp=now + 900)),
        ("oidc_malformed_token", {k: v for k, v in provider.claims().items() if k != "exp"}),
        ("oidc_malformed_token", {k: v for k, v in provider.claims().items() if k != "iat"}),
        ("oidc_malformed_token", provider.claims(exp="tomorrow")),
        ("oidc_malformed_token", provider.claims(exp=True)),
        ("oidc_malformed_token", provider.claims(nbf=[1])),
    ]
    for code, claims in cases:
        assert await refused(verifier, provider.sign(claims, "r1")) == code, claims


async def test_issuer_audience_and_authorized_party(provider: Provider) -> None:
    verifier = provider.verifier()
    cases = [
        ("oidc_bad_issuer", provider.claims(iss="https://evil.example")),
        ("oidc_bad_issuer", {k: v for k, v in provider.claims().items() if k != "iss"}),
        ("oidc_wrong_audience", provider.claims(aud="other-app")),
        ("oidc_wrong_audience", provider.claims(aud=["other-app"])),
        ("oidc_wrong_audience", {k: v for k, v in provider.claims().items() if k != "aud"}),
        ("oidc_wrong_audience", provider.claims(aud=["other-app", CLIENT])),  # several, no azp
        ("oidc_wrong_audience", provider.claims(aud=[CLIENT, "other-app"], azp="other-app")),
        ("oidc_wrong_audience", provider.claims(azp="other-app")),
        ("oidc_missing_claim", {k: v for k, v in provider.claims().items() if k != "sub"}),
        ("oidc_missing_claim", provider.claims(sub="")),
    ]
    for code, claims in cases:
        assert await refused(verifier, provider.sign(claims, "r1")) == code, claims
    ok = provider.claims(aud=["other-app", CLIENT], azp=CLIENT)
    assert (await verifier.verify(provider.sign(ok, "r1"), NONCE))["azp"] == CLIENT


async def test_the_nonce_must_be_this_sign_ins(provider: Provider) -> None:
    verifier = provider.verifier()
    token = provider.sign(provider.claims(), "r1")
    assert await refused(verifier, token, nonce="another sign-in's nonce") == "oidc_bad_nonce"
    without = {k: v for k, v in provider.claims().items() if k != "nonce"}
    assert await refused(verifier, provider.sign(without, "r1")) == "oidc_bad_nonce"
    assert await refused(verifier, provider.sign(provider.claims(nonce=7), "r1")) == (
        "oidc_bad_nonce"
    )


def test_clock_leeway_is_bounded(provider: Provider) -> None:
    for leeway in (-1, 301, 3600):
        with pytest.raises(ValueError):
            provider.verifier(leeway_s=leeway)


# --- keys and their rotation -----------------------------------------------------------------


async def test_unknown_kid_refetches_keys_then_rotation_works_but_refetches_are_bounded(
    provider: Provider, rsa_keys: list[RSAKey]
) -> None:
    verifier = provider.verifier(refetch_interval_s=30)
    await verifier.verify(provider.sign(provider.claims(), "r1"), NONCE)
    assert provider.fetches == 1
    provider.add("r2", rsa_keys[1])  # the provider rotates: publishes the new key, then uses it
    provider.clock[0] += 31
    await verifier.verify(provider.sign(provider.claims(), "r2"), NONCE)
    assert provider.fetches == 2
    # A kid nobody published: at most one refetch per interval, however often it comes.
    provider.add("ghost", rsa_keys[2], publish=False)
    for _ in range(5):
        assert await refused(verifier, provider.sign(provider.claims(), "ghost")) == (
            "oidc_unknown_key"
        )
    assert provider.fetches == 2
    provider.clock[0] += 31
    assert await refused(verifier, provider.sign(provider.claims(), "ghost")) == "oidc_unknown_key"
    assert provider.fetches == 3


async def test_a_withdrawn_key_stops_working_once_the_cache_is_old(provider: Provider) -> None:
    verifier = provider.verifier(max_age_s=600)
    await verifier.verify(provider.sign(provider.claims(), "r1"), NONCE)
    provider.published.clear()
    provider.clock[0] += 599
    await verifier.verify(provider.sign(provider.claims(), "r1"), NONCE)  # still cached
    provider.clock[0] += 2
    assert await refused(verifier, provider.sign(provider.claims(), "r1")) == "oidc_unknown_key"


async def test_a_token_without_kid_is_tried_against_every_fitting_key(
    provider: Provider, rsa_keys: list[RSAKey]
) -> None:
    provider.add("r2", rsa_keys[1])
    verifier = provider.verifier()
    claims = provider.claims()
    token = jwt.encode({"alg": "RS256"}, claims, rsa_keys[1], algorithms=["RS256"])
    assert (await verifier.verify(token, NONCE))["sub"] == "sam"
    stranger = jwt.encode({"alg": "RS256"}, claims, rsa_keys[2], algorithms=["RS256"])
    assert await refused(verifier, stranger) == "oidc_bad_signature"


async def test_a_jwks_that_is_no_key_set_is_the_providers_fault() -> None:
    async def nonsense() -> Any:
        return ["not", "a", "key", "set"]

    verifier = IdTokenVerifier(nonsense, issuer=ISSUER, client_id=CLIENT, clock=lambda: NOW)
    with pytest.raises(ServiceUnavailable) as exc:
        await verifier.verify(_any_rs256_token(), NONCE)
    assert exc.value.status == 503 and exc.value.code == "oidc_bad_provider_response"


def _any_rs256_token() -> str:
    header = b64url_encode(b'{"alg":"RS256","kid":"k"}')
    return f"{header}.{b64url_encode(b'{}')}.{b64url_encode(bytes(256))}"


def test_jwks_keeps_only_usable_signing_keys() -> None:
    with pytest.warns(SecurityWarning):
        small = RSAKey.generate_key(1024)
    p256 = ECKey.generate_key("P-256")
    x25519 = OKPKey.generate_key("X25519")
    keys = jwks_from_json(
        {
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                {**small.as_dict(private=False), "kid": "small"},
                {**p256.as_dict(private=False), "kid": "enc", "use": "enc"},
                {**x25519.as_dict(private=False), "kid": "x25519"},
                {
                    "kty": "EC",
                    "kid": "off-curve",
                    "crv": "P-256",
                    "x": b64url_encode(b"\1" * 32),
                    "y": b64url_encode(b"\2" * 32),
                },
                {"kty": "RSA", "kid": "broken", "n": "%%%", "e": "AQAB"},
                {"kty": "PQ", "kid": "future"},
                "not a key",
                {**p256.as_dict(private=True), "kid": "good", "alg": "ES256"},
            ]
        }
    )
    assert [key.kid for key in keys] == ["good"]
    assert not keys[0].is_private  # a published private part is dropped, never used
    assert key_fits(keys[0], "ES256") and not key_fits(keys[0], "ES384")
    assert not key_fits(keys[0], "RS256") and not key_fits(keys[0], "HS256")
    for document in (None, [], {"keys": "none"}):
        with pytest.raises(TypeError):
            jwks_from_json(document)


def test_malformed_and_unsupported_tokens_are_refused_before_any_key() -> None:
    header = b64url_encode(b'{"alg":"RS256","kid":"k"}')
    body = b64url_encode(b'{"sub":"x"}')

    def with_header(text: str) -> str:
        return f"{b64url_encode(text.encode())}.{body}."

    cases = {
        "oidc_malformed_token": [
            "not-a-jwt",
            f"{header}.{body}",
            f"{header}.{body}.sig.extra.parts",  # a JWE: encrypted ID tokens are not accepted
            f"{header}.{body}.has+plus",
            f"{header}.{b64url_encode(b'[1]')}.",
            f"{header}.{b64url_encode(b'not json')}.",
            with_header("[1]"),
            with_header('{"typ":"JWT"}'),  # no "alg" at all
        ],
        "oidc_unsupported_alg": [
            with_header('{"alg":"HS512"}'),
            with_header('{"alg":"ES256K"}'),
            with_header('{"alg":["RS256"]}'),
            with_header('{"alg":null}'),
            with_header('{"alg":"RS256","crit":["exp"]}'),
            with_header('{"alg":"RS256","b64":false,"crit":["b64"]}'),  # RFC 7797
        ],
    }
    for code, tokens in cases.items():
        for token in tokens:
            with pytest.raises(LiveError) as exc:
                parse_jwt(token)
            assert exc.value.code == code, token

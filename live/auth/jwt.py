"""Signed JSON Web Tokens checked against public keys: pure parsing and verification.

Covers what an OpenID Connect relying party needs and nothing more: the JWS compact
serialisation (RFC 7515 section 7.1), public JSON Web Keys (RFC 7517, RFC 7518 section 6,
RFC 8037 for Ed25519) and the asymmetric signature algorithms of RFC 7518 section 3 and
RFC 8037. Anything else is refused before a key is touched:

- ``alg: none`` (RFC 7518 section 3.6) and every ``HS*`` algorithm. An HMAC "verified" with a
  public key is the classic key-confusion forgery: the key is public, so anyone can sign.
- an algorithm that does not fit the key (an ``ES256`` token against an RSA key, a P-384 key
  for ``ES256``, a key whose own ``alg`` or ``use`` says otherwise).
- a ``crit`` header (RFC 7515 section 4.1.11): we understand no extensions, so we must reject.

Every failure is ``live.errors.Unauthorized`` with an ``oidc_*`` code; nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..errors import Unauthorized

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
# ESxxx: the curve the algorithm requires (RFC 7518 section 3.4) and its coordinate size.
_EC_CURVES: dict[str, tuple[str, type[ec.EllipticCurve], int]] = {
    "ES256": ("P-256", ec.SECP256R1, 32),
    "ES384": ("P-384", ec.SECP384R1, 48),
    "ES512": ("P-521", ec.SECP521R1, 66),
}
RSA_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGS = frozenset(_EC_CURVES)
OKP_ALGS = frozenset({"EdDSA", "Ed25519"})  # "Ed25519" is the fully specified name (RFC 9864)
SUPPORTED_ALGS = RSA_ALGS | EC_ALGS | OKP_ALGS
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
MIN_RSA_BITS = 2048  # RFC 7518 section 3.3: "a key of size 2048 bits or larger MUST be used"


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (RFC 7515 section 2); strict about the alphabet."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _malformed(message: str) -> Unauthorized:
    return Unauthorized(message, code="oidc_malformed_token")


@dataclass(frozen=True, slots=True)
class SignedJwt:
    """A JWS in compact form, split and decoded but not yet trusted."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes

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
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _malformed(f"undecodable token: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _malformed("token header and payload must be JSON objects")
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGS:
        raise Unauthorized(
            f"token algorithm {alg!r} is not accepted", code="oidc_unsupported_alg", alg=str(alg)
        )
    if "crit" in header:
        raise Unauthorized("token has critical header extensions", code="oidc_unsupported_alg")
    return SignedJwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


@dataclass(frozen=True, slots=True)
class Jwk:
    """One public signing key from a JWKS, with the metadata that constrains its use."""

    key: PublicKey
    kty: str
    kid: str | None = None
    alg: str | None = None
    use: str | None = None

    def fits(self, alg: str) -> bool:
        """Whether this key may verify a token signed with ``alg``."""
        if self.use not in (None, "sig") or (self.alg is not None and self.alg != alg):
            return False
        if alg in RSA_ALGS:
            return isinstance(self.key, rsa.RSAPublicKey)
        if alg in EC_ALGS:
            curve = _EC_CURVES[alg][1]
            return isinstance(self.key, ec.EllipticCurvePublicKey) and isinstance(
                self.key.curve, curve
            )
        if alg == "Ed25519":
            return isinstance(self.key, Ed25519PublicKey)
        return alg == "EdDSA" and isinstance(self.key, (Ed25519PublicKey, Ed448PublicKey))


def _int(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(b64url_decode(jwk[name]), "big")


def jwk_from_json(jwk: Mapping[str, Any]) -> Jwk:
    """A public key from its JWK form; ``ValueError`` if it is not a usable public key."""
    kty = jwk.get("kty")
    try:
        key: PublicKey
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_int(jwk, "e"), _int(jwk, "n")).public_key()
            if key.key_size < MIN_RSA_BITS:
                raise ValueError(f"RSA key of {key.key_size} bits is too small")
        elif kty == "EC":
            curves = {name: curve for name, curve, _ in _EC_CURVES.values()}
            curve = curves.get(jwk.get("crv", ""))
            if curve is None:
                raise ValueError(f"unsupported curve {jwk.get('crv')!r}")
            key = ec.EllipticCurvePublicNumbers(
                _int(jwk, "x"), _int(jwk, "y"), curve()
            ).public_key()
        elif kty == "OKP" and jwk.get("crv") == "Ed25519":
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
        elif kty == "OKP" and jwk.get("crv") == "Ed448":
            key = Ed448PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
        else:
            raise ValueError(f"unsupported key type {kty!r}")
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"malformed {kty} key: {exc!r}") from exc
    kid, alg, use = (jwk.get(name) for name in ("kid", "alg", "use"))
    return Jwk(
        key,
        str(kty),
        kid if isinstance(kid, str) else None,
        alg if isinstance(alg, str) else None,
        use if isinstance(use, str) else None,
    )


def jwks_from_json(document: Any) -> tuple[Jwk, ...]:
    """The usable signing keys of a JWK Set (RFC 7517 section 5).

    Keys we cannot use (symmetric ``oct`` keys, encryption keys, unknown types) are skipped,
    as section 5 asks, rather than failing the whole set. ``TypeError`` if it is no JWK Set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TypeError("a JWK Set is an object with a 'keys' array")
    keys = []
    for raw in document["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        try:
            keys.append(jwk_from_json(raw))
        except ValueError:
            continue
    return tuple(keys)


def verify_signature(token: SignedJwt, key: Jwk) -> None:
    """Check the JWS signature of ``token`` with ``key``; ``oidc_bad_signature`` if it fails."""
    alg = token.alg
    if not key.fits(alg):
        raise Unauthorized(f"key {key.kid!r} cannot verify {alg}", code="oidc_bad_signature")
    try:
        public = key.key
        if alg in RSA_ALGS and isinstance(public, rsa.RSAPublicKey):
            digest = _HASHES[alg[2:]]()
            if alg.startswith("PS"):
                pss = padding.PSS(padding.MGF1(digest), salt_length=digest.digest_size)
                public.verify(token.signature, token.signing_input, pss, digest)
            else:
                public.verify(token.signature, token.signing_input, padding.PKCS1v15(), digest)
        elif alg in EC_ALGS and isinstance(public, ec.EllipticCurvePublicKey):
            # JWS carries R || S as fixed-size big-endian integers (RFC 7518 section 3.4),
            # not the DER structure cryptography expects.
            size = _EC_CURVES[alg][2]
            if len(token.signature) != 2 * size:
                raise InvalidSignature()
            r = int.from_bytes(token.signature[:size], "big")
            s = int.from_bytes(token.signature[size:], "big")
            public.verify(
                encode_dss_signature(r, s), token.signing_input, ec.ECDSA(_HASHES[alg[2:]]())
            )
        elif isinstance(public, (Ed25519PublicKey, Ed448PublicKey)):
            public.verify(token.signature, token.signing_input)
        else:  # pragma: no cover - fits() already matched key and algorithm
            raise InvalidSignature()
    except InvalidSignature as exc:
        raise Unauthorized("ID token signature does not verify", code="oidc_bad_signature") from exc

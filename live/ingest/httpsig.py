"""HTTP message signatures (RFC 9421) with HMAC-SHA256, as Genesys AudioHook profiles them.

Genesys signs the WebSocket upgrade request of an AudioHook session with the integration's
client secret: ``Signature-Input: sig1=("@request-target" "@authority"
"audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");
keyid="<API key>";nonce="…";alg="hmac-sha256";created=…;expires=…`` and
``Signature: sig1=:<base64 HMAC-SHA256>:``. This module is the pure half of checking that:

* a strict parser and serialiser for the parts of RFC 8941 structured fields the two headers
  use (dictionaries, inner lists, items, parameters; integers, strings, tokens, byte
  sequences, booleans; decimals are parsed and refused as signature parameters);
* the signature base of RFC 9421 §2.5, re-serialised from the parsed ``Signature-Input``
  (never copied from the header), so what is verified is exactly what was parsed;
* the checks of the profile (``verify``): exactly one signature, ``alg`` absent or
  ``hmac-sha256``, ``keyid`` equal to the ``X-API-KEY`` sent, every component of
  ``REQUIRED_COMPONENTS`` covered, ``created`` / ``expires`` / ``nonce`` present and within
  bounds, the MAC compared in constant time;
* ``NonceCache``: a nonce is accepted once while its signature could still be valid, in
  bounded memory.

Time bounds: a signature is accepted from ``created - MAX_CLOCK_SKEW_S`` until
``min(expires, created + MAX_SIGNATURE_AGE_S) + MAX_CLOCK_SKEW_S`` (Genesys signs right before
it connects, with ``expires = created + 30``). Every refusal raises ``SignatureError`` (HTTP
401) whose message says what was wrong, never a secret or the expected MAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import TooManyRequests, Unauthorized

__all__ = [
    "MAX_CLOCK_SKEW_S",
    "MAX_SIGNATURE_AGE_S",
    "REQUIRED_COMPONENTS",
    "InnerList",
    "Item",
    "NonceCache",
    "RequestParts",
    "SignatureError",
    "SignatureInput",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "parse_signature_headers",
    "serialize_inner_list",
    "signature_base",
    "verify",
]

MAX_CLOCK_SKEW_S = 5  # how far our clock and the signer's may disagree
MAX_SIGNATURE_AGE_S = 60  # a signature older than this is refused whatever its ``expires``
MIN_NONCE_LENGTH = 16  # Genesys sends 18 random bytes in base64 (24 characters)
MAX_NONCE_LENGTH = 256
MAX_FIELD_LENGTH = 8192  # longer Signature-Input / Signature values are refused unparsed

REQUIRED_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
DERIVED_COMPONENTS = frozenset({"@method", "@authority", "@request-target", "@path", "@query"})


class SignatureError(Unauthorized):
    """The request's signature is missing, malformed, stale, replayed or wrong."""

    code = "bad_signature"


class StructuredFieldError(SignatureError):
    """A structured field (RFC 8941) did not parse."""


# --- RFC 8941 structured fields: the subset the signature headers use ------------------------


class Token(str):
    """An RFC 8941 token (unquoted), as opposed to a string."""


BareItem = int | float | str | Token | bytes | bool
Parameters = dict[str, BareItem]


@dataclass(frozen=True, slots=True)
class Item:
    value: BareItem
    params: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    items: tuple[Item, ...]
    params: Parameters = field(default_factory=dict)


_KEY_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz*")
_KEY_CHARS = _KEY_FIRST | frozenset("0123456789_-.")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_TCHAR = _ALPHA | _DIGITS | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_CHARS = _TCHAR | frozenset(":/")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class _Parser:
    """RFC 8941 §4.2 parsing over one field value; every deviation raises."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_FIELD_LENGTH:
            raise StructuredFieldError("structured field too long")
        if not text.isascii():
            raise StructuredFieldError("structured field is not ASCII")
        self.text = text.strip(" ")
        self.pos = 0

    def fail(self, what: str) -> StructuredFieldError:
        return StructuredFieldError(f"malformed structured field: {what} at {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def dictionary(self) -> dict[str, Item | InnerList]:
        members: dict[str, Item | InnerList] = {}
        while self.pos < len(self.text):
            key = self.key()
            if self.peek() == "=":
                self.pos += 1
                members[key] = self.item_or_inner_list()
            else:
                members[key] = Item(True, self.parameters())
            self.skip(" \t")
            if self.pos >= len(self.text):
                return members
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.pos += 1
            self.skip(" \t")
            if self.pos >= len(self.text):
                raise self.fail("trailing ','")
        return members

    def item_or_inner_list(self) -> Item | InnerList:
        if self.peek() == "(":
            return self.inner_list()
        return Item(self.bare_item(), self.parameters())

    def inner_list(self) -> InnerList:
        self.pos += 1  # "("
        items: list[Item] = []
        while self.pos < len(self.text):
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                return InnerList(tuple(items), self.parameters())
            items.append(Item(self.bare_item(), self.parameters()))
            if self.peek() not in (" ", ")"):
                raise self.fail("expected ' ' or ')' in inner list")
        raise self.fail("unterminated inner list")

    def parameters(self) -> Parameters:
        params: Parameters = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
        return params

    def key(self) -> str:
        start = self.pos
        if not self.peek() or self.peek() not in _KEY_FIRST:
            raise self.fail("expected a key")
        while self.peek() and self.peek() in _KEY_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == "-" or (c and c in _DIGITS):
            return self.number()
        if c == '"':
            return self.string()
        if c == ":":
            return self.byte_sequence()
        if c == "?":
            return self.boolean()
        if c == "*" or (c and c in _ALPHA):
            return self.token()
        raise self.fail("expected an item")

    def number(self) -> int | float:
        start = self.pos
        if self.peek() == "-":
            self.pos += 1
        digits_start = self.pos
        self.skip("0123456789")
        integer_digits = self.pos - digits_start
        if integer_digits == 0:
            raise self.fail("expected a digit")
        if self.peek() != ".":
            if integer_digits > 15:
                raise self.fail("integer too long")
            return int(self.text[start : self.pos])
        if integer_digits > 12:
            raise self.fail("decimal too long")
        self.pos += 1
        fraction_start = self.pos
        self.skip("0123456789")
        if not 1 <= self.pos - fraction_start <= 3:
            raise self.fail("decimal needs 1 to 3 fraction digits")
        return float(self.text[start : self.pos])

    def string(self) -> str:
        self.pos += 1  # '"'
        out: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            self.pos += 1
            if c == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] not in '"\\':
                    raise self.fail("bad escape in string")
                out.append(self.text[self.pos])
                self.pos += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise self.fail("control character in string")
            else:
                out.append(c)
        raise self.fail("unterminated string")

    def token(self) -> Token:
        start = self.pos
        self.pos += 1
        while self.peek() and self.peek() in _TOKEN_CHARS:
            self.pos += 1
        return Token(self.text[start : self.pos])

    def byte_sequence(self) -> bytes:
        self.pos += 1  # ":"
        end = self.text.find(":", self.pos)
        if end < 0:
            raise self.fail("unterminated byte sequence")
        encoded = self.text[self.pos : end]
        if not _BASE64.fullmatch(encoded):
            raise self.fail("byte sequence is not base64")
        self.pos = end + 1
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail("byte sequence is not base64") from None

    def boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in ("0", "1"):
            raise self.fail("expected ?0 or ?1")
        self.pos += 2
        return value == "1"


def parse_dictionary(text: str) -> dict[str, Item | InnerList]:
    """Parse an RFC 8941 Dictionary (several field lines joined with ``", "``)."""
    return _Parser(text).dictionary()


def _serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise StructuredFieldError("decimals are not serialised here")
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode() + ":"
    if isinstance(value, Token):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_params(params: Parameters) -> str:
    return "".join(f";{k}" if v is True else f";{k}={_serialize_bare(v)}" for k, v in params.items())


def serialize_item(item: Item) -> str:
    return _serialize_bare(item.value) + _serialize_params(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    """RFC 8941 §4.1.1.1: ``("a" "b");p=1``."""
    return "(" + " ".join(serialize_item(i) for i in inner.items) + ")" + _serialize_params(inner.params)


# --- RFC 9421: the signature, its base, and the profile's checks ----------------------------


@dataclass(frozen=True, slots=True)
class SignatureInput:
    """One parsed signature: its label, covered components and parameters."""

    label: str
    covered: InnerList

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(str(item.value) for item in self.covered.items)

    def param(self, name: str) -> BareItem | None:
        return self.covered.params.get(name)


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What a signature can cover of the request (RFC 9421 §2.1, §2.2).

    ``fields`` maps lower-case field names to their values, several lines of one field
    already joined with ``", "``. ``authority`` is the host (and a non-default port) the
    client connected to; ``target`` the request target as sent (path and query).
    """

    method: str
    authority: str
    target: str
    fields: Mapping[str, str]

    def derived(self, name: str) -> str:
        if name == "@method":
            return self.method.upper()
        if name == "@authority":
            return normalize_authority(self.authority)
        if name == "@request-target":
            return self.target
        path, _, query = self.target.partition("?")
        if name == "@path":
            return path or "/"
        return "?" + query  # @query: "?" even when empty (RFC 9421 §2.2.7)


def normalize_authority(authority: str) -> str:
    """Lower-case, without a default port (RFC 9421 §2.2.3, RFC 9110 §4.2.3)."""
    value = authority.strip().lower()
    for default in (":80", ":443"):
        if value.endswith(default):
            return value[: -len(default)]
    return value


def _canonical_field(value: str) -> str:
    # RFC 9421 §2.1: strip leading and trailing whitespace, obsolete line folding to a space.
    return re.sub(r"[ \t]*\r\n[ \t]+", " ", value).strip(" \t")


def parse_signature_headers(signature_input: str, signature: str) -> tuple[SignatureInput, bytes]:
    """The one signature in ``Signature-Input`` / ``Signature`` (several are refused)."""
    inputs = parse_dictionary(signature_input)
    signatures = parse_dictionary(signature)
    if len(inputs) != 1 or len(signatures) != 1:
        raise SignatureError("exactly one signature is expected")
    (label, covered), = inputs.items()
    mac = signatures.get(label)
    if mac is None:
        raise SignatureError(f"no Signature for the label {label!r}")
    if not isinstance(covered, InnerList):
        raise SignatureError("Signature-Input must be an inner list of components")
    if not isinstance(mac, Item) or not isinstance(mac.value, bytes) or mac.params:
        raise SignatureError("Signature must be a byte sequence")
    for item in covered.items:
        if type(item.value) is not str:
            raise SignatureError("covered components must be strings")
        if item.params:
            raise SignatureError("component parameters are not supported")
    return SignatureInput(label, covered), mac.value


def signature_base(sig: SignatureInput, request: RequestParts) -> bytes:
    """RFC 9421 §2.5: one line per covered component, then ``"@signature-params"``."""
    lines: list[str] = []
    seen: set[str] = set()
    for name in sig.components:
        if name in seen:
            raise SignatureError(f"component {name!r} is covered twice")
        seen.add(name)
        if name.startswith("@"):
            if name not in DERIVED_COMPONENTS:
                raise SignatureError(f"derived component {name!r} is not supported")
            value = request.derived(name)
        else:
            if name != name.lower() or name in ("signature", "signature-input"):
                raise SignatureError(f"component {name!r} cannot be covered")
            raw = request.fields.get(name)
            if raw is None:
                raise SignatureError(f"covered header {name!r} is not in the request")
            value = _canonical_field(raw)
        if "\n" in value or "\r" in value:
            raise SignatureError(f"component {name!r} has a line break")
        lines.append(f"{_serialize_bare(name)}: {value}")
    lines.append(f'"@signature-params": {serialize_inner_list(sig.covered)}')
    # Field values are ASCII in practice; anything else is hashed as UTF-8 (and will not match).
    return "\n".join(lines).encode("utf-8", "replace")


def _int_param(sig: SignatureInput, name: str, *, required: bool) -> int | None:
    value = sig.param(name)
    if value is None:
        if required:
            raise SignatureError(f"the signature has no {name!r} parameter")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SignatureError(f"the signature's {name!r} must be a non-negative integer")
    return value


def _str_param(sig: SignatureInput, name: str) -> str | None:
    value = sig.param(name)
    if value is None:
        return None
    if type(value) is not str:
        raise SignatureError(f"the signature's {name!r} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: the nonce to remember and until when it matters."""

    keyid: str
    nonce: str
    valid_until: float


def verify(
    sig: SignatureInput,
    mac: bytes,
    request: RequestParts,
    *,
    secret: bytes,
    api_key: str,
    now: float,
    required: tuple[str, ...] = REQUIRED_COMPONENTS,
) -> Verified:
    """Check one signature under the AudioHook profile; raise ``SignatureError`` if wrong.

    The caller then records ``Verified.nonce`` in a ``NonceCache`` (only a verified nonce is
    remembered, so a forger cannot fill the cache).
    """
    for name in sig.covered.params:
        if name not in ("alg", "created", "expires", "keyid", "nonce", "tag"):
            raise SignatureError(f"unknown signature parameter {name!r}")
    alg = _str_param(sig, "alg")
    if alg is not None and alg != "hmac-sha256":
        raise SignatureError(f"signature algorithm {alg!r} is not supported")
    keyid = _str_param(sig, "keyid")
    if keyid is None or not hmac.compare_digest(keyid.encode(), api_key.encode()):
        raise SignatureError("the signature's keyid is not the X-API-KEY sent")
    created = _int_param(sig, "created", required=True)
    expires = _int_param(sig, "expires", required=False)
    assert created is not None
    if created > now + MAX_CLOCK_SKEW_S:
        raise SignatureError("the signature was created in the future")
    valid_until = float(created + MAX_SIGNATURE_AGE_S)
    if expires is not None:
        if expires < created:
            raise SignatureError("the signature expires before it was created")
        valid_until = min(valid_until, float(expires))
    if now > valid_until + MAX_CLOCK_SKEW_S:
        raise SignatureError("the signature has expired")
    nonce = _str_param(sig, "nonce")
    if nonce is None or not MIN_NONCE_LENGTH <= len(nonce) <= MAX_NONCE_LENGTH:
        raise SignatureError(f"the signature needs a nonce of {MIN_NONCE_LENGTH} to {MAX_NONCE_LENGTH} characters")
    covered = set(sig.components)
    missing = [name for name in required if name not in covered]
    if missing:
        raise SignatureError(f"the signature does not cover {', '.join(missing)}")
    expected = hmac.new(secret, signature_base(sig, request), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SignatureError("the signature does not match")
    return Verified(keyid, nonce, valid_until + MAX_CLOCK_SKEW_S)


class NonceCache:
    """Nonces seen in signatures still valid: each may be used once (RFC 9421 §7.2.2).

    Memory is bounded by ``max_entries``; entries leave once their signature could no longer
    verify anyway. When full of live nonces, new ones are refused (429) rather than old ones
    forgotten, which would let them be replayed.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def use(self, key: str, nonce: str, until: float, now: float) -> None:
        """Record ``nonce`` (scoped by ``key``) until ``until``; raise if already used."""
        self._prune(now)
        entry = f"{key}\x00{nonce}"
        if entry in self._until:
            raise SignatureError("the signature's nonce was already used")
        if len(self._until) >= self.max_entries:
            self._prune(now, everything=True)
            if len(self._until) >= self.max_entries:
                raise TooManyRequests("too many signed connections at once", code="nonce_cache_full")
        self._until[entry] = until

    def _prune(self, now: float, *, everything: bool = False) -> None:
        # Entries are added in about the order they expire (lifetimes share one bound), so
        # looking at the oldest is enough; a full cache is swept completely.
        if everything:
            for entry in [e for e, until in self._until.items() if until < now]:
                del self._until[entry]
            return
        while self._until:
            entry, until = next(iter(self._until.items()))
            if until >= now:
                return
            del self._until[entry]

"""SDP (RFC 8866, formerly 4566) offers from recording clients, and our answers (RFC 3264).

Lenient where vendors differ (unknown lines and attributes are kept or skipped, CRLF or LF),
strict where a mistake would misroute media: an ``m=`` line must parse, ports are 0..65535,
an ``a=crypto`` line must carry a key of the right length (RFC 4568). At most 32 media
descriptions and 64 KiB. Syntax errors are ``SdpError`` 400, unusable offers 488.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SipError

MAX_SDP = 64 * 1024
MAX_MEDIA = 32
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 §6: static payload types (those a recording client may send without a=rtpmap).
STATIC_PAYLOADS: dict[int, str] = {
    0: "PCMU/8000", 3: "GSM/8000", 4: "G723/8000", 8: "PCMA/8000", 9: "G722/8000",
    13: "CN/8000", 18: "G729/8000",
}  # fmt: skip
# Master key || master salt lengths in bytes: RFC 4568 §6.2, RFC 6188 §7, RFC 7714 §12.
KEY_SALT_LENGTHS: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30, "F8_128_HMAC_SHA1_80": 30,
    "AES_192_CM_HMAC_SHA1_80": 38, "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46, "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
}  # fmt: skip
_SAFE = re.compile(r"[^\s\x00-\x1f\x7f]+")
_PT = re.compile(r"[0-9]{1,3}")
_LIFETIME = re.compile(r"(?:2\^[0-9]{1,2}|[0-9]{1,20})")
_MKI = re.compile(r"[0-9]{1,20}:[0-9]{1,3}")


class SdpError(SipError):
    """An SDP body we cannot use: 488 Not Acceptable Here unless it is plain bad syntax."""

    code = "sdp_error"

    def __init__(self, message: str, *, status: int = 488, **fields: Any) -> None:
        super().__init__(message, status=status, **fields)


def _inline_key(key_params: str) -> bytes:
    """RFC 4568 §9.2: ``inline:<base64 key||salt>[|lifetime][|MKI:length]``, ``;``-separated."""
    keys: list[bytes] = []
    for param in key_params.split(";"):
        method, colon, info = param.partition(":")
        if method.lower() != "inline" or not colon:
            raise SdpError(f"unsupported crypto key method {method[:20]!r}")
        key, *extras = info.split("|")
        if len(extras) > 2 or any(
            not (_LIFETIME.fullmatch(x) or _MKI.fullmatch(x)) for x in extras
        ):
            raise SdpError("malformed crypto key lifetime or MKI")
        try:
            keys.append(base64.b64decode(key, validate=True))
        except (binascii.Error, ValueError):
            raise SdpError("crypto key is not valid base64") from None
    return keys[0]


@dataclass(frozen=True, slots=True)
class Crypto:
    """An SDES ``a=crypto`` attribute (RFC 4568). ``key_salt`` is the first inline key
    decoded; constructing a ``Crypto`` validates it (length checked for known suites)."""

    tag: int
    suite: str
    key_params: str
    session_params: str = ""
    key_salt: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 999_999_999 or not _SAFE.fullmatch(self.suite):
            raise SdpError(f"malformed crypto tag {self.tag} or suite {self.suite[:40]!r}")
        if not _SAFE.fullmatch(self.key_params):
            raise SdpError("malformed crypto key parameters")
        if self.session_params and not re.fullmatch(r"[^\x00-\x1f\x7f]+", self.session_params):
            raise SdpError("malformed crypto session parameters")
        key_salt = _inline_key(self.key_params)
        expected = KEY_SALT_LENGTHS.get(self.suite.upper())
        if (expected is not None and len(key_salt) != expected) or not key_salt:
            raise SdpError(
                f"{self.suite} needs a {expected}-byte key and salt, got {len(key_salt)}"
            )
        object.__setattr__(self, "key_salt", key_salt)

    @classmethod
    def from_key(cls, tag: int, suite: str, key_salt: bytes) -> Crypto:
        """Our own ``a=crypto`` for an answer: ``key_salt`` from ``os.urandom``."""
        return cls(tag, suite, "inline:" + base64.b64encode(key_salt).decode())

    @property
    def value(self) -> str:
        """The attribute value, as in ``a=crypto:<value>``."""
        tail = f" {self.session_params}" if self.session_params else ""
        return f"{self.tag} {self.suite} {self.key_params}{tail}"


def parse_crypto(value: str) -> Crypto:
    """``1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:32`` → ``Crypto``. Raises ``SdpError``."""
    tokens = value.split()
    if len(tokens) < 3 or not re.fullmatch(r"[0-9]{1,9}", tokens[0]):
        raise SdpError(f"malformed a=crypto {value[:80]!r}")
    return Crypto(int(tokens[0]), tokens[1], tokens[2], " ".join(tokens[3:]))


@dataclass(frozen=True, slots=True)
class MediaDescription:
    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    rtpmap: dict[int, str]
    label: str
    direction: str
    connection: str
    crypto: tuple[Crypto, ...]
    attributes: tuple[tuple[str, str], ...]
    ptime: int | None

    @property
    def secure(self) -> bool:
        return "SAVP" in self.proto.upper()


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: str
    session_name: str
    connection: str
    media: tuple[MediaDescription, ...]
    attributes: tuple[tuple[str, str], ...]


def _connection(value: str) -> str:
    tokens = value.split()
    if len(tokens) != 3 or tokens[0].upper() != "IN" or tokens[1].upper() not in ("IP4", "IP6"):
        raise SdpError(f"malformed c= line {value[:80]!r}", status=400)
    return tokens[2].split("/")[0]  # drop a multicast TTL / address count


def _attribute(attributes: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in attributes if key.lower() == name), None)


def _direction(attributes: list[tuple[str, str]]) -> str | None:
    found = [key.lower() for key, _ in attributes if key.lower() in DIRECTIONS]
    return found[-1] if found else None


def _ptime(attributes: list[tuple[str, str]]) -> int | None:
    value = (_attribute(attributes, "ptime") or "").strip()
    return int(value) if re.fullmatch(r"[0-9]{1,4}", value) else None


@dataclass
class _Block:
    m_line: str
    connection: str = ""
    attributes: list[tuple[str, str]] = field(default_factory=list)


def _media(block: _Block, session: _Block) -> MediaDescription:
    tokens = block.m_line.split()
    port = re.fullmatch(r"([0-9]{1,5})(?:/[0-9]{1,5})?", tokens[1]) if len(tokens) >= 4 else None
    if port is None or int(port.group(1)) > 65535 or not _SAFE.fullmatch(tokens[0]):
        raise SdpError(f"malformed m= line {block.m_line[:80]!r}", status=400)
    rtpmap: dict[int, str] = {}
    for key, value in block.attributes:
        pt, _, encoding = value.strip().partition(" ")
        if key.lower() == "rtpmap" and _PT.fullmatch(pt) and encoding.strip():
            rtpmap.setdefault(int(pt), encoding.strip())
    if "RTP" in tokens[2].upper():
        for fmt in tokens[3:]:
            if _PT.fullmatch(fmt) and int(fmt) in STATIC_PAYLOADS:
                rtpmap.setdefault(int(fmt), STATIC_PAYLOADS[int(fmt)])
    crypto = tuple(parse_crypto(v) for k, v in block.attributes if k.lower() == "crypto")
    return MediaDescription(
        kind=tokens[0].lower(),
        port=int(port.group(1)),
        proto=tokens[2],
        formats=tuple(tokens[3:]),
        rtpmap=rtpmap,
        label=(_attribute(block.attributes, "label") or "").strip(),
        direction=_direction(block.attributes) or _direction(session.attributes) or "sendrecv",
        connection=block.connection or session.connection,
        crypto=crypto,
        attributes=tuple(block.attributes),
        ptime=next((p for p in (_ptime(block.attributes), _ptime(session.attributes)) if p), None),
    )


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP body. Raises ``SdpError`` (a ``SipError``)."""
    if len(text) > MAX_SDP:
        raise SdpError(f"SDP of {len(text)} bytes exceeds {MAX_SDP}", status=413)
    if isinstance(text, str):
        decoded = text
    else:
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            decoded = text.decode("latin-1")
    session = _Block("")
    blocks: list[_Block] = []
    origin = name = ""
    has_version = False
    for raw in decoded.split("\n"):
        line = raw.rstrip(" \t\r")
        if len(line) < 2 or line[1] != "=":
            continue  # lenient: not an SDP line, ignore
        kind, value = line[0], line[2:]
        current = blocks[-1] if blocks else session
        if kind == "v":
            has_version = True
        elif kind == "m":
            if len(blocks) >= MAX_MEDIA:
                raise SdpError(f"more than {MAX_MEDIA} media descriptions")
            blocks.append(_Block(value))
        elif kind == "c":
            current.connection = _connection(value)
        elif kind == "a":
            key, _, attr = value.partition(":")
            current.attributes.append((key.strip(), attr.strip()))
        elif kind == "o" and not blocks:
            origin = value.strip()
        elif kind == "s" and not blocks:
            name = value.strip()
    if not has_version:
        raise SdpError("not an SDP body: no v= line", status=400)
    return SessionDescription(
        origin=origin,
        session_name=name,
        connection=session.connection,
        media=tuple(_media(block, session) for block in blocks),
        attributes=tuple(session.attributes),
    )


def choose_codec(media: MediaDescription) -> tuple[int, str] | None:
    """The first offered format that is G.711 (``PCMU``/``PCMA``, 8000 Hz, mono), by static
    payload type or ``a=rtpmap`` name (case-insensitive); ``None`` when there is none."""
    for fmt in media.formats:
        if not _PT.fullmatch(fmt) or int(fmt) not in media.rtpmap:
            continue
        encoding, _, rest = media.rtpmap[int(fmt)].partition("/")
        clock, _, channels = rest.partition("/")
        if encoding.upper() in ("PCMU", "PCMA") and clock == "8000" and channels in ("", "1"):
            return int(fmt), encoding.upper()
    return None


@dataclass(frozen=True, slots=True)
class AnswerStream:
    """Our side of one offered stream. ``port=0`` or ``payload_type=None`` rejects it."""

    port: int
    payload_type: int | None
    encoding: str = "PCMU"
    direction: str = "recvonly"
    label: str = ""
    crypto: Crypto | None = None

    @classmethod
    def rejected(cls) -> AnswerStream:
        return cls(0, None)


def _safe(value: str, what: str) -> str:
    if not _SAFE.fullmatch(value):
        raise ValueError(f"{what} {value!r} is empty or contains whitespace/control characters")
    return value


def build_answer(
    offer: SessionDescription,
    streams: list[AnswerStream],
    *,
    address: str,
    session_id: int,
    session_version: int,
) -> str:
    """An RFC 3264 §6 answer: one m= line per offered one, in order, same proto; a rejected
    stream is port 0 with the offered formats. CRLF line endings."""
    if len(streams) != len(offer.media):
        raise ValueError(f"{len(streams)} answer streams for {len(offer.media)} offered")
    if session_id < 0 or session_version < 0:
        raise ValueError("session id and version must not be negative")
    family = "IP6" if ":" in _safe(address, "address") else "IP4"
    lines = [
        "v=0",
        f"o=- {session_id} {session_version} IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    for offered, stream in zip(offer.media, streams):
        if stream.port == 0 or stream.payload_type is None:
            lines.append(f"m={offered.kind} 0 {offered.proto} {' '.join(offered.formats)}")
            continue
        if not 0 < stream.port <= 65535 or not 0 <= stream.payload_type <= 127:
            raise ValueError(f"bad port {stream.port} or payload type {stream.payload_type}")
        if stream.direction not in DIRECTIONS:
            raise ValueError(f"bad direction {stream.direction!r}")
        pt = stream.payload_type
        lines.append(f"m={offered.kind} {stream.port} {offered.proto} {pt}")
        lines.append(f"a=rtpmap:{pt} {_safe(stream.encoding, 'encoding')}/8000")
        if offered.ptime is not None:
            lines.append("a=ptime:20")
        label = stream.label or offered.label
        if label:
            lines.append(f"a=label:{_safe(label, 'label')}")
        lines.append(f"a={stream.direction}")
        if stream.crypto is not None:
            lines.append(f"a=crypto:{stream.crypto.value}")
    return "\r\n".join(lines) + "\r\n"

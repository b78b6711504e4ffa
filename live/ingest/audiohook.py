"""Genesys Cloud AudioHook, protocol version 2: the messages, parsed and built (pure).

Text messages are JSON objects ``{version: "2", id, type, seq, parameters}``; the client's
add ``serverseq`` (the last server ``seq`` it saw) and ``position`` (an ISO 8601 duration such
as ``PT1.2S``: how much of the stream has passed, audio sent plus audio discarded), the
server's add ``clientseq`` (the last client ``seq`` we saw). Audio comes as binary frames of
interleaved samples in the channel order ``opened`` selected.

Client to server: ``open``, ``ping``, ``paused``, ``resumed``, ``update``, ``discarded``,
``error``, ``close``. Server to client: ``opened``, ``pong``, ``pause``, ``resume``,
``updated``, ``disconnect``, ``reconnect``, ``closed`` (and ``event``, which ``live`` does not
send: it returns nothing to the telephony).

Strictness: the envelope (version, id, type, seq, serverseq, position, parameters) and the
parameters of the types above are checked; a violation raises ``ProtocolError`` and the
session ends with ``disconnect`` (reason ``error``). Lenient where vendors and versions
differ: unknown message types are returned as ``Unknown`` (the session counts and ignores
them), unknown keys are ignored, offered media ``live`` cannot forward are kept and simply
not selected, ``participant`` fields may be missing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ProtocolError
from ..types import LegName

VERSION = "2"
NULL_UUID = "00000000-0000-0000-0000-000000000000"  # conversationId of a connection probe
MAX_TEXT_CHARS = 65535  # the reference server refuses longer text messages too

# ``external`` is the customer (what the phone network sends in), ``internal`` the agent.
CHANNEL_TO_LEG: dict[str, LegName] = {"external": "caller", "internal": "agent"}
SAMPLE_WIDTH = {"PCMU": 1, "L16": 2}
SUPPORTED_RATES = {"PCMU": (8000,), "L16": (8000, 16000)}

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# ISO 8601 durations as AudioHook uses them: seconds (``PT12.345S``); hours and minutes are
# accepted too. Digit counts are bounded so a hostile value cannot become a huge number.
_DURATION = re.compile(r"PT(?:(\d{1,6})H)?(?:(\d{1,8})M)?(?:(\d{0,12})(?:\.(\d{1,12}))?S)?")

CloseReason = Literal["end", "error", "disconnect", "reconnect"]
DisconnectReason = Literal["completed", "unauthorized", "error"]


def parse_duration(value: Any, name: str = "duration") -> int:
    """An ISO 8601 duration (``PT1.2S``, ``PT.5S``, ``PT1M2S``) in nanoseconds.

    Raises ``ProtocolError``. Fractions beyond nanoseconds are cut off."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ProtocolError(f"{name} must be an ISO 8601 duration such as PT1.2S")
    hours, minutes, seconds, fraction = match.groups()
    if hours is None and minutes is None and not seconds and fraction is None:
        raise ProtocolError(f"{name} must be an ISO 8601 duration such as PT1.2S")  # "PT", "PTS"
    total = (int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) * 1_000_000_000
    if fraction:
        total += int(fraction[:9].ljust(9, "0"))
    return total


def format_duration(ns: int) -> str:
    """Nanoseconds as ``PT<seconds>S`` with no more decimals than needed (``PT1.2S``)."""
    seconds, rest = divmod(max(ns, 0), 1_000_000_000)
    if not rest:
        return f"PT{seconds}S"
    return f"PT{seconds}.{str(rest).rjust(9, '0').rstrip('0')}S"


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """One entry of ``open.parameters.media``."""

    format: str
    channels: tuple[str, ...]
    rate: int
    type: str = "audio"

    @property
    def supported(self) -> bool:
        """Whether ``live`` can forward it: PCMU at 8 kHz or L16 at 8/16 kHz, channels
        ``external`` and/or ``internal`` each at most once."""
        return (
            self.type == "audio"
            and self.rate in SUPPORTED_RATES.get(self.format, ())
            and 1 <= len(self.channels) <= 2
            and len(set(self.channels)) == len(self.channels)
            and all(c in CHANNEL_TO_LEG for c in self.channels)
        )

    @property
    def legs(self) -> tuple[LegName, ...]:
        return tuple(CHANNEL_TO_LEG[c] for c in self.channels)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample on every channel: a binary frame is a whole number of these."""
        return SAMPLE_WIDTH[self.format] * len(self.channels)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "format": self.format, "channels": list(self.channels), "rate": self.rate}


def select_media(offered: tuple[MediaFormat, ...]) -> MediaFormat | None:
    """The one offered entry to select: both channels before one, PCMU (forwarded as it is)
    before L16 (encoded once per leg), otherwise the client's order."""
    candidates = [m for m in offered if m.supported]
    if not candidates:
        return None
    return max(candidates, key=lambda m: (len(m.channels), m.format == "PCMU"))


@dataclass(frozen=True, slots=True)
class ContinuedSession:
    id: str
    serverseq: int
    clientseq: int


@dataclass(frozen=True, slots=True)
class Open:
    organization_id: str
    conversation_id: str
    participant: dict[str, str]
    media: tuple[MediaFormat, ...]
    language: str = ""
    custom_config: dict[str, str] = field(default_factory=dict)
    continued_sessions: tuple[ContinuedSession, ...] = ()

    @property
    def probe(self) -> bool:
        return self.conversation_id == NULL_UUID

    @property
    def call_id(self) -> str:
        """The conversation id, lower-case: the same call whichever session spells it."""
        return self.conversation_id.lower()


@dataclass(frozen=True, slots=True)
class Ping:
    rtt_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Paused:
    pass


@dataclass(frozen=True, slots=True)
class Resumed:
    start_ns: int
    discarded_ns: int


@dataclass(frozen=True, slots=True)
class Update:
    language: str = ""


@dataclass(frozen=True, slots=True)
class Discarded:
    start_ns: int
    discarded_ns: int


@dataclass(frozen=True, slots=True)
class ClientError:
    code: int
    message: str
    retry_after_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Close:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    type: str


Body = Open | Ping | Paused | Resumed | Update | Discarded | ClientError | Close | Unknown


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One client text message: the envelope and its typed ``body``."""

    id: str
    type: str
    seq: int
    serverseq: int
    position_ns: int
    body: Body


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be an object")
    return value


def _seq(value: Any, name: str) -> int:
    # JSON numbers only (no strings, no booleans, no fractions): the protocol's SequenceNumber.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ProtocolError(f"{name} must be a non-negative integer")
    return value


def _uuid(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ProtocolError(f"{name} must be a UUID")
    return value  # as sent: echoed back as it came; compared without regard to case


def _str(value: Any, name: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string")
    return value


def _scalars(value: Any, name: str) -> dict[str, str]:
    """A JSON object's scalar members as strings (nested objects and lists are left out)."""
    if value is None:
        return {}
    obj = _obj(value, name)
    out: dict[str, str] = {}
    for key, item in obj.items():
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        elif isinstance(item, (str, int, float)):
            out[str(key)] = str(item)
    return out


def _media(value: Any) -> tuple[MediaFormat, ...]:
    if not isinstance(value, list):
        raise ProtocolError("open.parameters.media must be a list")
    offered: list[MediaFormat] = []
    for i, entry in enumerate(value[:16]):
        entry = _obj(entry, f"media[{i}]")
        channels = entry.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ProtocolError(f"media[{i}].channels must be a list of strings")
        rate = entry.get("rate", 8000)
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise ProtocolError(f"media[{i}].rate must be an integer")
        offered.append(
            MediaFormat(
                format=_str(entry.get("format"), f"media[{i}].format"),
                channels=tuple(channels[:8]),
                rate=rate,
                type=_str(entry.get("type"), f"media[{i}].type", "audio"),
            )
        )
    return tuple(offered)


def _continued(value: Any) -> tuple[ContinuedSession, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ProtocolError("open.parameters.continuedSessions must be a list")
    sessions = []
    for i, entry in enumerate(value[:16]):
        entry = _obj(entry, f"continuedSessions[{i}]")
        sessions.append(
            ContinuedSession(
                id=_uuid(entry.get("id"), f"continuedSessions[{i}].id"),
                serverseq=_seq(entry.get("serverseq", 0), f"continuedSessions[{i}].serverseq"),
                clientseq=_seq(entry.get("clientseq", 0), f"continuedSessions[{i}].clientseq"),
            )
        )
    return tuple(sessions)


def _open(p: dict[str, Any]) -> Open:
    participant = p.get("participant")
    return Open(
        organization_id=_uuid(p.get("organizationId"), "open.parameters.organizationId"),
        conversation_id=_uuid(p.get("conversationId"), "open.parameters.conversationId"),
        participant=_scalars(participant, "open.parameters.participant"),
        media=_media(p.get("media")),
        language=_str(p.get("language"), "open.parameters.language"),
        custom_config=_scalars(p.get("customConfig"), "open.parameters.customConfig"),
        continued_sessions=_continued(p.get("continuedSessions")),
    )


def _body(kind: str, p: dict[str, Any]) -> Body:
    if kind == "open":
        return _open(p)
    if kind == "ping":
        rtt = p.get("rtt")
        return Ping(None if rtt is None else parse_duration(rtt, "ping.parameters.rtt"))
    if kind == "paused":
        return Paused()
    if kind in ("resumed", "discarded"):
        start = parse_duration(p.get("start"), f"{kind}.parameters.start")
        discarded = parse_duration(p.get("discarded"), f"{kind}.parameters.discarded")
        return Resumed(start, discarded) if kind == "resumed" else Discarded(start, discarded)
    if kind == "update":
        return Update(_str(p.get("language"), "update.parameters.language"))
    if kind == "error":
        code = p.get("code")
        if isinstance(code, bool) or not isinstance(code, int):
            raise ProtocolError("error.parameters.code must be an integer")
        retry = p.get("retryAfter")
        return ClientError(
            code,
            _str(p.get("message"), "error.parameters.message")[:500],
            None if retry is None else parse_duration(retry, "error.parameters.retryAfter"),
        )
    if kind == "close":
        reason = _str(p.get("reason"), "close.parameters.reason", "end")
        return Close(reason if reason in ("end", "error", "disconnect", "reconnect") else "end")
    return Unknown(kind[:64])


def parse_message(text: str | bytes) -> ClientMessage:
    """Parse one client text message. Raises ``ProtocolError``."""
    if len(text) > MAX_TEXT_CHARS:
        raise ProtocolError(f"text message of {len(text)} characters is too long")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"malformed JSON: {str(exc)[:80]}") from None
    data = _obj(data, "message")
    if data.get("version") != VERSION:
        raise ProtocolError(f"unsupported protocol version {str(data.get('version'))[:20]!r}")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("message has no type")
    return ClientMessage(
        id=_uuid(data.get("id"), "id"),
        type=kind[:64],
        seq=_seq(data.get("seq"), "seq"),
        serverseq=_seq(data.get("serverseq"), "serverseq"),
        position_ns=parse_duration(data.get("position"), "position"),
        body=_body(kind, _obj(data.get("parameters"), "parameters")),
    )


def server_message(
    kind: str, session_id: str, seq: int, clientseq: int, parameters: dict[str, Any] | None = None
) -> str:
    """One server text message (``opened``, ``pong``, ``pause``, ``resume``, ``updated``,
    ``disconnect``, ``reconnect``, ``closed``) as JSON."""
    return json.dumps(
        {
            "version": VERSION,
            "type": kind,
            "id": session_id,
            "seq": seq,
            "clientseq": clientseq,
            "parameters": parameters or {},
        },
        separators=(",", ":"),
    )

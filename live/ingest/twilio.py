"""Twilio Media Streams (WebSocket, JSON): parsing and the per-socket state machine.

Messages (Twilio "Media Streams - WebSocket Messages"): ``connected``, ``start``, ``media``,
``dtmf``, ``mark``, ``stop``. Numbers such as ``sequenceNumber``, ``chunk`` and ``timestamp``
arrive as JSON strings. ``inbound`` is what the phone network sends in (the caller),
``outbound`` the agent side. Audio is base64 μ-law, 8 kHz mono, usually 160 bytes = 20 ms.

Strictness: structural violations (not JSON, not an object, media before ``start``, a
second ``start``, an unsupported media format) end the socket with a 4400 close code and the
reason. Damaged media frames after ``start`` (bad base64, a size that is not whole
samples of a sane frame) are dropped and counted, and the call goes on: one bad frame must not
cut a supervisor off. Unknown events are ignored and counted (vendors add their own).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ProtocolError
from ..media.hub import PACKET_SAMPLES, CallMedia
from ..types import CallId, Consent, LegName
from .sink import CallAnnouncement, CallSink

MAX_MEDIA_BYTES = 8000  # one second of μ-law: far more than any real frame
TRACK_TO_LEG: dict[str, LegName] = {"inbound": "caller", "outbound": "agent"}


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Media:
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    event: str


TwilioMessage = Connected | Start | Media | Dtmf | Mark | Stop | Unknown


class MediaError(ProtocolError):
    """A media frame was damaged; it is dropped, the stream goes on."""

    code = "bad_media"


def _int(value: Any, name: str, *, error: type[ProtocolError] = ProtocolError) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
        raise error(f"{name} is not a number: {value!r}") from None


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be an object")
    return value


def parse_message(text: str | bytes) -> TwilioMessage:
    """Parse one WebSocket text message. Raises ``ProtocolError`` / ``MediaError``."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    data = _obj(data, "message")
    event = data.get("event")
    if not isinstance(event, str):
        raise ProtocolError("message has no event")
    if event == "media":
        media = data.get("media")
        if not isinstance(media, dict):
            raise MediaError("media message without media object")
        track = media.get("track", "inbound")
        if not isinstance(track, str) or track not in TRACK_TO_LEG:
            raise MediaError(f"unknown media track {track!r}")
        raw = media.get("payload")
        if not isinstance(raw, str):
            raise MediaError("media payload must be a base64 string")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise MediaError("media payload is not valid base64") from None
        if not payload or len(payload) > MAX_MEDIA_BYTES:
            raise MediaError(f"media payload of {len(payload)} bytes is outside 1..{MAX_MEDIA_BYTES}")
        return Media(
            track=track,
            chunk=_int(media.get("chunk", 0), "media.chunk", error=MediaError),
            timestamp_ms=_int(media.get("timestamp", 0), "media.timestamp", error=MediaError),
            payload=payload,
        )
    if event == "connected":
        return Connected(str(data.get("protocol", "")), str(data.get("version", "")))
    if event == "start":
        start = _obj(data.get("start"), "start")
        fmt = _obj(start.get("mediaFormat", {}), "start.mediaFormat")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError("start.customParameters must be an object")
        tracks = start.get("tracks", ["inbound"])
        if not isinstance(tracks, list):
            raise ProtocolError("start.tracks must be a list")
        call_sid = start.get("callSid")
        if not isinstance(call_sid, str) or not call_sid.strip():
            raise ProtocolError("start.callSid is required")
        return Start(
            stream_sid=str(start.get("streamSid") or data.get("streamSid") or ""),
            call_sid=call_sid.strip(),
            account_sid=str(start.get("accountSid", "")),
            tracks=tuple(str(t) for t in tracks),
            encoding=str(fmt.get("encoding", "audio/x-mulaw")),
            sample_rate=_int(fmt.get("sampleRate", 8000), "start.mediaFormat.sampleRate"),
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )
    if event == "dtmf":
        dtmf = data.get("dtmf")
        dtmf = dtmf if isinstance(dtmf, dict) else {}
        return Dtmf(str(dtmf.get("track", "")), str(dtmf.get("digit", "")))
    if event == "mark":
        mark = data.get("mark")
        mark = mark if isinstance(mark, dict) else {}
        return Mark(str(mark.get("name", "")))
    if event == "stop":
        return Stop("stop")
    return Unknown(event)


StreamState = Literal["new", "started", "stopped"]


class TwilioStream:
    """One Media Streams WebSocket: feeds a ``CallSink`` from parsed messages.

    Payloads are cut into 20 ms packets per leg (a sender may batch); the RTP timestamp of a
    packet follows Twilio's ``media.timestamp`` (ms since stream start), so gaps the network
    caused stay gaps instead of being squeezed out.
    """

    def __init__(self, sink: CallSink, *, source: str = "twilio") -> None:
        self.sink = sink
        self.source = source
        self.state: StreamState = "new"
        self.call_id: CallId | None = None
        self.media: CallMedia | None = None
        self.rejected_frames = 0
        self.ignored_events = 0
        self.dtmf_digits = 0
        self._pending: dict[LegName, bytes] = {"agent": b"", "caller": b""}

    async def handle_text(self, text: str | bytes, arrived_ns: int) -> None:
        try:
            message = parse_message(text)
        except MediaError:
            if self.state == "new":
                raise ProtocolError("media before start") from None
            self.rejected_frames += 1
            return
        if isinstance(message, Media):
            if self.state == "new":
                raise ProtocolError("media before start")
            if self.state == "started":
                self._feed(message, arrived_ns)
        elif isinstance(message, Start):
            await self._start(message)
        elif isinstance(message, Stop):
            await self.close()
        elif isinstance(message, Dtmf):
            self.dtmf_digits += 1
        elif isinstance(message, Unknown):
            self.ignored_events += 1

    def _feed(self, message: Media, arrived_ns: int) -> None:
        assert self.media is not None
        leg = TRACK_TO_LEG[message.track]
        source = self.media.leg(leg)
        data = self._pending[leg] + message.payload
        pts = message.timestamp_ms * 8 - len(self._pending[leg])
        offset = 0
        while len(data) - offset >= PACKET_SAMPLES:
            source.publish(data[offset : offset + PACKET_SAMPLES], max(pts + offset, 0), arrived_ns)
            offset += PACKET_SAMPLES
        self._pending[leg] = data[offset:]

    async def _start(self, message: Start) -> None:
        if self.state != "new":
            raise ProtocolError("a second start on one stream")
        if message.encoding not in ("audio/x-mulaw", "audio/pcmu", "audio/PCMU"):
            raise ProtocolError(f"unsupported media encoding {message.encoding!r}")
        if message.sample_rate != 8000:
            raise ProtocolError(f"unsupported sample rate {message.sample_rate}")
        params = message.custom_parameters
        agent = params.get("agent") or params.get("agent_id") or ""
        announcement = CallAnnouncement(
            call_id=CallId(message.call_sid),
            source=self.source,
            agent_id=agent,
            consent=Consent.parse(params.get("consent")),
            codec="PCMU",
            queue=params.get("queue", ""),
            private=params.get("private", "").lower() in ("1", "true", "yes"),
            attributes={
                k: v for k, v in params.items() if k not in ("agent", "agent_id", "consent", "queue", "private", "secret")
            },
        )
        self.media = await self.sink.call_started(announcement)
        self.call_id = announcement.call_id
        self.state = "started"

    async def close(self) -> None:
        """End the call (on ``stop`` or when the socket goes away); safe to call twice."""
        if self.state == "started" and self.call_id is not None:
            self.state = "stopped"
            await self.sink.call_ended(self.call_id)
        self.state = "stopped"

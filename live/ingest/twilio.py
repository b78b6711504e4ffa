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

Split streams: ``<Stream track="inbound_track">`` and ``<Stream track="outbound_track">``
arrive as two sockets with one ``callSid``; ``start.tracks`` says which track each carries.
They are one call with two legs (``joined.JoinedCalls``); a stream with one track leaves the
other leg marked as not sent. Media of a track the ``start`` did not list is dropped and
counted; a ``start`` without ``tracks`` (not Twilio, but some senders) takes each leg when
its first media arrives, unless another stream of the call sends it.

Order: WebSocket delivery is ordered, but senders (and proxies that retry) are not always;
``ChunkOrder`` puts each track back in ``chunk`` order within a window of a few messages and
drops what comes later than that, so a listener's RTP timestamps never step back.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ProtocolError
from ..media.hub import PACKET_SAMPLES, CallMedia
from ..types import LEGS, CallId, Consent, LegName
from .joined import JoinedCalls, LegFeed
from .sink import CallAnnouncement, CallSink

MAX_MEDIA_BYTES = 8000  # one second of μ-law: far more than any real frame
TRACK_TO_LEG: dict[str, LegName] = {"inbound": "caller", "outbound": "agent"}
REORDER_WINDOW = 3  # media messages held per track while an earlier chunk is missing


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
        tracks = start.get("tracks", [])  # absent: the tracks are found from the media
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


class ChunkOrder:
    """One track's media messages back in ``chunk`` order, within ``window`` held messages.

    A message is released at once when it follows the last one released: the next chunk
    number, the same number (senders that do not number their chunks), or audio that starts
    where the last one ended (senders that number chunks across both tracks, like
    streamdouble). Otherwise it waits until the missing chunk arrives or more than ``window``
    messages wait (the missing one is then lost: a gap, not a reorder). A message older than
    the last one released is dropped and counted (``late``).
    """

    __slots__ = ("_held", "_last", "late", "reordered", "window")

    def __init__(self, window: int = REORDER_WINDOW) -> None:
        self.window = window
        self._held: list[Media] = []
        self._last: Media | None = None
        self.late = 0
        self.reordered = 0  # messages released after one that arrived later

    def push(self, message: Media) -> list[Media]:
        """Take one message; return those now due, in order."""
        last = self._last
        if last is not None and message.chunk < last.chunk:
            self.late += 1
            return []
        index = len(self._held)
        while index > 0 and self._held[index - 1].chunk > message.chunk:
            index -= 1
        if index < len(self._held):
            self.reordered += 1
        self._held.insert(index, message)
        due: list[Media] = []
        while self._held and (len(self._held) > self.window or self._follows(self._held[0])):
            self._last = self._held.pop(0)
            due.append(self._last)
        return due

    def flush(self) -> list[Media]:
        """Everything still held, in order (the stream ended)."""
        due, self._held = self._held, []
        if due:
            self._last = due[-1]
        return due

    def _follows(self, message: Media) -> bool:
        last = self._last
        if last is None or message.chunk <= last.chunk + 1:
            return True
        expected_ms = last.timestamp_ms + len(last.payload) // 8  # 8 bytes of μ-law per ms
        return abs(message.timestamp_ms - expected_ms) <= 1


StreamState = Literal["new", "started", "stopped"]


def _legs_of(tracks: tuple[str, ...]) -> tuple[LegName, ...]:
    """The legs a ``start.tracks`` list announces (``inbound``, ``outbound``; the TwiML
    spellings ``inbound_track`` / ``outbound_track`` are accepted too)."""
    legs = {TRACK_TO_LEG.get(t.removesuffix("_track")) for t in tracks}
    return tuple(leg for leg in LEGS if leg in legs)


class TwilioStream:
    """One Media Streams WebSocket: feeds a call of a ``CallSink`` from parsed messages.

    Payloads are cut into 20 ms packets per leg (a sender may batch); the RTP timestamp of a
    packet follows Twilio's ``media.timestamp`` (ms since stream start), so gaps the network
    caused stay gaps instead of being squeezed out. Streams of one ``callSid`` share a call
    through ``calls`` (one ``JoinedCalls`` per server; a stream on its own gets its own).
    """

    def __init__(self, sink: CallSink, *, source: str = "twilio", calls: JoinedCalls | None = None) -> None:
        self.sink = sink
        self.source = source
        self.calls = calls if calls is not None else JoinedCalls(sink)
        self.state: StreamState = "new"
        self.call_id: CallId | None = None
        self.feed: LegFeed | None = None
        self.rejected_frames = 0
        self.ignored_events = 0
        self.dtmf_digits = 0
        self._pending: dict[LegName, bytes] = {"agent": b"", "caller": b""}
        self._order: dict[LegName, ChunkOrder] = {"agent": ChunkOrder(), "caller": ChunkOrder()}
        self._declared = False  # whether start.tracks named the legs (else media claims them)

    @property
    def media(self) -> CallMedia | None:
        return self.feed.media if self.feed is not None else None

    @property
    def late_chunks(self) -> int:
        return sum(order.late for order in self._order.values())

    @property
    def reordered_chunks(self) -> int:
        return sum(order.reordered for order in self._order.values())

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
                await self._media(message, arrived_ns)
        elif isinstance(message, Start):
            await self._start(message)
        elif isinstance(message, Stop):
            await self.close()
        elif isinstance(message, Dtmf):
            self.dtmf_digits += 1
        elif isinstance(message, Unknown):
            self.ignored_events += 1

    async def _media(self, message: Media, arrived_ns: int) -> None:
        assert self.feed is not None
        leg = TRACK_TO_LEG[message.track]
        if not self.feed.owns(leg) and (self._declared or not await self.feed.claim(leg)):
            # A track this stream's start did not list, or that another stream of the call
            # sends: one leg has one sender, or two audio streams would interleave.
            self.rejected_frames += 1
            return
        for due in self._order[leg].push(message):
            self._feed(leg, due, arrived_ns)

    def _feed(self, leg: LegName, message: Media, arrived_ns: int) -> None:
        assert self.feed is not None
        source = self.feed.media.leg(leg)
        data = self._pending[leg] + message.payload
        pts = self.feed.pts_base(leg) + message.timestamp_ms * 8 - len(self._pending[leg])
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
            legs=_legs_of(message.tracks),
        )
        self._declared = bool(announcement.legs)
        self.feed = await self.calls.join(announcement)
        self.call_id = announcement.call_id
        self.state = "started"

    async def close(self) -> None:
        """End this stream (on ``stop`` or when the socket goes away); safe to call twice.
        The call ends with the last stream of its ``callSid``."""
        if self.state == "started" and self.feed is not None:
            self.state = "stopped"
            for leg, order in self._order.items():
                if self.feed.owns(leg):
                    for due in order.flush():
                        self._feed(leg, due, time.monotonic_ns())
            await self.feed.close()
        self.state = "stopped"

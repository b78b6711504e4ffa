"""L16 WebSocket forks: FreeSWITCH ``mod_audio_fork`` / ``mod_audio_stream``, jambonz
``listen``, Vonage Voice WebSocket. One shape, three spellings of its first frame.

Every one of them opens a WebSocket, sends one JSON text frame describing the call, then
binary frames of 16-bit signed little-endian PCM at 8 or 16 kHz (``ForkKind`` says which keys
each vendor uses):

* **FreeSWITCH** (``uuid_audio_fork <uuid> start <url> <mono|stereo> <8k|16k> <metadata>``,
  ``uuid_audio_stream`` likewise): the metadata is whatever JSON the dialplan passes, so the
  keys are ours: ``call_id`` (or ``uuid``), ``sample_rate`` (``8000``/``16000``/``8k``/``16k``)
  and ``channels`` (1/2) or ``mix_type`` (``mono``/``stereo``), because the module sends
  neither rate nor channel count in-band. Without metadata the query string is read instead
  (``?call_id=${uuid}&sample_rate=16000``), and the first binary frame starts the call.
* **jambonz** (``listen``, WebSocket subprotocol ``audio.jambonz.org``): the call attributes
  (``callSid``, ...) plus ``sampleRate`` and ``mixType``, with the verb's ``metadata`` merged in.
* **Vonage** (``connect`` to a ``websocket`` endpoint): ``{"event": "websocket:connected",
  "content-type": "audio/l16;rate=16000", ...}`` with the endpoint's ``headers`` merged in;
  the call id comes from those headers (``call_id``, ``uuid`` or ``conversation_uuid``).
  Later text frames (``websocket:dtmf`` and the like) are counted and ignored.

Keys every kind reads (first frame first, then scalar values of a nested ``metadata``,
``customerData``, ``headers`` or ``customParameters`` object, then the URL's query string):
``agent_id`` / ``agentId`` / ``agent``, ``queue``, ``consent``, ``private``, and for a mono
socket ``leg`` (``agent`` / ``caller``) or ``track`` (``inbound`` = caller, ``outbound`` =
agent); default: the caller, as all three send the caller's audio in mono. Other keys are
not kept: jambonz sends the caller's number, which has no business on the bus.

Channels: mono is one leg per socket; two mono sockets with one call id are one call with
two legs (``joined.JoinedCalls``), like Twilio split streams. Stereo carries both legs:
channel 0 is the caller and channel 1 the agent, which is what FreeSWITCH's media bug does
when the fork runs on the caller's channel (read = the caller, write = the other party) and
what jambonz sends (``mixType: stereo``: the caller, then the called party); ``agent_channel``
(``0``) swaps them for a fork on the agent's channel. ``mixed`` (both voices in one channel)
is refused: a caller who did not consent could not be silenced without the agent.

Audio: a frame that splits a sample or a stereo frame keeps the remainder for the next frame;
each leg is resampled once (16 kHz) and encoded to μ-law once (``media.pcm``), then paced to
real time (``media.pacer``): forks send whatever their buffers hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ProtocolError
from ..media.pacer import Pacer, PlayoutClock
from ..media.pcm import SUPPORTED_RATES, L16Encoder, split_channels
from ..types import LEGS, CallId, Consent, LegName
from .joined import JoinedCalls, LegFeed
from .sink import CallAnnouncement

MAX_METADATA_BYTES = 16 * 1024
MAX_CALL_ID = 128
SUBPROTOCOLS = ("audio.jambonz.org", "audio.drachtio.org")  # jambonz; mod_audio_fork's default

AGENT_KEYS = ("agent_id", "agentId", "agent")
NESTED_KEYS = ("metadata", "customerData", "headers", "customParameters")
_RATE_IN_TEXT = re.compile(r"rate\s*=\s*(\d+)", re.IGNORECASE)
_TRACK_TO_LEG: dict[str, LegName] = {"inbound": "caller", "outbound": "agent", "agent": "agent", "caller": "caller"}


@dataclass(frozen=True, slots=True)
class ForkKind:
    """Where one vendor's first frame keeps the call id, the sample rate and the channels."""

    name: str
    call_id_keys: tuple[str, ...]
    rate_keys: tuple[str, ...]
    channel_keys: tuple[str, ...]


KINDS: dict[str, ForkKind] = {
    kind.name: kind
    for kind in (
        ForkKind(
            "freeswitch",
            ("call_id", "callId", "uuid", "call_uuid"),
            ("sample_rate", "sampleRate", "rate"),
            ("channels", "mix_type", "mixType"),
        ),
        ForkKind("jambonz", ("callSid", "call_sid", "call_id", "callId"), ("sampleRate", "sample_rate"), ("mixType", "channels")),
        ForkKind(
            "vonage",
            ("call_id", "callId", "uuid", "conversation_uuid", "call_uuid"),
            ("content-type", "sample_rate", "rate"),
            ("channels",),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ForkMetadata:
    call_id: CallId
    agent_id: str
    queue: str
    consent: Consent
    private: bool
    rate: int
    channels: int
    leg: LegName  # the leg of a mono socket
    agent_channel: int  # the agent's channel of a stereo socket

    @property
    def legs(self) -> tuple[LegName, ...]:
        return LEGS if self.channels == 2 else (self.leg,)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def _flatten(first: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, str]:
    """The first frame's scalar values, then nested metadata objects', then the query's."""
    values: dict[str, str] = {}
    for key, value in query.items():
        values[key] = value
    for nested in NESTED_KEYS:
        inner = first.get(nested)
        if isinstance(inner, dict):
            values.update({str(k): s for k, v in inner.items() if (s := _scalar(v)) is not None})
    values.update({str(k): s for k, v in first.items() if (s := _scalar(v)) is not None})
    return values


def _pick(values: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = values.get(key)
        if value is not None and value.strip():
            return value.strip()
    return None


def _rate(text: str | None) -> int:
    if text is None:
        return 8000
    spelled = text.strip().lower()
    found = _RATE_IN_TEXT.search(spelled)  # "audio/l16;rate=16000"
    if found:
        spelled = found.group(1)
    elif spelled.endswith("k") and spelled[:-1].isdigit():  # "16k", as mod_audio_fork spells it
        spelled = str(int(spelled[:-1]) * 1000)
    elif spelled.startswith("audio/"):  # a content type without a rate: its default
        spelled = "8000"
    if not spelled.isdigit() or int(spelled) not in SUPPORTED_RATES:
        raise ProtocolError(f"unsupported sample rate {text!r}: 8000 or 16000")
    return int(spelled)


def _channels(text: str | None) -> int:
    spelled = (text or "mono").strip().lower()
    if spelled in ("1", "mono"):
        return 1
    if spelled in ("2", "stereo"):
        return 2
    if spelled == "mixed":
        raise ProtocolError("mixed audio cannot be split into legs: send stereo or one mono socket per leg")
    raise ProtocolError(f"unsupported channels {text!r}: mono (1) or stereo (2)")


def _leg(values: Mapping[str, str]) -> LegName:
    spelled = _pick(values, ("leg", "track"))
    if spelled is None:
        return "caller"
    leg = _TRACK_TO_LEG.get(spelled.lower().removesuffix("_track"))
    if leg is None:
        raise ProtocolError(f"unknown leg {spelled!r}: agent or caller (inbound or outbound)")
    return leg


def parse_metadata(kind: ForkKind, text: str | bytes | None, query: Mapping[str, str] | None = None) -> ForkMetadata:
    """The call a fork's first text frame (``None``: only the query string) describes.

    Raises ``ProtocolError`` for anything that cannot start a call: not a JSON object, too
    large, no call id, a rate or channel layout we cannot take apart."""
    first: Any = {}
    if text is not None:
        if len(text) > MAX_METADATA_BYTES:
            raise ProtocolError(f"metadata over {MAX_METADATA_BYTES} bytes")
        try:
            first = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ProtocolError("the first text frame is not JSON") from None
        if not isinstance(first, dict):
            raise ProtocolError("the first text frame must be a JSON object")
    values = _flatten(first, query or {})
    call_id = _pick(values, kind.call_id_keys)
    if call_id is None:
        raise ProtocolError(f"no call id: one of {', '.join(kind.call_id_keys)}")
    if len(call_id) > MAX_CALL_ID or not call_id.isprintable():
        raise ProtocolError(f"the call id must be printable and at most {MAX_CALL_ID} characters")
    agent_channel = _pick(values, ("agent_channel",)) or "1"
    if agent_channel not in ("0", "1"):
        raise ProtocolError("agent_channel must be 0 or 1")
    return ForkMetadata(
        call_id=CallId(call_id),
        agent_id=_pick(values, AGENT_KEYS) or "",
        queue=_pick(values, ("queue",)) or "",
        consent=Consent.parse(_pick(values, ("consent",))),
        private=(_pick(values, ("private",)) or "").lower() in ("1", "true", "yes"),
        rate=_rate(_pick(values, kind.rate_keys)),
        channels=_channels(_pick(values, kind.channel_keys)),
        leg=_leg(values),
        agent_channel=int(agent_channel),
    )


ForkState = Literal["new", "started", "stopped"]


class ForkStream:
    """One fork WebSocket: metadata, then L16 audio into one or both legs of a call."""

    def __init__(self, kind: ForkKind, calls: JoinedCalls, query: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.calls = calls
        self.query = dict(query or {})
        self.state: ForkState = "new"
        self.metadata: ForkMetadata | None = None
        self.feed: LegFeed | None = None
        self.ignored_texts = 0  # text frames after the metadata (Vonage events, ...)
        self.split_frames = 0  # binary frames that ended inside a sample or a stereo frame
        self._leftover = b""
        self._channel_legs: list[LegName] = []
        self._encoders: dict[LegName, L16Encoder] = {}
        self._pacers: dict[LegName, Pacer] = {}
        self._clock: PlayoutClock | None = None

    @property
    def call_id(self) -> CallId | None:
        return self.metadata.call_id if self.metadata is not None else None

    @property
    def dropped_packets(self) -> int:
        """Packets the pacers dropped because the sender ran ahead of real time."""
        return sum(p.dropped for p in self._pacers.values())

    async def handle_text(self, text: str | bytes) -> None:
        if self.state != "new":
            self.ignored_texts += 1
            return
        await self._start(parse_metadata(self.kind, text, self.query))

    async def handle_binary(self, data: bytes, arrived_ns: int) -> None:
        if self.state == "new":
            if not any(key in self.query for key in self.kind.call_id_keys):
                raise ProtocolError("audio before the metadata frame")
            await self._start(parse_metadata(self.kind, None, self.query))  # metadata-less fork
        if self.state != "started" or not data:
            return
        frame = 2 * len(self._channel_legs)
        data = self._leftover + data if self._leftover else data
        whole = len(data) - len(data) % frame
        if whole != len(data):
            self.split_frames += 1
        self._leftover = data[whole:]
        if not whole:
            return
        channels = split_channels(data[:whole], len(self._channel_legs), 2)
        for leg, pcm in zip(self._channel_legs, channels):
            self._pacers[leg].push(self._encoders[leg].encode(pcm), arrived_ns)

    async def _start(self, metadata: ForkMetadata) -> None:
        announcement = CallAnnouncement(
            call_id=metadata.call_id,
            source=self.kind.name,
            agent_id=metadata.agent_id,
            consent=metadata.consent,
            codec="PCMU",
            queue=metadata.queue,
            private=metadata.private,
            legs=metadata.legs,
        )
        self.feed = await self.calls.join(announcement)
        self.metadata = metadata
        if metadata.channels == 2:
            self._channel_legs = ["caller", "caller"]
            self._channel_legs[metadata.agent_channel] = "agent"
        else:
            self._channel_legs = [metadata.leg]
        self._clock = PlayoutClock()
        for leg in metadata.legs:
            self._encoders[leg] = L16Encoder(metadata.rate)
            self._pacers[leg] = Pacer(
                self.feed.media.leg(leg), clock=self._clock, start_pts=self.feed.pts_base(leg)
            )
        self.state = "started"

    async def close(self) -> None:
        """The socket ended: stop pacing, and end the call unless another socket feeds it."""
        if self._clock is not None:
            self._clock.close()
        if self.state == "started" and self.feed is not None:
            self.state = "stopped"
            await self.feed.close()
        self.state = "stopped"

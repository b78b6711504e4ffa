"""Asterisk AudioSocket (TCP): the frame parser and the per-connection state machine.

The protocol (Asterisk ``res_audiosocket``, ``app_audiosocket``, ``chan_audiosocket``; the
reference is CyCoreSystems' ``audiosocket`` package): a stream of messages
``[kind u8][length u16 big-endian][payload]``.

======  =====================================================================
kind    payload
======  =====================================================================
0x00    hangup (no payload): the channel is gone
0x01    the connection's UUID, 16 bytes; always the first message
0x02    silence (no payload; some senders)
0x03    one DTMF digit (ASCII)
0x10    audio: signed linear 16-bit little-endian, 8 kHz, mono (``slin``)
0xff    error (an optional code)
======  =====================================================================

Strictness: a first message that is not the UUID, a second UUID, a UUID that is not 16 bytes,
a length over the limit of its kind end the connection (``ProtocolError``). Unknown kinds up
to ``MAX_OTHER`` bytes are skipped and counted (Asterisk adds kinds, e.g. other ``slin``
rates). The reader never buffers more than one message.

Calls and legs: one connection carries one direction of one channel (what ``AudioSocket()``
or an ARI ``externalMedia`` channel with ``encapsulation=audiosocket`` sends), so it is one
leg. The UUID is the call id; the leg is chosen by the port the connection arrives on:
``LIVE_AUDIOSOCKET_LISTEN`` (e.g. ``:9092``) for the caller, the next port (``:9093``) for
the agent. Two connections with one UUID, one per port, are one call with both legs
(``joined.JoinedCalls``); a leg that no connection sends is shown as not sent. AudioSocket
carries no metadata: the call has no agent id and unknown consent (a CTI can report consent
with ``POST /api/calls/{call_id}/consent``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from ..errors import ProtocolError
from ..media.pacer import Pacer, PlayoutClock
from ..media.pcm import L16Encoder
from ..types import CallId, Consent, LegName
from .joined import JoinedCalls, LegFeed
from .sink import CallAnnouncement

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_SILENCE = 0x02
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
HEADER_BYTES = 3
MAX_AUDIO = 16000  # one second of 8 kHz slin: Asterisk sends 320 bytes (20 ms)
MAX_OTHER = 1024  # an error text, a kind we do not know
_LIMITS = {KIND_HANGUP: (0, 0), KIND_UUID: (16, 16), KIND_SILENCE: (0, MAX_AUDIO), KIND_DTMF: (1, 1),
           KIND_AUDIO: (0, MAX_AUDIO), KIND_ERROR: (0, MAX_OTHER)}


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Uuid:
    value: str


@dataclass(frozen=True, slots=True)
class Silence:
    pass


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class Error:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Unknown:
    kind: int


AudioSocketMessage = Hangup | Uuid | Silence | Dtmf | Audio | Error | Unknown


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One message on the wire (what Asterisk sends; for tests and tools)."""
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


def _message(kind: int, payload: bytes) -> AudioSocketMessage:
    if kind == KIND_AUDIO:
        return Audio(payload)
    if kind == KIND_UUID:
        return Uuid(str(uuid.UUID(bytes=payload)))
    if kind == KIND_HANGUP:
        return Hangup()
    if kind == KIND_DTMF:
        return Dtmf(payload.decode("ascii", "replace"))
    if kind == KIND_SILENCE:
        return Silence()
    if kind == KIND_ERROR:
        return Error(payload)
    return Unknown(kind)


class AudioSocketReader:
    """Bytes of one connection in, messages out. Raises ``ProtocolError`` on a violation;
    the connection must then end (the stream cannot be resynchronised)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.identified = False

    def feed(self, data: bytes) -> list[AudioSocketMessage]:
        self._buffer += data
        messages: list[AudioSocketMessage] = []
        while len(self._buffer) >= HEADER_BYTES:
            kind = self._buffer[0]
            length = int.from_bytes(self._buffer[1:3], "big")
            low, high = _LIMITS.get(kind, (0, MAX_OTHER))
            if not low <= length <= high:
                raise ProtocolError(f"AudioSocket message of kind 0x{kind:02x} with {length} bytes (allowed {low}..{high})")
            if not self.identified and kind != KIND_UUID:
                raise ProtocolError(f"the first AudioSocket message must be the UUID, not kind 0x{kind:02x}")
            if self.identified and kind == KIND_UUID:
                raise ProtocolError("a second AudioSocket UUID")
            if len(self._buffer) < HEADER_BYTES + length:
                break
            payload = bytes(self._buffer[HEADER_BYTES : HEADER_BYTES + length])
            del self._buffer[: HEADER_BYTES + length]
            self.identified = True
            messages.append(_message(kind, payload))
        return messages


StreamState = Literal["new", "started", "stopped"]


class AudioSocketStream:
    """One AudioSocket connection feeding one leg of the call its UUID names."""

    def __init__(self, calls: JoinedCalls, leg: LegName, *, source: str = "audiosocket") -> None:
        self.calls = calls
        self.leg = leg
        self.source = source
        self.reader = AudioSocketReader()
        self.state: StreamState = "new"
        self.call_id: CallId | None = None
        self.feed: LegFeed | None = None
        self.dtmf_digits = 0
        self.errors = 0  # error messages the sender reported
        self.ignored = 0  # messages of kinds we do not know
        self._encoder = L16Encoder(8000)
        self._pacer: Pacer | None = None

    @property
    def dropped_packets(self) -> int:
        return self._pacer.dropped if self._pacer is not None else 0

    async def handle_data(self, data: bytes, arrived_ns: int) -> bool:
        """Take bytes from the socket; False once the sender hung up (close the socket)."""
        for message in self.reader.feed(data):
            if isinstance(message, Audio):
                if self._pacer is not None and message.pcm:
                    self._pacer.push(self._encoder.encode(message.pcm), arrived_ns)
            elif isinstance(message, Uuid):
                await self._start(message.value)
            elif isinstance(message, Hangup):
                await self.close()
                return False
            elif isinstance(message, Dtmf):
                self.dtmf_digits += 1
            elif isinstance(message, Error):
                self.errors += 1
            elif isinstance(message, Unknown):
                self.ignored += 1
        return self.state != "stopped"

    async def _start(self, call_id: str) -> None:
        announcement = CallAnnouncement(
            call_id=CallId(call_id), source=self.source, agent_id="", consent=Consent.UNKNOWN, legs=(self.leg,)
        )
        self.feed = await self.calls.join(announcement)
        self.call_id = announcement.call_id
        self._pacer = Pacer(self.feed.media.leg(self.leg), clock=PlayoutClock(), start_pts=self.feed.pts_base(self.leg))
        self.state = "started"

    async def close(self) -> None:
        """The connection ended (hangup or socket closed); safe to call twice."""
        if self._pacer is not None:
            self._pacer.clock.close()
        if self.state == "started" and self.feed is not None:
            self.state = "stopped"
            await self.feed.close()
        self.state = "stopped"

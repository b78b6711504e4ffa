"""RTP receive for one leg: parse (RFC 3550 §5.1), reorder, count, publish in order.

Pure: no sockets here (``rtp_ports`` owns those), so everything is tested with built packets.

``RtpLegReceiver`` turns one leg's packets, as they arrive, into what the hub expects
(``LegSource.publish(payload, pts, arrived_ns)``, ``ingest/__init__.py``): G.711 payloads in
sequence order with a strictly increasing ``pts`` in 8 kHz units, forwarded untouched.

* Reordering: a gap is waited for while at most ``reorder_window`` later packets are buffered,
  then skipped and counted ``lost``. A packet for a sequence number already published or skipped
  is dropped: ``duplicates`` if it was seen, else ``late`` (and moved from ``lost`` to ``late``).
* Sequence and timestamp wrap use extended (unwrapped) numbers, RFC 3550 Appendix A.1; a jump of
  more than ``MAX_DROPOUT`` ahead or ``MAX_MISORDER`` behind restarts the stream only when the
  next packet confirms it (A.1 ``bad_seq``), so one stray packet cannot derail a leg.
* ``pts`` = extended RTP timestamp + the stream's offset. A new SSRC (SBC failover, re-INVITE),
  a confirmed sequence restart, a timestamp stepping back, or a step far beyond the time that
  passed, rebases it to continue after the last published packet (plus the wall-clock gap), so
  a listener's timestamps never go back and never leap.
* Payload types: the call's codec is forwarded; comfort noise (PT 13, RFC 3389) becomes 20 ms of
  G.711 silence so listeners' tracks stay alive; the other G.711 law is counted ``bad`` (we
  never transcode); anything else (telephone-event, RFC 4733) is ``ignored``. All of them still
  take their place in the sequence, so a DTMF burst is not mistaken for loss.
* Interarrival jitter per RFC 3550 §6.4.1, over the packets carrying audio or comfort noise.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import ProtocolError
from ..media.hub import PACKET_SAMPLES, SAMPLE_RATE, SILENCE_BYTE
from ..model import Codec

DEFAULT_PAYLOAD_TYPES: dict[int, str] = {0: "PCMU", 8: "PCMA", 13: "CN"}
MAX_DROPOUT = 3000  # RFC 3550 A.1: a forward sequence jump beyond this needs confirming
MAX_MISORDER = 100  # RFC 3550 A.1: a backward jump beyond this needs confirming
MAX_STEP = SAMPLE_RATE  # a timestamp step this much beyond the wall-clock gap is a leap: rebase
STRAY_NS = 500_000_000  # packets of the previous SSRC this soon after a change are stragglers
_HISTORY = 64  # sequence numbers remembered behind the next expected one, for duplicate checks
_HISTORY_MASK = (1 << _HISTORY) - 1
_NS_PER_SAMPLE = 1_000_000_000 // SAMPLE_RATE  # 125 µs
_SAMPLES_PER_NS = SAMPLE_RATE / 1e9

_HEADER = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")

# What a payload type means for a leg; _AUDIO first, the hot path compares against it.
_AUDIO, _NOISE, _OTHER_LAW, _IGNORED = 0, 1, 2, 3

Publish = Callable[[bytes, int, int], object]
# A buffered packet: (payload to publish, or None to only take its place; timestamp; arrived_ns)
_Pending = tuple[bytes | None, int, int]


class RtpError(ProtocolError):
    """A datagram that is not an RTP packet we can read."""

    code = "rtp_error"


class RtpPacket(NamedTuple):
    """An RTP packet's fields; ``payload`` excludes CSRCs, header extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool


def _parse(data: bytes) -> tuple[int, int, int, int, bytes, bool]:
    size = len(data)
    if size < 12:
        raise RtpError("RTP packet shorter than its 12-byte header", size=size)
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError("RTP version is not 2", version=first >> 6)
    payload_type = second & 0x7F
    if 64 <= payload_type <= 95:
        # RFC 5761 §4: with the marker bit folded in these are RTCP packet types 192-223
        # (SR 200 .. XR 207 among them), which rtcp-mux peers send on the RTP port.
        raise RtpError("RTCP packet, not RTP", packet_type=second)
    start = 12 + 4 * (first & 0x0F)  # fixed header + CSRC list
    if first & 0x10:  # header extension, RFC 3550 §5.3.1: 16-bit profile, 16-bit length in words
        if size < start + 4:
            raise RtpError("RTP header extension truncated", size=size)
        _profile, words = _EXTENSION.unpack_from(data, start)
        start += 4 + 4 * words
    end = size
    if first & 0x20:  # padding, RFC 3550 §5.1: the last octet counts the padding, itself included
        padding = data[-1]
        if padding == 0:
            raise RtpError("RTP padding count is zero")
        end -= padding
    if end < start:
        raise RtpError("RTP header, extension or padding longer than the packet", size=size)
    return payload_type, sequence, timestamp, ssrc, data[start:end], bool(second & 0x80)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet (RFC 3550 §5.1); ``RtpError`` for short, non-v2 or RTCP packets."""
    return RtpPacket._make(_parse(data))


def silence(codec: Codec, samples: int = PACKET_SAMPLES) -> bytes:
    """G.711 silence (the encoding of a zero sample) for ``samples`` samples."""
    return bytes([SILENCE_BYTE[codec]]) * samples


@dataclass(slots=True)
class LegStats:
    """Counters of one RTP leg (all packets, monotonic except ``lost``, see below)."""

    received: int = 0  # RTP packets that parsed, of any payload type
    lost: int = 0  # sequence numbers skipped in the output; a late arrival moves to ``late``
    duplicates: int = 0
    late: int = 0  # arrived after their place in the output had passed: dropped
    reordered: int = 0  # arrived after a later packet but in time to be put in order
    ssrc_changes: int = 0
    restarts: int = 0  # confirmed sequence jumps within one SSRC (RFC 3550 A.1)
    bad: int = 0  # unparseable datagrams, and the other G.711 law (never transcoded)
    undecryptable: int = 0  # SRTP authentication or replay failures
    cn: int = 0  # comfort-noise packets (RFC 3389), each published as 20 ms of silence
    ignored: int = 0  # other payload types (telephone-event, unknown)
    rtcp: int = 0  # RTCP on the RTP port (rtcp-mux), not used
    probation: int = 0  # packets of a new SSRC dropped until it proved itself (RFC 3550 A.1)
    jitter: float = 0.0  # RFC 3550 §6.4.1 interarrival jitter, in timestamp units

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / SAMPLE_RATE

    def add(self, other: LegStats) -> None:
        """Add ``other``'s counters to these (a node's totals keep ended calls' packets)."""
        for name in self.__dataclass_fields__:
            if name != "jitter":
                setattr(self, name, getattr(self, name) + getattr(other, name))


class RtpLegReceiver:
    """One leg's RTP stream in, ordered G.711 packets out through ``publish``.

    ``publish(payload, pts, arrived_ns)`` is called synchronously, in order, with ``pts``
    strictly increasing. ``payload_types`` maps payload type numbers to encoding names as the
    SDP negotiated them (``a=rtpmap``), over the static 0 PCMU, 8 PCMA, 13 CN; ``codec`` is the
    leg's G.711 law.
    """

    __slots__ = (
        "stats", "_publish", "_kinds", "_silence", "_window", "_ssrc", "_previous_ssrc",
        "_switched_ns", "_max", "_next", "_start", "_history", "_pending", "_bad_seq",
        "_ts", "_offset", "_last_pts", "_last_samples", "_last_arrived", "_started", "_transit",
        "_candidate", "_candidate_seq",
    )

    def __init__(
        self,
        publish: Publish,
        *,
        codec: Codec,
        payload_types: dict[int, str] | None = None,
        reorder_window: int = 3,
        stats: LegStats | None = None,
    ) -> None:
        if codec not in SILENCE_BYTE:
            raise ValueError(f"codec must be PCMU or PCMA, not {codec!r}")
        if reorder_window < 0:
            raise ValueError("reorder_window must not be negative")
        self.stats = stats if stats is not None else LegStats()
        self._publish = publish
        other_law = "PCMA" if codec == "PCMU" else "PCMU"
        self._kinds: dict[int, int] = {}
        # Static assignments (RFC 3551 §6) hold even when the SDP did not list them: SBCs send
        # CN (13) unannounced. What the SDP maps explicitly wins.
        for payload_type, encoding in {**DEFAULT_PAYLOAD_TYPES, **(payload_types or {})}.items():
            name = encoding.upper()
            self._kinds[payload_type] = (
                _AUDIO if name == codec else _NOISE if name == "CN"
                else _OTHER_LAW if name == other_law else _IGNORED
            )
        self._silence = silence(codec)
        self._window = reorder_window
        self._ssrc: int | None = None
        self._previous_ssrc: int | None = None
        self._switched_ns = 0
        # Sequence tracking, in extended sequence numbers: highest seen, next to publish, first
        # of the stream; _history bit i set = (_next - 1 - i) was received.
        self._max = self._next = self._start = 0
        self._history = 0
        self._pending: dict[int, _Pending] = {}
        self._bad_seq = -1
        # Output timeline: extended timestamp of the last published packet, pts = ts + offset.
        self._ts = 0
        self._offset = 0
        self._last_pts = -1
        self._last_samples = 0
        self._last_arrived = 0
        self._started = False  # published anything yet
        self._transit: float | None = None  # RFC 3550 §6.4.1 relative transit of the last packet
        self._candidate: int | None = None  # a new SSRC on probation, and its last sequence
        self._candidate_seq = 0

    # --- input ------------------------------------------------------------------------------

    def receive_packet(self, data: bytes, arrived_ns: int) -> bool:
        """Parse and receive one datagram; never raises. False (counted ``bad``) if not RTP."""
        try:
            payload_type, sequence, timestamp, ssrc, payload, _marker = _parse(data)
        except RtpError:
            if len(data) > 1 and data[0] >> 6 == 2 and 192 <= data[1] <= 223:
                self.stats.rtcp += 1
            else:
                self.stats.bad += 1
            return False
        self.receive(payload_type, sequence, timestamp, ssrc, payload, arrived_ns)
        return True

    def receive(
        self,
        payload_type: int,
        sequence: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        arrived_ns: int,
    ) -> None:
        """Receive one parsed packet that arrived at ``arrived_ns`` (``time.monotonic_ns()``)."""
        stats = self.stats
        stats.received += 1
        kind = self._kinds.get(payload_type, _IGNORED)
        data: bytes | None
        if kind == _AUDIO:
            data = payload or None
        elif kind == _NOISE:
            stats.cn += 1
            data = self._silence
        else:
            if kind == _OTHER_LAW:
                stats.bad += 1
            else:
                stats.ignored += 1
            data = None
        if ssrc != self._ssrc:
            if not self._change_ssrc(ssrc, sequence, arrived_ns):
                return
        elif self._candidate is not None:
            self._candidate = None  # the current source goes on: the newcomer's probation fails
        if data is not None:  # RFC 3550 §6.4.1 / A.8, arrival in timestamp units
            transit = arrived_ns * _SAMPLES_PER_NS - timestamp
            last = self._transit
            self._transit = transit
            if last is not None:
                d = abs(transit - last)
                if d > 2147483648.0:  # the 32-bit timestamp wrapped between the two
                    d = abs(d - 4294967296.0)
                stats.jitter += (d - stats.jitter) / 16.0
        delta = (sequence - self._max) & 0xFFFF
        ext = self._max + delta if delta < 0x8000 else self._max + delta - 0x10000
        if ext == self._next and not self._pending:  # the usual case: next in order
            self._max = ext
            self._next = ext + 1
            self._history = ((self._history << 1) | 1) & _HISTORY_MASK
            if data is not None:
                self._emit(data, timestamp, arrived_ns)
            return
        self._receive_out_of_order(ext, sequence, data, timestamp, arrived_ns)

    def flush(self) -> None:
        """Publish everything buffered, skipping (and counting) gaps: the call ended or moved."""
        pending = self._pending
        while pending:
            self._skip_gap()
            self._drain()

    def continue_after(self, previous: RtpLegReceiver) -> None:
        """Continue ``previous``'s output timeline: the same leg, re-keyed or re-negotiated.

        Call before this receiver has published anything (``ValueError`` otherwise); its first
        packet then follows ``previous``'s last one, as after an SSRC change.
        """
        if self._started:
            raise ValueError("continue_after() needs a receiver that has not published yet")
        self._last_pts = previous._last_pts
        self._last_samples = previous._last_samples
        self._last_arrived = previous._last_arrived
        self._started = previous._started

    # --- sequence ---------------------------------------------------------------------------

    def _receive_out_of_order(
        self, ext: int, sequence: int, data: bytes | None, timestamp: int, arrived_ns: int
    ) -> None:
        stats = self.stats
        ahead = ext - self._next
        if ahead > MAX_DROPOUT or ahead < -MAX_MISORDER:
            if sequence != self._bad_seq:  # RFC 3550 A.1: wait for the next packet to confirm
                self._bad_seq = (sequence + 1) & 0xFFFF
                if ahead > 0:
                    stats.lost += 1  # dropped unheard, like a lost packet
                else:
                    stats.late += 1
                return
            stats.restarts += 1  # the sender restarted its sequence numbers: a new stream
            self.flush()
            self._start_stream(sequence)
            self._max = self._start
            self._next = self._start + 1
            self._history = 1
            if data is not None:
                self._emit(data, timestamp, arrived_ns)
            return
        if ahead < 0:
            back = -ahead - 1
            if ext < self._start:
                stats.late += 1
            elif back < _HISTORY and self._history >> back & 1:
                stats.duplicates += 1
            else:
                stats.late += 1
                if back < _HISTORY:  # it was skipped as lost: it is late instead
                    stats.lost -= 1
                    self._history |= 1 << back
            return
        pending = self._pending
        if ext in pending:
            stats.duplicates += 1
            return
        if ext < self._max:
            stats.reordered += 1
        else:
            self._max = ext
        pending[ext] = (data, timestamp, arrived_ns)
        self._drain()
        while len(pending) > self._window:  # waited long enough for the gap
            self._skip_gap()
            self._drain()

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            item = pending.pop(self._next, None)
            if item is None:
                return
            self._next += 1
            self._history = ((self._history << 1) | 1) & _HISTORY_MASK
            if item[0] is not None:
                self._emit(item[0], item[1], item[2])

    def resync(self) -> None:
        """Start the next packet's timestamps afresh (after a hold, during which others filled
        the leg with silence): it continues after the last published packet plus the
        wall-clock gap, whatever RTP timestamp the sender resumes with."""
        self._offset = -(1 << 62)

    def _skip_gap(self) -> None:
        oldest = min(self._pending)
        gap = oldest - self._next
        self.stats.lost += gap
        self._history = (self._history << gap) & _HISTORY_MASK
        self._next = oldest

    def _change_ssrc(self, ssrc: int, sequence: int, arrived_ns: int) -> bool:
        """A packet from a new SSRC: False to drop it, True once it has started a new stream.

        A new source is on probation (RFC 3550 A.1): it takes over only with a second packet
        in sequence and none from the current source in between, so one stray packet (or a
        second sender on the port) cannot cut the leg's audio.
        """
        if self._ssrc is not None:
            if ssrc == self._previous_ssrc and arrived_ns - self._switched_ns < STRAY_NS:
                self.stats.late += 1  # a straggler of the stream we just left
                return False
            if ssrc != self._candidate or (sequence - self._candidate_seq) & 0xFFFF != 1:
                self._candidate, self._candidate_seq = ssrc, sequence
                self.stats.probation += 1
                return False
            self._candidate = None
            self.stats.ssrc_changes += 1
            self.flush()
            self._previous_ssrc = self._ssrc
            self._switched_ns = arrived_ns
        self._ssrc = ssrc
        self._transit = None
        self._start_stream(sequence)
        return True

    def _start_stream(self, sequence: int) -> None:
        # Extended numbers start one cycle up so that packets from just before stay positive.
        self._start = 0x10000 + sequence
        self._max = self._start - 1
        self._next = self._start
        self._history = 0
        self._bad_seq = -1
        self._offset = -(1 << 62)  # forces the first packet's pts to be rebased in _emit

    # --- output -----------------------------------------------------------------------------

    def _emit(self, payload: bytes, timestamp: int, arrived_ns: int) -> None:
        delta = (timestamp - self._ts) & 0xFFFFFFFF
        ts = self._ts + delta if delta < 0x80000000 else self._ts + delta - 0x100000000
        pts = ts + self._offset
        step = pts - self._last_pts
        if step <= 0 or (step > MAX_STEP and step > self._wall_gap(arrived_ns) + MAX_STEP):
            pts = self._rebased(arrived_ns)
            self._offset = pts - timestamp
            ts = timestamp
        self._ts = ts
        self._last_pts = pts
        self._last_samples = len(payload)
        self._last_arrived = arrived_ns
        self._publish(payload, pts, arrived_ns)

    def _wall_gap(self, arrived_ns: int) -> int:
        return (arrived_ns - self._last_arrived) // _NS_PER_SAMPLE

    def _rebased(self, arrived_ns: int) -> int:
        """The pts that continues right after the last published packet, plus any silence."""
        if not self._started:
            self._started = True
            return 0
        return self._last_pts + max(self._last_samples, self._wall_gap(arrived_ns))

"""RTP in a classic pcap file, for sipp's ``play_pcap_audio`` (and anything else that replays).

A file holds N legs of 20 ms G.711 packets: Ethernet (link type 1) / IPv4 / UDP / RTP
(RFC 3550 §5.1; payload types 0 = PCMU and 8 = PCMA of RFC 3551). Leg ``i`` goes to
destination port ``base_port + 2 * i``: sipp sends each packet to the media port answered
in the SDP plus (the packet's destination port − the lowest destination port in the file),
so leg ``i`` lands on the answered port + 2·i, which is where a recorder answers its
``i``-th ``m=audio``. Each leg has its own SSRC, a sequence number and a timestamp that
advance by one packet and 160 samples per 20 ms. UDP checksums are 0 ("no checksum",
allowed for IPv4 by RFC 768); sipp recomputes them when it rewrites the ports anyway.

``read_pcap`` parses the same format back, so a file can be checked without tshark.

Also here: G.711 A-law (ITU-T G.711 §3.2, as in the G.191 reference code), which
``tests.support.g711`` (μ-law only) lacks.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.g711 import DECODE as ULAW_DECODE

PCMU, PCMA = 0, 8
PAYLOAD_TYPES = {"PCMU": PCMU, "PCMA": PCMA}
FRAME_BYTES = 160  # 20 ms at 8 kHz, one byte per sample
FRAME_S = 0.020
BASE_PORT = 40000

_PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_IPPROTO_UDP = 17


# --- G.711 A-law ---------------------------------------------------------------------

_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode_sample(sample: int) -> int:
    """One 16-bit linear sample to its A-law byte (even bits inverted: XOR 0x55)."""
    value = sample >> 3  # A-law codes 13-bit magnitudes
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    for segment, end in enumerate(_ALAW_SEGMENT_ENDS):  # noqa: B007 (read after the loop)
        if value <= end:
            break
    else:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((value >> shift) & 0x0F)) ^ mask


def alaw_decode_sample(byte: int) -> int:
    byte ^= 0x55
    magnitude = (byte & 0x0F) << 4
    segment = (byte & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if byte & 0x80 else -magnitude


ALAW_DECODE = [alaw_decode_sample(b) for b in range(256)]
_ULAW_TO_ALAW = bytes(alaw_encode_sample(ULAW_DECODE[b]) for b in range(256))


def ulaw_to_alaw(payload: bytes) -> bytes:
    """μ-law bytes (e.g. ``g711.tone``) as the A-law bytes of the same samples."""
    return payload.translate(_ULAW_TO_ALAW)


def encode_as(codec: str, ulaw_payload: bytes) -> bytes:
    """``ulaw_payload`` in ``codec`` ("PCMU" or "PCMA")."""
    if codec == "PCMU":
        return ulaw_payload
    if codec == "PCMA":
        return ulaw_to_alaw(ulaw_payload)
    raise ValueError(f"not a G.711 codec: {codec!r}")


# --- RTP -------------------------------------------------------------------------------


def rtp_packet(
    payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, *, marker: bool = False
) -> bytes:
    """An RTP packet (RFC 3550 §5.1): version 2, no padding, extension or CSRCs."""
    return struct.pack(
        "!BBHII",
        0x80,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        seq & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    ) + payload


@dataclass(frozen=True)
class RtpHeader:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool

    @classmethod
    def parse(cls, data: bytes) -> RtpHeader:
        first, second, seq, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
        if first >> 6 != 2:
            raise ValueError("not RTP version 2")
        return cls(second & 0x7F, seq, timestamp, ssrc, bool(second & 0x80))


def rtp_stream(
    payload: bytes, payload_type: int, ssrc: int, *, seq: int = 0, timestamp: int = 0
) -> list[bytes]:
    """``payload`` cut into 20 ms RTP packets (a short last frame is dropped)."""
    packets = []
    for index in range(len(payload) // FRAME_BYTES):
        frame = payload[index * FRAME_BYTES : (index + 1) * FRAME_BYTES]
        packets.append(
            rtp_packet(payload_type, seq + index, timestamp + index * FRAME_BYTES, ssrc, frame,
                       marker=index == 0)
        )
    return packets


# --- pcap ------------------------------------------------------------------------------


def _ipv4_checksum(header: bytes) -> int:
    total = int(sum(struct.unpack(f"!{len(header) // 2}H", header)))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(address: str) -> bytes:
    return bytes(int(part) for part in address.split("."))


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes, ident: int) -> bytes:
    """Ethernet II / IPv4 / UDP around ``payload``; UDP checksum 0 (none)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, _IPPROTO_UDP, 0,
        _ip(src), _ip(dst),
    )
    header = header[:10] + struct.pack("!H", _ipv4_checksum(header)) + header[12:]
    ethernet = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + struct.pack("!H", _ETHERTYPE_IPV4)
    return ethernet + header + udp


@dataclass(frozen=True)
class PcapLegs:
    """What ``write_rtp_pcap`` wrote: enough for a test to know what to expect."""

    path: Path
    packets_per_leg: int
    ssrcs: tuple[int, ...]
    payload_type: int

    @property
    def seconds(self) -> float:
        return self.packets_per_leg * FRAME_S


def write_rtp_pcap(
    path: Path,
    legs: Sequence[bytes],
    payload_type: int,
    *,
    base_port: int = BASE_PORT,
    src_ip: str = "192.0.2.10",
    dst_ip: str = "192.0.2.20",
    seed: int = 7,
) -> PcapLegs:
    """Write one G.711 payload per leg as interleaved 20 ms RTP packets, 20 ms apart.

    Leg ``i`` is sent from port ``base_port + 1000 + 2 * i`` to ``base_port + 2 * i``; all
    legs' packets of one 20 ms tick share its capture time, in leg order.
    """
    rng = random.Random(seed)
    ssrcs = tuple(rng.getrandbits(32) for _ in legs)
    streams = [
        rtp_stream(payload, payload_type, ssrc, seq=rng.getrandbits(16), timestamp=rng.getrandbits(32))
        for payload, ssrc in zip(legs, ssrcs)
    ]
    count = min(len(s) for s in streams)
    out = bytearray(struct.pack("<IHHiIII", _PCAP_MAGIC, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
    start = 1_700_000_000_000_000  # µs; any fixed epoch will do
    ident = 0
    for tick in range(count):
        at = start + tick * int(FRAME_S * 1_000_000)
        for leg, stream in enumerate(streams):
            ident += 1
            frame = udp_frame(src_ip, dst_ip, base_port + 1000 + 2 * leg, base_port + 2 * leg, stream[tick], ident)
            out += struct.pack("<IIII", at // 1_000_000, at % 1_000_000, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return PcapLegs(path, count, ssrcs, payload_type)


@dataclass(frozen=True)
class CapturedDatagram:
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def read_pcap(path: Path) -> list[CapturedDatagram]:
    """The UDP/IPv4 datagrams of a classic Ethernet pcap (what ``write_rtp_pcap`` makes)."""
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    if magic != _PCAP_MAGIC or linktype != _LINKTYPE_ETHERNET:
        raise ValueError("not a little-endian microsecond Ethernet pcap")
    datagrams = []
    offset = 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[offset : offset + 16])
        if incl != orig:
            raise ValueError("truncated packet in pcap")
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        if struct.unpack("!H", frame[12:14])[0] != _ETHERTYPE_IPV4:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != _IPPROTO_UDP or _ipv4_checksum(ip[:ihl]) != 0:
            raise ValueError("not UDP, or a bad IPv4 header checksum")
        sport, dport, length, _checksum = struct.unpack("!HHHH", ip[ihl : ihl + 8])
        datagrams.append(
            CapturedDatagram(
                sec + usec / 1e6, ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20])),
                sport, dport, bytes(ip[ihl + 8 : ihl + length]),
            )
        )
    return datagrams

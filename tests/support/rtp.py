"""Build RTP packets (RFC 3550 §5.1) for tests, independently of the parser under test."""

from __future__ import annotations

import struct


def build_rtp(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrc: tuple[int, ...] | list[int] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """One RTP packet. ``extension`` is ``(profile, data)`` with ``len(data)`` a multiple of 4;
    ``padding`` is the number of padding octets (the last one holds the count)."""
    first = 0x80 | len(csrc)
    if extension is not None:
        first |= 0x10
    if padding:
        first |= 0x20
    header = struct.pack(
        "!BBHII", first, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF
    )
    header += b"".join(struct.pack("!I", c) for c in csrc)
    if extension is not None:
        profile, data = extension
        assert len(data) % 4 == 0
        header += struct.pack("!HH", profile, len(data) // 4) + data
    tail = b"\0" * (padding - 1) + bytes([padding]) if padding else b""
    return header + payload + tail

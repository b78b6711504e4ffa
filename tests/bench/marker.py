"""The benchmark's payload marker: which leg, which 20 ms chunk, and when it was sent.

The sender writes it into the first bytes of every μ-law payload; the load generator reads it
back from the SRTP-unprotected RTP payload. ``live`` forwards payloads untouched, and the naive
baseline decodes and re-encodes them: G.711 μ-law decode/encode gives back every code except
0x7F (negative zero, re-encoded as 0xFF), so the marker only uses the codes 0xE0-0xEF (one hex
digit each, quiet samples) and survives both paths byte for byte.

``send_ns`` is ``time.monotonic_ns()`` in the sender process: CLOCK_MONOTONIC is one clock for
every process on a Linux machine, so the load generator can subtract it from its own arrival
time.
"""

from __future__ import annotations

AGENT, CALLER = 0, 1
LEG_NAMES = ("agent", "caller")
LEG_BASE = 0xE0  # byte 0: LEG_BASE + leg
MARKER_LEN = 25  # 1 leg byte + 8 hex digits of chunk + 16 hex digits of send_ns
PAYLOAD_LEN = 160  # 20 ms of 8 kHz μ-law
FILLER = 0xFE  # a quiet μ-law code that round-trips

_HEX = b"0123456789abcdef"
_CODES = bytes(range(LEG_BASE, LEG_BASE + 16))
_ENCODE = bytes.maketrans(_HEX, _CODES)
_DECODE = bytes.maketrans(_CODES, _HEX)
_FILL = bytes([FILLER]) * (PAYLOAD_LEN - MARKER_LEN)


def encode_payload(leg: int, chunk: int, send_ns: int) -> bytes:
    """A 160-byte μ-law payload starting with the marker."""
    digits = b"%08x%016x" % (chunk & 0xFFFFFFFF, send_ns & 0xFFFFFFFFFFFFFFFF)
    return bytes((LEG_BASE + leg,)) + digits.translate(_ENCODE) + _FILL


def decode_marker(marker: bytes) -> tuple[int, int]:
    """``(chunk, send_ns)`` from the 24 bytes that follow the leg byte."""
    digits = marker.translate(_DECODE)
    return int(digits[:8], 16), int(digits[8:24], 16)

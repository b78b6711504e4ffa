"""A small G.711 μ-law encoder/decoder for making and checking test audio (ITU-T G.711)."""

from __future__ import annotations

import math

BIAS, CLIP = 0x84, 32635


def ulaw_encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), CLIP) + BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode_sample(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS
    return -magnitude if sign else magnitude


DECODE = [ulaw_decode_sample(b) for b in range(256)]


def tone(freq: float, seconds: float, amplitude: float, rate: int = 8000) -> bytes:
    """A sine tone as μ-law bytes; ``amplitude`` is a fraction of full scale."""
    count = int(seconds * rate)
    return bytes(
        ulaw_encode_sample(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(count)
    )


def rms(payload: bytes) -> float:
    if not payload:
        return 0.0
    return math.sqrt(sum(DECODE[b] ** 2 for b in payload) / len(payload)) / 32768

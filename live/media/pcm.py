"""Linear PCM to G.711 μ-law, once per leg: the one place ``live`` encodes audio.

Sources that send 16-bit linear PCM (Genesys AudioHook L16, WebSocket forks, Asterisk
AudioSocket) are turned into the 8 kHz μ-law packets every listener gets (architecture
decision 2: encode once per leg, never per listener).

* ``l16_to_pcmu`` follows ITU-T G.711 (μ-law, the segment/bias algorithm of the reference
  code in G.191): a 65 536-entry table built once at import, so encoding is one table look-up
  per sample with no per-sample Python arithmetic.
* ``Downsampler`` halves 16 kHz to 8 kHz: a windowed-sinc half-band FIR low-pass (cut-off
  4 kHz, every other tap zero) evaluated only at the kept samples, with the filter's history
  carried across calls so frame boundaries leave no clicks.
* ``L16Encoder`` is what a leg holds: it keeps a dangling odd byte and the filter's state
  from one frame to the next.

Samples are 16-bit signed little-endian (the byte order of L16 on every WebSocket source
here). Pure Python over ``array``: numpy is not a runtime dependency.
"""

from __future__ import annotations

import math
import sys
from array import array

__all__ = ["SUPPORTED_RATES", "Downsampler", "L16Encoder", "l16_to_pcmu", "split_channels"]

SUPPORTED_RATES = (8000, 16000)
_BIAS = 0x84  # G.711 μ-law bias (132)
_CLIP = 32635  # largest magnitude before the bias would overflow 15 bits
_BIG_ENDIAN_HOST = sys.byteorder == "big"


def _encode_sample(sample: int) -> int:
    """One linear sample to its μ-law byte (G.711 §3, as in the G.191 reference code)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = magnitude.bit_length() - 8  # segment: position of the top bit above bit 7
    exponent = max(0, min(exponent, 7))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _build_table() -> bytes:
    # Indexed by the sample read as an unsigned 16-bit number: 0..32767 then -32768..-1.
    return bytes(_encode_sample(u - 65536 if u >= 32768 else u) for u in range(65536))


_ULAW: bytes = _build_table()
_ulaw_of = _ULAW.__getitem__


def _samples(pcm: bytes, typecode: str) -> array[int]:
    """``pcm`` (little-endian 16-bit) as an array; a trailing odd byte is ignored."""
    values = array(typecode)
    values.frombytes(pcm[: len(pcm) & ~1])
    if _BIG_ENDIAN_HOST:
        values.byteswap()
    return values


def l16_to_pcmu(pcm: bytes) -> bytes:
    """16-bit signed little-endian mono samples to G.711 μ-law, one byte per sample.

    A trailing odd byte is not a sample and is ignored (``L16Encoder`` keeps it for the next
    frame instead). Zero encodes as ``0xFF``; ±full scale as ``0x80`` / ``0x00``.
    """
    return bytes(map(_ulaw_of, _samples(pcm, "H")))


def split_channels(data: bytes, channels: int, sample_width: int) -> list[bytes]:
    """Deinterleave ``data`` (frames of ``channels`` samples of ``sample_width`` bytes).

    Returns one byte string per channel, in channel order. Raises ``ValueError`` when
    ``data`` is not whole frames, so a damaged frame cannot shift every later sample onto the
    wrong channel.
    """
    if channels < 1 or sample_width < 1:
        raise ValueError("channels and sample_width must be at least 1")
    frame = channels * sample_width
    if len(data) % frame:
        raise ValueError(f"{len(data)} bytes are not whole frames of {frame} bytes")
    if channels == 1:
        return [bytes(data)]
    if sample_width == 1:
        return [bytes(data[c::channels]) for c in range(channels)]
    if sample_width == 2:
        values = array("H")
        values.frombytes(data)  # byte order is kept as is: nothing is interpreted here
        return [values[c::channels].tobytes() for c in range(channels)]
    view = memoryview(data)
    return [
        b"".join(view[i : i + sample_width] for i in range(c * sample_width, len(data), frame))
        for c in range(channels)
    ]


def _half_band_taps(length: int) -> list[float]:
    """A windowed-sinc (Blackman) half-band low-pass of ``length`` taps (odd, 4k+3).

    Cut-off at a quarter of the input rate (4 kHz at 16 kHz); the even taps away from the
    centre are exactly zero, which ``Downsampler`` exploits.
    """
    half = length // 2
    taps = []
    for n in range(-half, half + 1):
        ideal = 0.5 if n == 0 else math.sin(math.pi * n / 2) / (math.pi * n)
        window = 0.42 + 0.5 * math.cos(math.pi * n / (half + 1)) + 0.08 * math.cos(2 * math.pi * n / (half + 1))
        taps.append(ideal * window)
    total = sum(taps)
    return [t / total for t in taps]  # unity gain at DC


class Downsampler:
    """16 kHz → 8 kHz, 16-bit little-endian mono, stateful across calls.

    Low-pass then keep every other sample. The filter is a 23-tap Blackman-windowed half-band
    FIR (cut-off 4 kHz): flat to within 0.5 dB up to 3 kHz, -26 dB at 5 kHz, more than 70 dB
    down from 6 kHz, so what would alias into the telephone band is gone. Only the six nonzero
    tap pairs and the centre tap are evaluated, and only at the kept samples. The output lags
    the input by ``DELAY`` input samples (the filter's group delay); nothing is lost at frame
    boundaries: the history is carried over, and an odd sample or byte waits for the next call.
    """

    TAPS = 23
    DELAY = TAPS // 2

    def __init__(self) -> None:
        taps = _half_band_taps(self.TAPS)
        d = self.DELAY
        self._centre = taps[d]
        self._pairs = tuple(taps[d + k] for k in range(1, d + 1, 2))  # taps at ±1, ±3, … ±11
        self._history: list[int] = [0] * (2 * d)  # primed with silence
        self._odd_byte = b""

    def process(self, pcm16: bytes) -> bytes:
        data = self._odd_byte + pcm16 if self._odd_byte else pcm16
        self._odd_byte = data[len(data) & ~1 :]
        x = self._history + _samples(data, "h").tolist()
        d = self.DELAY
        count = (len(x) - 2 * d) // 2  # outputs whose whole window is available
        if count <= 0:
            self._history = x
            return b""
        self._history = x[2 * count :]
        e = d + 2 * count
        c0 = self._centre
        c1, c3, c5, c7, c9, c11 = self._pairs
        # One pass over strided slices, unrolled for the 23 taps: several times faster in
        # CPython than a loop per tap (this runs for every 16 kHz leg every 20 ms).
        filtered = [
            c0 * x0 + c1 * (a1 + b1) + c3 * (a3 + b3) + c5 * (a5 + b5) + c7 * (a7 + b7)
            + c9 * (a9 + b9) + c11 * (a11 + b11)
            for x0, a1, b1, a3, b3, a5, b5, a7, b7, a9, b9, a11, b11 in zip(
                x[d:e:2],
                x[d - 1 : e - 1 : 2], x[d + 1 : e + 1 : 2],
                x[d - 3 : e - 3 : 2], x[d + 3 : e + 3 : 2],
                x[d - 5 : e - 5 : 2], x[d + 5 : e + 5 : 2],
                x[d - 7 : e - 7 : 2], x[d + 7 : e + 7 : 2],
                x[d - 9 : e - 9 : 2], x[d + 9 : e + 9 : 2],
                x[d - 11 : e - 11 : 2], x[d + 11 : e + 11 : 2],
            )
        ]
        out = array("h", [32767 if v >= 32767 else -32768 if v <= -32768 else round(v) for v in filtered])
        if _BIG_ENDIAN_HOST:
            out.byteswap()
        return out.tobytes()


class L16Encoder:
    """One leg's linear PCM (8 or 16 kHz, 16-bit LE mono) to 8 kHz μ-law, any frame size.

    Keeps what a frame boundary splits (an odd byte, the resampler's history), so a stream
    cut into frames of any length encodes exactly as it would whole (after the resampler's
    fixed ``Downsampler.DELAY`` at 16 kHz).
    """

    def __init__(self, rate: int) -> None:
        if rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported L16 rate {rate}: expected one of {SUPPORTED_RATES}")
        self.rate = rate
        self._downsampler = Downsampler() if rate == 16000 else None
        self._odd_byte = b""

    def encode(self, pcm16: bytes) -> bytes:
        if self._downsampler is not None:
            return l16_to_pcmu(self._downsampler.process(pcm16))
        data = self._odd_byte + pcm16 if self._odd_byte else pcm16
        self._odd_byte = data[len(data) & ~1 :]
        return l16_to_pcmu(data)

"""Linear PCM to μ-law (ITU-T G.711), deinterleaving and 16 → 8 kHz resampling."""

from __future__ import annotations

import math
import struct
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.media.pcm import Downsampler, L16Encoder, l16_to_pcmu, split_channels
from tests.support.g711 import DECODE, ulaw_encode_sample


def le16(samples: list[int]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def from_le16(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def sine(freq: float, rate: int, count: int, amplitude: float) -> list[int]:
    return [round(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)]


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples))


# --- l16_to_pcmu: known answers ------------------------------------------------------------


def test_known_values() -> None:
    # G.711 μ-law: zero is 0xFF, the largest positive code 0x80, the largest negative 0x00;
    # -1 lands in the negative zero code 0x7F.
    assert l16_to_pcmu(le16([0, 32767, -32768, -1, 1])) == bytes([0xFF, 0x80, 0x00, 0x7F, 0xFF])


def test_matches_the_reference_encoder_for_every_sample() -> None:
    every = list(range(-32768, 32768))
    encoded = l16_to_pcmu(le16(every))
    assert encoded == bytes(ulaw_encode_sample(s) for s in every)


def test_round_trip_stays_within_g711_quantisation_error() -> None:
    for sample in range(-32768, 32768, 7):
        decoded = DECODE[l16_to_pcmu(le16([sample]))[0]]
        # Each segment's step is 2^(segment+3); the error is at most half a step (plus the
        # clip at 32635 for the loudest samples).
        step = 8 << min(7, max(0, (min(abs(sample), 32635) + 0x84).bit_length() - 8))
        assert abs(decoded - max(-32635, min(32635, sample))) <= step // 2 + 1


def test_odd_trailing_byte_is_not_a_sample() -> None:
    assert l16_to_pcmu(le16([0, 0]) + b"\x01") == b"\xff\xff"
    assert l16_to_pcmu(b"") == b""


# --- split_channels -----------------------------------------------------------------------


def test_split_two_channels_of_16_bit() -> None:
    left, right = [1, 2, 3], [-1, -2, -3]
    interleaved = le16([v for pair in zip(left, right) for v in pair])
    assert split_channels(interleaved, 2, 2) == [le16(left), le16(right)]


def test_split_bytes_and_wider_samples() -> None:
    assert split_channels(b"abcdef", 2, 1) == [b"ace", b"bdf"]
    assert split_channels(b"abcdef", 3, 1) == [b"ad", b"be", b"cf"]
    assert split_channels(b"123456abcdef", 2, 3) == [b"123abc", b"456def"]
    assert split_channels(b"xyz", 1, 1) == [b"xyz"]


def test_split_refuses_partial_frames() -> None:
    with pytest.raises(ValueError):
        split_channels(b"abc", 2, 1)
    with pytest.raises(ValueError):
        split_channels(b"abcdef", 2, 2)
    with pytest.raises(ValueError):
        split_channels(b"", 0, 2)


@given(st.integers(1, 4), st.integers(1, 3), st.binary(max_size=96))
def test_split_then_interleave_round_trips(channels: int, width: int, raw: bytes) -> None:
    frame = channels * width
    data = raw[: len(raw) - len(raw) % frame]
    parts = split_channels(data, channels, width)
    assert len(parts) == channels
    rebuilt = b"".join(
        b"".join(part[i : i + width] for part in parts) for i in range(0, len(data) // channels, width)
    )
    assert rebuilt == data


# --- Downsampler and L16Encoder -------------------------------------------------------------


def test_1khz_tone_keeps_its_level() -> None:
    tone = sine(1000, 16000, 16000, 0.5)
    out = from_le16(Downsampler().process(le16(tone)))
    assert len(out) == 8000
    settled = out[Downsampler.DELAY :]
    assert rms(settled) == pytest.approx(rms(tone), rel=0.02)
    # and it is still the same 1 kHz sine, delayed by the filter's group delay
    shift = Downsampler.DELAY / 2  # group delay in output samples
    delayed = [round(0.5 * 32767 * math.sin(2 * math.pi * 1000 * (i - shift) / 8000)) for i in range(len(out))]
    correlation = sum(a * b for a, b in zip(out[20:], delayed[20:])) / (rms(out[20:]) * rms(delayed[20:]) * len(out[20:]))
    assert correlation > 0.99


def test_6khz_tone_is_attenuated() -> None:
    tone = sine(6000, 16000, 16000, 0.5)
    out = from_le16(Downsampler().process(le16(tone)))
    assert rms(out[Downsampler.DELAY :]) < rms(tone) / 100  # more than 40 dB down


def test_frame_boundaries_change_nothing() -> None:
    signal = le16(sine(440, 16000, 3201, 0.3)) + b"\x07"
    whole = Downsampler().process(signal)
    for size in (1, 3, 37, 320, 641):
        pieces = Downsampler()
        split = b"".join(pieces.process(signal[i : i + size]) for i in range(0, len(signal), size))
        assert split == whole, size


def test_loud_input_clips_instead_of_wrapping() -> None:
    square = [32767] * 200 + [-32768] * 200
    out = from_le16(Downsampler().process(le16(square * 4)))
    assert max(out) <= 32767 and min(out) >= -32768
    assert max(out) > 30000 and min(out) < -30000


def test_encoder_at_8khz_is_plain_g711_across_odd_frames() -> None:
    samples = le16(sine(300, 8000, 800, 0.4))
    encoder = L16Encoder(8000)
    out = b"".join(encoder.encode(samples[i : i + 33]) for i in range(0, len(samples), 33))
    assert out == l16_to_pcmu(samples)


def test_encoder_at_16khz_halves_the_rate() -> None:
    encoder = L16Encoder(16000)
    out = b"".join(encoder.encode(le16(sine(1000, 16000, 320, 0.5))) for _ in range(10))
    assert len(out) == 1600  # 200 ms at 8 kHz
    level = math.sqrt(sum(DECODE[b] ** 2 for b in out[160:]) / len(out[160:]))
    assert level == pytest.approx(0.5 * 32767 / math.sqrt(2), rel=0.05)


def test_encoder_refuses_other_rates() -> None:
    with pytest.raises(ValueError):
        L16Encoder(44100)


def test_silence_encodes_to_the_silence_byte() -> None:
    assert L16Encoder(16000).encode(bytes(640)) == b"\xff" * 160
    assert array("h", from_le16(Downsampler().process(bytes(64)))) == array("h", [0] * 16)

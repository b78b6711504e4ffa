"""The shipped demo clips: μ-law 8 kHz, two different voices per call that take turns."""

from __future__ import annotations

import math
import struct
from importlib import resources

import pytest

from live.demo.voices import DemoCall, demo_calls, load_clip, parse_mulaw_wav
from live.errors import ConfigError, LiveError
from live.types import Consent
from tests.support.g711 import DECODE

WINDOW = 1600  # 200 ms at 8 kHz
LOUD = 0.02  # RMS as a fraction of full scale: speech is far above, the pauses far below


def _wav(
    data: bytes,
    *,
    tag: int = 7,
    rate: int = 8000,
    channels: int = 1,
    bits: int = 8,
    extra: bytes = b"",
    fmt_tail: bytes = b"\x00\x00",
) -> bytes:
    fmt = struct.pack(
        "<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits
    )
    fmt += fmt_tail
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _loudness(audio: bytes) -> list[float]:
    """RMS per 200 ms window after G.711 μ-law decoding, as a fraction of full scale."""
    return [
        math.sqrt(sum(DECODE[b] ** 2 for b in audio[i : i + WINDOW]) / WINDOW) / 32768
        for i in range(0, len(audio) - WINDOW + 1, WINDOW)
    ]


def test_three_demo_calls_with_agents_queues_and_consent() -> None:
    calls = demo_calls()
    assert [c.agent_id for c in calls] == ["agent-1", "agent-2", "agent-3"]
    assert [c.queue for c in calls] == ["billing", "support", "sales"]
    assert [c.consent for c in calls] == [Consent.GRANTED, Consent.UNKNOWN, Consent.GRANTED]
    assert [(c.agent_clip, c.caller_clip) for c in calls] == [
        (f"call{n}-agent", f"call{n}-caller") for n in (1, 2, 3)
    ]
    assert all(isinstance(c, DemoCall) for c in calls)
    calls.clear()
    assert len(demo_calls()) == 3  # callers get a copy


@pytest.mark.parametrize(
    "name", [f"call{n}-{leg}" for n in (1, 2, 3) for leg in ("agent", "caller")]
)
def test_shipped_file_is_8khz_mono_mulaw(name: str) -> None:
    data = resources.files("live").joinpath("demo", "voices", f"{name}.wav").read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    tag, channels, rate = struct.unpack_from("<HHI", data, data.index(b"fmt ") + 8)
    assert (tag, channels, rate) == (7, 1, 8000)
    audio = load_clip(name)
    assert load_clip(f"{name}.wav") == audio
    assert 10 * 8000 <= len(audio) <= 20 * 8000
    peak = max(abs(DECODE[b]) for b in audio) / 32768
    assert 0.6 <= peak <= 0.75  # normalised to about -3 dBFS


@pytest.mark.parametrize("call", demo_calls(), ids=lambda c: c.agent_id)
def test_agent_and_caller_take_turns(call: DemoCall) -> None:
    agent, caller = load_clip(call.agent_clip), load_clip(call.caller_clip)
    assert agent != caller
    assert len(agent) == len(caller)  # one timeline, so the legs stay aligned when looped
    loud_agent = [x > LOUD for x in _loudness(agent)]
    loud_caller = [x > LOUD for x in _loudness(caller)]
    windows = len(loud_agent)
    assert sum(loud_agent) >= windows / 4, "the agent speaks"
    assert sum(loud_caller) >= windows / 5, "the caller speaks"
    both = sum(a and c for a, c in zip(loud_agent, loud_caller))
    assert both <= windows / 20, "agent and caller should rarely speak at once"
    # The agent opens the call, as a contact centre greeting does.
    first_agent, first_caller = loud_agent.index(True), loud_caller.index(True)
    assert first_agent < first_caller


def test_clips_of_different_calls_differ() -> None:
    clips = {load_clip(name) for c in demo_calls() for name in (c.agent_clip, c.caller_clip)}
    assert len(clips) == 6


def test_parse_returns_the_data_chunk_across_other_chunks() -> None:
    samples = bytes(range(255))  # odd length: the RIFF pad byte must not become audio
    fact = b"fact" + struct.pack("<I", 4) + struct.pack("<I", len(samples))
    odd = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd-sized chunk, padded
    assert parse_mulaw_wav(_wav(samples, extra=fact + odd)) == samples


def test_parse_accepts_wave_format_extensible_mulaw() -> None:
    guid = struct.pack("<H", 7) + bytes.fromhex("000000001000800000aa00389b71")
    tail = struct.pack("<HHI", 22, 8, 0) + guid
    assert parse_mulaw_wav(_wav(b"\xff" * 160, tag=0xFFFE, fmt_tail=tail)) == b"\xff" * 160


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a RIFF/WAVE"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "not a RIFF/WAVE"),
        (_wav(b"\x00\x00" * 80, tag=1, bits=16), "not μ-law"),
        (_wav(b"\xff" * 160, tag=6), "not μ-law"),
        (_wav(b"\xff" * 160, rate=16000), "16000 Hz"),
        (_wav(b"\xff" * 160, channels=2), "2 channel"),
        (_wav(b""), "no audio data"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no valid fmt chunk"),
        (b"RIFF\x20\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00", "truncated"),
    ],
)
def test_parse_rejects_what_is_not_8khz_mono_mulaw(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_mulaw_wav(data, "broken")
    assert caught.value.fields == {"clip": "broken"}
    assert isinstance(caught.value, LiveError)


@pytest.mark.parametrize("name", ["no-such-clip", "../pyproject", "", ".hidden", "a/b"])
def test_load_clip_names_a_missing_or_bad_clip(name: str) -> None:
    with pytest.raises(ConfigError, match="demo clip"):
        load_clip(name)

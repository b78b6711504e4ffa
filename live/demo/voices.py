"""The speech clips `live demo` streams, shipped as package data, and the calls they make up.

Each demo call has two clips of equal length built on one timeline (see
``deploy/make-demo-voices.sh``): the agent leg is silent while the caller speaks and vice
versa, so looping both together sounds like a conversation. Clips are WAV files holding
8 kHz mono 8-bit G.711 μ-law (WAVE format tag 7); the stdlib ``wave`` module reads only PCM,
so the RIFF chunks are parsed here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources

from ..errors import ConfigError
from ..types import Consent

WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
SAMPLE_RATE = 8000


@dataclass(frozen=True, slots=True)
class DemoCall:
    """One simulated call: who is on it, what the telephony flow reports, which clips play."""

    agent_id: str
    queue: str
    consent: Consent
    agent_clip: str
    caller_clip: str
    language: str = "en"


_DEMO_CALLS = (
    DemoCall("agent-1", "billing", Consent.GRANTED, "call1-agent", "call1-caller", "en"),
    DemoCall("agent-2", "support", Consent.UNKNOWN, "call2-agent", "call2-caller", "de"),
    DemoCall("agent-3", "sales", Consent.GRANTED, "call3-agent", "call3-caller", "en"),
)


def demo_calls() -> list[DemoCall]:
    """The three demo calls: agent-1 billing, agent-2 support (German), agent-3 sales."""
    return list(_DEMO_CALLS)


def _chunks(data: bytes, name: str) -> dict[bytes, bytes]:
    """The RIFF/WAVE sub-chunks by id (first occurrence wins); raises ``ConfigError``."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ConfigError(f"demo clip {name!r} is not a RIFF/WAVE file", clip=name)
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if len(body) < size and chunk_id != b"data":
            raise ConfigError(f"demo clip {name!r} is truncated in chunk {chunk_id!r}", clip=name)
        chunks.setdefault(chunk_id, body)
        offset += 8 + size + (size & 1)  # RIFF chunks are padded to an even length
    return chunks


def parse_mulaw_wav(data: bytes, name: str = "clip") -> bytes:
    """The μ-law samples of a WAV file that must be 8 kHz mono 8-bit μ-law.

    Accepts format tag 7 (``WAVE_FORMAT_MULAW``) and ``WAVE_FORMAT_EXTENSIBLE`` with a μ-law
    sub-format. Raises ``ConfigError`` naming the clip for anything else.
    """
    chunks = _chunks(data, name)
    fmt = chunks.get(b"fmt ")
    if fmt is None or len(fmt) < 16:
        raise ConfigError(f"demo clip {name!r} has no valid fmt chunk", clip=name)
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if tag != WAVE_FORMAT_MULAW:
        raise ConfigError(f"demo clip {name!r} is not μ-law (format tag {tag})", clip=name)
    if (rate, channels, bits) != (SAMPLE_RATE, 1, 8):
        raise ConfigError(
            f"demo clip {name!r} is {rate} Hz, {channels} channel(s), {bits}-bit; "
            f"expected {SAMPLE_RATE} Hz mono 8-bit",
            clip=name,
        )
    samples = chunks.get(b"data")
    if not samples:
        raise ConfigError(f"demo clip {name!r} has no audio data", clip=name)
    return samples


def load_clip(name: str) -> bytes:
    """The raw μ-law bytes of a shipped clip, e.g. ``load_clip("call1-agent")``.

    ``name`` may carry the ``.wav`` suffix. Raises ``ConfigError`` if the clip is missing
    (an installation without package data) or not 8 kHz mono μ-law.
    """
    stem = name.removesuffix(".wav")
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ConfigError(f"bad demo clip name {name!r}", clip=name)
    resource = resources.files("live").joinpath("demo", "voices", f"{stem}.wav")
    try:
        data = resource.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"demo clip {stem!r} is missing from the installed package "
            "(make it with deploy/make-demo-voices.sh)",
            clip=stem,
        ) from exc
    return parse_mulaw_wav(data, stem)

"""Demo clips and the call simulator (against a recording WebSocket server)."""

from __future__ import annotations

import pytest

from live.demo.voices import demo_calls, load_clip, parse_mulaw_wav
from live.errors import ConfigError
from tests.support.g711 import rms


def test_every_clip_is_speech_and_legs_alternate() -> None:
    for call in demo_calls():
        agent, caller = load_clip(call.agent_clip), load_clip(call.caller_clip)
        assert len(agent) > 8000 * 8 and len(agent) == len(caller)
        assert agent != caller
        windows = range(0, len(agent) - 1600, 1600)  # 200 ms
        loud_agent = [rms(agent[i : i + 1600]) > 0.02 for i in windows]
        loud_caller = [rms(caller[i : i + 1600]) > 0.02 for i in windows]
        assert sum(loud_agent) > len(loud_agent) / 5
        assert sum(loud_caller) > len(loud_caller) / 5
        overlap = sum(a and c for a, c in zip(loud_agent, loud_caller))
        assert overlap <= len(loud_agent) / 20, "agent and caller should take turns"


def test_bad_wav_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not a RIFF"):
        parse_mulaw_wav(b"nonsense")
    with pytest.raises(ConfigError):
        load_clip("no-such-clip")

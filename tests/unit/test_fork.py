"""L16 WebSocket forks: the first frame of each vendor, and the per-socket state machine."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.errors import Conflict, ProtocolError
from live.ingest.fork import KINDS, MAX_METADATA_BYTES, ForkStream, parse_metadata
from live.ingest.joined import JoinedCalls
from live.media.hub import EncodedPacket
from live.types import Consent
from tests.support.g711 import rms
from tests.support.l16 import interleave as stereo
from tests.support.l16 import pcm
from tests.support.sink import RecordingSink as Sink

FREESWITCH, JAMBONZ, VONAGE = KINDS["freeswitch"], KINDS["jambonz"], KINDS["vonage"]


# --- what each vendor sends first ---------------------------------------------------------


def test_freeswitch_metadata_is_the_dialplans_json() -> None:
    meta = parse_metadata(
        FREESWITCH,
        json.dumps({"call_id": "fs-1", "agent_id": "1001", "queue": "sales", "consent": "yes",
                    "sample_rate": "16k", "mix_type": "stereo"}),
    )
    assert (meta.call_id, meta.agent_id, meta.queue, meta.consent) == ("fs-1", "1001", "sales", Consent.GRANTED)
    assert (meta.rate, meta.channels, meta.legs) == (16000, 2, ("agent", "caller"))


def test_freeswitch_without_metadata_reads_the_query_string() -> None:
    meta = parse_metadata(FREESWITCH, None, {"uuid": "fs-2", "sample_rate": "8000", "leg": "agent"})
    assert (meta.call_id, meta.rate, meta.channels, meta.legs) == ("fs-2", 8000, 1, ("agent",))


def test_the_first_frame_wins_over_the_query_string() -> None:
    meta = parse_metadata(FREESWITCH, json.dumps({"call_id": "frame"}), {"call_id": "query", "agent": "a-1"})
    assert meta.call_id == "frame" and meta.agent_id == "a-1"


def test_jambonz_call_attributes_with_metadata_merged_in() -> None:
    first = {
        "callSid": "b6a3c1de-1f2e", "callId": "sip-call-id@host", "from": "+15083084809", "to": "+15083728299",
        "direction": "inbound", "sampleRate": 16000, "mixType": "stereo", "agentId": "agent-7", "queue": "support",
    }
    meta = parse_metadata(JAMBONZ, json.dumps(first))
    assert (meta.call_id, meta.agent_id, meta.queue) == ("b6a3c1de-1f2e", "agent-7", "support")
    assert (meta.rate, meta.channels) == (16000, 2)


def test_jambonz_nested_metadata_is_read_too() -> None:
    meta = parse_metadata(JAMBONZ, json.dumps({"callSid": "j-2", "sampleRate": 8000, "mixType": "mono",
                                               "metadata": {"agent_id": "a-2", "leg": "outbound"}}))
    assert meta.agent_id == "a-2" and meta.legs == ("agent",)


def test_vonage_websocket_connected_with_headers() -> None:
    first = {"event": "websocket:connected", "content-type": "audio/l16;rate=16000",
             "uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356", "agent": "agent-9", "leg": "caller"}
    meta = parse_metadata(VONAGE, json.dumps(first))
    assert meta.call_id == "63f61863-4a51-4f6b-86e1-46edebcf9356"
    assert (meta.rate, meta.channels, meta.legs, meta.agent_id) == (16000, 1, ("caller",), "agent-9")
    assert parse_metadata(VONAGE, json.dumps({**first, "content-type": "audio/l16;rate=8000"})).rate == 8000


def test_stereo_agent_channel_can_be_swapped() -> None:
    meta = parse_metadata(FREESWITCH, json.dumps({"call_id": "x", "channels": 2, "agent_channel": 0}))
    assert meta.agent_channel == 0


@pytest.mark.parametrize(
    ("kind", "first", "reason"),
    [
        (FREESWITCH, "not json", "not JSON"),
        (FREESWITCH, "[1, 2]", "JSON object"),
        (FREESWITCH, '{"agent": "a"}', "no call id"),
        (JAMBONZ, '{"call_id": ""}', "no call id"),  # empty is no id
        (JAMBONZ, '{"callSid": "j", "sampleRate": 48000}', "sample rate"),
        (JAMBONZ, '{"callSid": "j", "mixType": "mixed"}', "mixed"),
        (FREESWITCH, '{"call_id": "f", "channels": 3}', "channels"),
        (FREESWITCH, '{"call_id": "f", "leg": "supervisor"}', "unknown leg"),
        (FREESWITCH, '{"call_id": "f", "agent_channel": 2}', "agent_channel"),
        (VONAGE, '{"event": "websocket:connected", "content-type": "audio/l16;rate=44100", "uuid": "v"}', "rate"),
        (FREESWITCH, json.dumps({"call_id": "x" * 200}), "at most"),
        (FREESWITCH, json.dumps({"call_id": "a\nb"}), "printable"),
        (FREESWITCH, "[" * 100_000, "over"),
    ],
)
def test_first_frames_that_cannot_start_a_call(kind: Any, first: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_metadata(kind, first)


def test_oversized_metadata_is_refused_before_parsing() -> None:
    with pytest.raises(ProtocolError, match="over"):
        parse_metadata(FREESWITCH, json.dumps({"call_id": "x", "pad": "x" * MAX_METADATA_BYTES}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    ["call_id", "callSid", "uuid", "sampleRate", "sample_rate", "content-type", "mixType", "channels",
     "leg", "track", "agent_id", "consent", "private", "agent_channel", "metadata", "headers", "event"]
)


@settings(max_examples=400, database=None, deadline=None)
@given(kind=st.sampled_from(list(KINDS.values())), first=st.dictionaries(keys | st.text(max_size=8), json_values, max_size=8))
def test_any_json_first_frame_starts_a_call_or_is_a_protocol_error(kind: Any, first: dict[str, Any]) -> None:
    try:
        meta = parse_metadata(kind, json.dumps(first))
    except ProtocolError:
        return
    assert meta.call_id and meta.rate in (8000, 16000) and meta.channels in (1, 2)
    assert set(meta.legs) <= {"agent", "caller"}


@settings(max_examples=400, database=None, deadline=None)
@given(kind=st.sampled_from(list(KINDS.values())), raw=st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_as_a_first_frame_never_escape_as_another_error(kind: Any, raw: bytes | str) -> None:
    try:
        parse_metadata(kind, raw)
    except ProtocolError:
        pass


# --- ForkStream ---------------------------------------------------------------------------


def level(packets: list[EncodedPacket]) -> float:
    return rms(b"".join(p.payload for p in packets[-10:]))


async def test_stereo_16k_fork_feeds_both_legs_resampled_and_encoded() -> None:
    sink = Sink()
    stream = ForkStream(JAMBONZ, JoinedCalls(sink))
    await stream.handle_text(json.dumps({"callSid": "j-1", "sampleRate": 16000, "mixType": "stereo", "agentId": "a"}))
    assert sink.started[0].legs == ("agent", "caller") and sink.started[0].source == "jambonz"
    audio = stereo(pcm(300, 0.4, 0.05, 16000), pcm(440, 0.4, 0.5, 16000))  # caller quiet, agent loud
    for offset in range(0, len(audio), 1280):  # 20 ms stereo frames at 16 kHz
        await stream.handle_binary(audio[offset : offset + 1280], 0)
    agent, caller = await sink.wait_packets("agent", 15), await sink.wait_packets("caller", 15)
    assert all(len(p.payload) == 160 for p in agent + caller)
    assert [p.pts for p in agent[:3]] == [0, 160, 320]
    assert level(agent) > 0.25 and 0.02 < level(caller) < level(agent) / 4
    await stream.close()
    assert sink.ended == ["j-1"]


async def test_two_mono_sockets_with_one_call_id_are_one_call() -> None:
    sink = Sink()
    calls = JoinedCalls(sink)
    caller = ForkStream(FREESWITCH, calls)
    agent = ForkStream(FREESWITCH, calls)
    await caller.handle_text(json.dumps({"call_id": "fs-9", "leg": "caller"}))
    await agent.handle_text(json.dumps({"call_id": "fs-9", "leg": "agent"}))
    assert [a.legs for a in sink.started] == [("caller",)] and sink.legs == [("agent", "caller")]
    await caller.handle_binary(pcm(300, 0.02, 0.1), 0)
    await agent.handle_binary(pcm(440, 0.02, 0.5), 0)
    assert len(await sink.wait_packets("caller", 1)) == len(await sink.wait_packets("agent", 1)) == 1
    third = ForkStream(FREESWITCH, calls)
    with pytest.raises(Conflict):
        await third.handle_text(json.dumps({"call_id": "fs-9", "leg": "agent"}))
    await caller.close()
    assert sink.ended == [] and sink.legs[-1] == ("agent",)
    await agent.close()
    assert sink.ended == ["fs-9"]


async def test_frames_that_split_samples_keep_the_rest_for_the_next() -> None:
    sink = Sink()
    stream = ForkStream(FREESWITCH, JoinedCalls(sink))
    await stream.handle_text(json.dumps({"call_id": "fs-odd", "channels": 2}))
    audio = stereo(pcm(300, 0.1, 0.3), pcm(440, 0.1, 0.3))
    for offset in range(0, len(audio), 333):  # neither samples nor stereo frames
        await stream.handle_binary(audio[offset : offset + 333], 0)
    assert stream.split_frames > 0
    agent = await sink.wait_packets("agent", 5)
    assert len(agent) == 5 and len(sink.packets("caller")) == 5  # 100 ms, nothing lost
    await stream.close()


async def test_audio_before_metadata_is_a_protocol_error_unless_the_query_names_the_call() -> None:
    with pytest.raises(ProtocolError, match="before the metadata"):
        await ForkStream(VONAGE, JoinedCalls(Sink())).handle_binary(b"\x00" * 640, 0)
    sink = Sink()
    stream = ForkStream(FREESWITCH, JoinedCalls(sink), {"call_id": "fs-q", "agent": "a-3"})
    await stream.handle_binary(b"\x00" * 320, 0)
    assert sink.started[0].call_id == "fs-q" and sink.started[0].agent_id == "a-3"
    await stream.close()


async def test_text_after_the_metadata_is_counted_and_ignored() -> None:
    sink = Sink()
    stream = ForkStream(VONAGE, JoinedCalls(sink))
    await stream.handle_text(json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=8000", "uuid": "v-1"}))
    await stream.handle_text(json.dumps({"event": "websocket:dtmf", "digit": "5"}))
    await stream.handle_text("not even json")
    assert stream.ignored_texts == 2 and stream.state == "started"
    await stream.close()


@settings(max_examples=60, database=None, deadline=None)
@given(chunks=st.lists(st.binary(max_size=700), max_size=25))
async def test_any_binary_frames_after_metadata_never_raise(chunks: list[bytes]) -> None:
    sink = Sink()
    stream = ForkStream(JAMBONZ, JoinedCalls(sink))
    await stream.handle_text(json.dumps({"callSid": "j-f", "sampleRate": 16000, "mixType": "stereo"}))
    for chunk in chunks:
        await stream.handle_binary(chunk, 0)
    total = sum(len(c) for c in chunks)
    published_or_waiting = sum(p.published + p.queued + p.dropped for p in stream._pacers.values())
    assert published_or_waiting <= 2 * (total // 4 // 2 // 160 + 1)
    await stream.close()
    assert sink.ended == ["j-f"]

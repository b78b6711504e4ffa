"""Asterisk AudioSocket: the frame parser (every split, every limit) and one connection's state."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.errors import ProtocolError
from live.ingest.audiosocket import (
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_SILENCE,
    KIND_UUID,
    MAX_AUDIO,
    Audio,
    AudioSocketMessage,
    AudioSocketReader,
    AudioSocketStream,
    Dtmf,
    Error,
    Hangup,
    Silence,
    Unknown,
    Uuid,
    encode,
)
from live.ingest.joined import JoinedCalls
from tests.support.l16 import pcm
from tests.support.sink import RecordingSink as Sink
from tests.unit.test_fork import level

CALL = uuid.UUID("2b1e5c3a-8d4f-4c1e-9a7b-0c5d6e7f8a9b")
HELLO = encode(KIND_UUID, CALL.bytes)


def read_all(data: bytes) -> list[AudioSocketMessage]:
    return AudioSocketReader().feed(data)


def test_what_asterisk_sends_in_order() -> None:
    data = HELLO + encode(KIND_AUDIO, b"\x01\x00" * 160) + encode(KIND_DTMF, b"5") + encode(KIND_HANGUP)
    assert read_all(data) == [Uuid(str(CALL)), Audio(b"\x01\x00" * 160), Dtmf("5"), Hangup()]


def test_the_header_is_kind_then_big_endian_length() -> None:
    assert encode(KIND_AUDIO, b"\x00" * 320)[:3] == b"\x10\x01\x40"


def test_silence_error_and_unknown_kinds() -> None:
    data = HELLO + encode(KIND_SILENCE) + encode(KIND_ERROR, b"\x04") + encode(0x12, b"\x00" * 640)
    assert read_all(data)[1:] == [Silence(), Error(b"\x04"), Unknown(0x12)]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(KIND_AUDIO, b"\x00" * 320), "first AudioSocket message must be the UUID"),
        (encode(KIND_HANGUP), "first"),
        (encode(KIND_UUID, b"\x00" * 15), "0x01 with 15 bytes"),
        (encode(KIND_UUID, b"\x00" * 17), "0x01 with 17 bytes"),
        (HELLO + HELLO, "second AudioSocket UUID"),
        (HELLO + encode(KIND_AUDIO, b"\x00" * (MAX_AUDIO + 2)), "0x10 with"),
        (HELLO + bytes([KIND_AUDIO]) + (0xFFFF).to_bytes(2, "big"), "0x10 with 65535 bytes"),
        (HELLO + encode(KIND_DTMF, b"12"), "0x03 with 2 bytes"),
        (HELLO + encode(KIND_HANGUP, b"x"), "0x00 with 1 bytes"),
        (HELLO + bytes([0x42]) + (5000).to_bytes(2, "big"), "0x42 with 5000 bytes"),
    ],
)
def test_violations_end_the_connection(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        read_all(data)


def test_an_oversized_length_is_refused_before_its_payload_arrives() -> None:
    reader = AudioSocketReader()
    reader.feed(HELLO)
    with pytest.raises(ProtocolError):
        reader.feed(bytes([KIND_AUDIO]) + (MAX_AUDIO + 1).to_bytes(2, "big"))  # no payload yet


messages = st.one_of(
    st.binary(min_size=0, max_size=640).map(lambda b: (KIND_AUDIO, b)),
    st.sampled_from("0123456789*#").map(lambda d: (KIND_DTMF, d.encode())),
    st.just((KIND_SILENCE, b"")),
    st.binary(max_size=8).map(lambda b: (KIND_ERROR, b)),
    st.tuples(st.integers(0x20, 0xFE), st.binary(max_size=64)),
)


@settings(max_examples=300, database=None, deadline=None)
@given(body=st.lists(messages, max_size=20), cuts=st.lists(st.integers(1, 50), max_size=60))
def test_any_valid_stream_parses_the_same_however_it_is_cut(body: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = HELLO + b"".join(encode(kind, payload) for kind, payload in body)
    whole = read_all(data)
    reader = AudioSocketReader()
    pieces: list[AudioSocketMessage] = []
    offset = 0
    for cut in cuts:
        pieces += reader.feed(data[offset : offset + cut])
        offset += cut
    pieces += reader.feed(data[offset:])
    assert pieces == whole and len(whole) == 1 + len(body)


@settings(max_examples=500, database=None, deadline=None)
@given(data=st.binary(max_size=400), prefix=st.booleans())
def test_any_bytes_give_messages_or_a_protocol_error(data: bytes, prefix: bool) -> None:
    try:
        read_all((HELLO if prefix else b"") + data)
    except ProtocolError:
        pass


# --- AudioSocketStream --------------------------------------------------------------------


async def test_one_connection_per_leg_with_one_uuid_is_one_call() -> None:
    sink = Sink()
    calls = JoinedCalls(sink)
    caller, agent = AudioSocketStream(calls, "caller"), AudioSocketStream(calls, "agent")
    assert await caller.handle_data(HELLO, 0)
    assert sink.started[0].call_id == str(CALL) and sink.started[0].legs == ("caller",)
    assert sink.started[0].source == "audiosocket"
    assert await agent.handle_data(HELLO, 0)
    assert sink.legs == [("agent", "caller")]
    loud, quiet = pcm(440, 0.2, 0.5), pcm(300, 0.2, 0.05)
    for offset in range(0, len(loud), 320):
        await agent.handle_data(encode(KIND_AUDIO, loud[offset : offset + 320]), 0)
        await caller.handle_data(encode(KIND_AUDIO, quiet[offset : offset + 320]), 0)
    agent_packets, caller_packets = await sink.wait_packets("agent", 10), await sink.wait_packets("caller", 10)
    assert level(agent_packets) > 0.25 and 0.02 < level(caller_packets) < level(agent_packets) / 4
    assert not await caller.handle_data(encode(KIND_HANGUP), 0)  # hangup: close the socket
    assert sink.ended == [] and sink.legs[-1] == ("agent",)
    await agent.close()
    assert sink.ended == [str(CALL)]


async def test_a_message_split_over_reads_and_odd_audio_lengths() -> None:
    sink = Sink()
    stream = AudioSocketStream(JoinedCalls(sink), "caller")
    data = HELLO + b"".join(encode(KIND_AUDIO, pcm(440, 0.1, 0.3)[i : i + 321]) for i in range(0, 1600, 321))
    for i in range(0, len(data), 7):
        await stream.handle_data(data[i : i + 7], 0)
    assert len(await sink.wait_packets("caller", 5)) == 5  # 100 ms, nothing lost
    await stream.close()
    await stream.close()
    assert sink.ended == [str(CALL)]

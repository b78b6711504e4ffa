"""Twilio Media Streams: message parsing and the per-socket state machine, without a socket."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.errors import Conflict, ProtocolError
from live.ingest.joined import JoinedCalls
from live.ingest.sink import CallAnnouncement
from live.ingest.twilio import (
    MAX_MEDIA_BYTES,
    REORDER_WINDOW,
    TRACK_TO_LEG,
    ChunkOrder,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaError,
    Start,
    Stop,
    TwilioStream,
    Unknown,
    parse_message,
)
from live.media.hub import CallMedia, EncodedPacket, ListenerQueue
from live.types import CallId, Consent, LegName

# --- what Twilio sends, spelled as Twilio spells it (numbers as JSON strings) -------------


def start(call_sid: str = "CA123", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountSid": "AC0",
        "streamSid": "MZ1",
        "callSid": call_sid,
        "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"agent": "agent-7", "consent": "granted", "queue": "billing"},
    }
    body.update(overrides)
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": body}


def media(track: str, payload: bytes, timestamp: int = 0, chunk: int = 1) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(chunk + 1),
        "streamSid": "MZ1",
        "media": {
            "track": track,
            "chunk": str(chunk),
            "timestamp": str(timestamp),
            "payload": base64.b64encode(payload).decode(),
        },
    }


def text(message: dict[str, Any] | list[Any]) -> str:
    return json.dumps(message)


STOP = {"event": "stop", "sequenceNumber": "99", "streamSid": "MZ1", "stop": {"callSid": "CA123"}}


# --- parse_message ------------------------------------------------------------------------


def test_connected() -> None:
    assert parse_message(
        text({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    ) == Connected("Call", "1.0.0")


def test_start_with_custom_parameters_and_both_tracks() -> None:
    message = parse_message(text(start()))
    assert message == Start(
        stream_sid="MZ1",
        call_sid="CA123",
        account_sid="AC0",
        tracks=("inbound", "outbound"),
        encoding="audio/x-mulaw",
        sample_rate=8000,
        custom_parameters={"agent": "agent-7", "consent": "granted", "queue": "billing"},
    )


def test_start_sample_rate_as_a_string_and_parameters_stringified() -> None:
    message = parse_message(
        text(
            start(
                mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": "1"},
                customParameters={"priority": 3, "vip": True},
            )
        )
    )
    assert isinstance(message, Start)
    assert message.sample_rate == 8000
    assert message.custom_parameters == {"priority": "3", "vip": "True"}


def test_start_without_custom_parameters() -> None:
    message = parse_message(text(start(customParameters=None)))
    assert isinstance(message, Start) and message.custom_parameters == {}


def test_start_stream_sid_falls_back_to_the_envelope() -> None:
    body = start()
    del body["start"]["streamSid"]
    message = parse_message(text(body))
    assert isinstance(message, Start) and message.stream_sid == "MZ1"


@pytest.mark.parametrize(("track", "leg"), [("inbound", "caller"), ("outbound", "agent")])
def test_media_numbers_arrive_as_strings(track: str, leg: str) -> None:
    message = parse_message(text(media(track, b"\x7f" * 160, timestamp=1240, chunk=62)))
    assert message == Media(track=track, chunk=62, timestamp_ms=1240, payload=b"\x7f" * 160)
    assert TRACK_TO_LEG[track] == leg


def test_media_also_accepts_plain_json_numbers() -> None:
    body = media("inbound", b"\x00" * 160)
    body["media"]["timestamp"], body["media"]["chunk"] = 40, 2
    message = parse_message(text(body))
    assert isinstance(message, Media) and (message.timestamp_ms, message.chunk) == (40, 2)


def test_media_without_track_is_inbound() -> None:
    body = media("inbound", b"\x00" * 160)
    del body["media"]["track"]
    message = parse_message(text(body))
    assert isinstance(message, Media) and message.track == "inbound"


def test_bytes_messages_are_parsed_too() -> None:
    assert parse_message(text(STOP).encode()) == Stop("stop")


def test_dtmf_mark_stop_and_unknown_events() -> None:
    assert parse_message(
        text({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
    ) == Dtmf("inbound_track", "5")
    assert parse_message(text({"event": "mark", "mark": {"name": "greeting"}})) == Mark("greeting")
    assert parse_message(text({"event": "dtmf"})) == Dtmf("", "")
    assert parse_message(text(STOP)) == Stop("stop")
    assert parse_message(text({"event": "vendor-keepalive", "x": 1})) == Unknown("vendor-keepalive")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "malformed JSON"),
        (b"\xff\xfe{", "malformed JSON"),
        ("", "malformed JSON"),
        ('[{"event": "start"}]', "must be an object"),
        ('"start"', "must be an object"),
        ("42", "must be an object"),
        ("{}", "no event"),
        ('{"event": 7}', "no event"),
        ('{"event": "start"}', "start must be an object"),
        ('{"event": "start", "start": []}', "start must be an object"),
    ],
)
def test_structural_violations_are_protocol_errors(raw: str | bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason) as caught:
        parse_message(raw)
    assert not isinstance(caught.value, MediaError)
    assert caught.value.status == 400 and caught.value.close_code == 4400


@pytest.mark.parametrize(
    "overrides",
    [
        {"callSid": None},
        {"callSid": ""},
        {"callSid": "   "},
        {"callSid": 12345},
    ],
)
def test_start_needs_a_call_sid(overrides: dict[str, Any]) -> None:
    body = start(**overrides)
    if overrides["callSid"] is None:
        del body["start"]["callSid"]
    with pytest.raises(ProtocolError, match="callSid"):
        parse_message(text(body))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"customParameters": ["agent"]}, "customParameters"),
        ({"tracks": "both"}, "tracks"),
        ({"mediaFormat": "mulaw"}, "mediaFormat"),
        ({"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "fast"}}, "sampleRate"),
        ({"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": float("inf")}}, "sampleRate"),
    ],
)
def test_malformed_start_fields(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        parse_message(text(start(**overrides)))


def _media_with(**fields: Any) -> str:
    body = media("inbound", b"\x00" * 160)
    body["media"].update(fields)
    return text(body)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (text({"event": "media"}), "without media object"),
        (text({"event": "media", "media": "AAAA"}), "without media object"),
        (_media_with(payload="not base64!"), "not valid base64"),
        (_media_with(payload="AAA"), "not valid base64"),  # bad padding
        (_media_with(payload=12), "base64 string"),
        (_media_with(payload=""), "outside 1.."),
        (_media_with(payload=base64.b64encode(bytes(MAX_MEDIA_BYTES + 1)).decode()), "outside 1.."),
        (_media_with(track="inbound_track"), "unknown media track"),
        (_media_with(track="both"), "unknown media track"),
        (_media_with(track=["inbound"]), "unknown media track"),  # unhashable: no TypeError
        (_media_with(timestamp="soon"), "media.timestamp"),
        (_media_with(timestamp=float("inf")), "media.timestamp"),  # JSON's Infinity
        (_media_with(chunk=[1]), "media.chunk"),
    ],
)
def test_damaged_media_frames_are_media_errors(raw: str, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        parse_message(raw)


def test_largest_allowed_payload_parses() -> None:
    message = parse_message(text(media("outbound", bytes(MAX_MEDIA_BYTES))))
    assert isinstance(message, Media) and len(message.payload) == MAX_MEDIA_BYTES


# --- TwilioStream -------------------------------------------------------------------------


class RecordingSink:
    """A CallSink that keeps what it is told and hands out real ``CallMedia``."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.started: list[CallAnnouncement] = []
        self.ended: list[CallId] = []
        self.existing = existing or set()
        self.media: CallMedia | None = None
        self.queues: dict[LegName, ListenerQueue] = {}
        self.legs: list[tuple[LegName, ...]] = []

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        if announcement.call_id in self.existing:
            raise Conflict(f"call {announcement.call_id!r} is already live", code="duplicate_call")
        self.started.append(announcement)
        self.media = CallMedia(announcement.codec)
        self.queues = {leg: ListenerQueue(1000) for leg in ("agent", "caller")}
        for leg, queue in self.queues.items():
            self.media.leg(leg).attach(queue)
        return self.media

    async def call_ended(self, call_id: CallId) -> None:
        self.ended.append(call_id)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        raise AssertionError("Twilio reports no consent changes")

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        self.legs.append(legs)

    def packets(self, leg: LegName) -> list[EncodedPacket]:
        return list(self.queues[leg]._items)


async def started_stream(**start_overrides: Any) -> tuple[TwilioStream, RecordingSink]:
    sink = RecordingSink()
    stream = TwilioStream(sink)
    await stream.handle_text(
        text({"event": "connected", "protocol": "Call", "version": "1.0.0"}), 0
    )
    await stream.handle_text(text(start(**start_overrides)), 0)
    return stream, sink


async def test_start_announces_the_call() -> None:
    stream, sink = await started_stream(
        customParameters={
            "agent": "agent-7",
            "consent": "granted",
            "queue": "billing",
            "secret": "x",
            "lang": "de",
        }
    )
    assert stream.state == "started" and stream.call_id == "CA123"
    [announcement] = sink.started
    assert announcement.call_id == "CA123" and announcement.source == "twilio"
    assert announcement.agent_id == "agent-7"
    assert announcement.consent is Consent.GRANTED
    assert announcement.queue == "billing" and announcement.codec == "PCMU"
    assert announcement.attributes == {"lang": "de"}  # the secret is not kept


async def test_agent_id_and_private_spellings() -> None:
    _, sink = await started_stream(
        customParameters={"agent_id": "a-9", "private": "TRUE", "consent": "no"}
    )
    [announcement] = sink.started
    assert announcement.agent_id == "a-9" and announcement.private
    assert announcement.consent is Consent.DENIED


async def test_both_tracks_feed_their_legs() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(media("inbound", b"\x01" * 160, timestamp=0)), 5)
    await stream.handle_text(text(media("outbound", b"\x02" * 160, timestamp=0)), 6)
    [caller] = sink.packets("caller")
    [agent] = sink.packets("agent")
    assert bytes(caller) == b"\x01" * 160 and caller.arrived_ns == 5
    assert bytes(agent) == b"\x02" * 160 and agent.arrived_ns == 6


async def test_media_before_start_is_a_protocol_error() -> None:
    stream = TwilioStream(RecordingSink())
    with pytest.raises(ProtocolError, match="media before start"):
        await stream.handle_text(text(media("inbound", b"\x00" * 160)), 0)


async def test_damaged_media_before_start_is_a_protocol_error_too() -> None:
    stream = TwilioStream(RecordingSink())
    with pytest.raises(ProtocolError, match="media before start") as caught:
        await stream.handle_text(_media_with(payload="!!"), 0)
    assert not isinstance(caught.value, MediaError)  # ends the socket, is not just dropped


async def test_second_start_is_a_protocol_error() -> None:
    stream, sink = await started_stream()
    with pytest.raises(ProtocolError, match="second start"):
        await stream.handle_text(text(start("CA999")), 0)
    assert [a.call_id for a in sink.started] == ["CA123"]


async def test_duplicate_call_is_refused_by_the_sink() -> None:
    stream = TwilioStream(RecordingSink(existing={"CA123"}))
    with pytest.raises(Conflict) as caught:
        await stream.handle_text(text(start()), 0)
    assert caught.value.close_code == 4409
    assert stream.state == "new"
    await stream.close()  # nothing was started, so nothing is ended


@pytest.mark.parametrize(
    ("media_format", "reason"),
    [
        ({"encoding": "audio/l16", "sampleRate": 8000}, "encoding"),
        ({"encoding": "audio/x-alaw", "sampleRate": 8000}, "encoding"),
        ({"encoding": "audio/x-mulaw", "sampleRate": 16000}, "sample rate"),
        ({"encoding": "audio/x-mulaw", "sampleRate": "16000"}, "sample rate"),
    ],
)
async def test_unsupported_media_format_is_refused(
    media_format: dict[str, Any], reason: str
) -> None:
    sink = RecordingSink()
    stream = TwilioStream(sink)
    with pytest.raises(ProtocolError, match=reason):
        await stream.handle_text(text(start(mediaFormat=media_format)), 0)
    assert sink.started == [] and stream.state == "new"


async def test_a_batched_payload_is_cut_into_20ms_packets() -> None:
    stream, sink = await started_stream()
    audio = bytes(range(160)) + bytes(range(1, 161)) + bytes(range(2, 162))
    await stream.handle_text(text(media("outbound", audio, timestamp=1000)), 0)
    packets = sink.packets("agent")
    assert [bytes(p) for p in packets] == [audio[:160], audio[160:320], audio[320:]]
    assert [p.pts for p in packets] == [8000, 8160, 8320]  # 1000 ms at 8 kHz, then +20 ms
    assert [p.sequence for p in packets] == [0, 1, 2]
    assert sink.packets("caller") == []


async def test_short_frames_are_joined_into_one_packet() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(media("inbound", b"\x11" * 120, timestamp=1000)), 0)
    assert sink.packets("caller") == []  # 15 ms is not a packet yet
    await stream.handle_text(text(media("inbound", b"\x22" * 40, timestamp=1015)), 0)
    [packet] = sink.packets("caller")
    assert bytes(packet) == b"\x11" * 120 + b"\x22" * 40
    assert packet.pts == 8000  # where the first of its bytes was


async def test_100_then_60_bytes_make_one_packet() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(media("inbound", b"\x11" * 100, timestamp=1000)), 0)
    await stream.handle_text(text(media("inbound", b"\x22" * 60, timestamp=1012)), 0)
    [packet] = sink.packets("caller")
    assert bytes(packet) == b"\x11" * 100 + b"\x22" * 60
    # 100 bytes are 12.5 ms, which Twilio's whole-millisecond timestamps cannot say exactly.
    assert abs(packet.pts - 8000) <= 8


async def test_rtp_timestamps_follow_media_timestamp_across_gaps() -> None:
    stream, sink = await started_stream()
    for timestamp in (0, 20, 40, 100, 120):  # 40 ms the network lost after 40
        await stream.handle_text(text(media("outbound", b"\x00" * 160, timestamp=timestamp)), 0)
    assert [p.pts for p in sink.packets("agent")] == [0, 160, 320, 800, 960]


async def test_legs_are_batched_independently() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(media("inbound", b"\x01" * 80, timestamp=0)), 0)
    await stream.handle_text(text(media("outbound", b"\x02" * 240, timestamp=0)), 0)
    await stream.handle_text(text(media("inbound", b"\x03" * 80, timestamp=10)), 0)
    assert [bytes(p) for p in sink.packets("caller")] == [b"\x01" * 80 + b"\x03" * 80]
    assert [bytes(p) for p in sink.packets("agent")] == [b"\x02" * 160]


async def test_damaged_frames_after_start_are_dropped_and_counted() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(_media_with(payload="%%%"), 0)
    await stream.handle_text(_media_with(payload=""), 0)
    await stream.handle_text(_media_with(track="sideways"), 0)
    await stream.handle_text(text(media("inbound", b"\x05" * 160, timestamp=20)), 0)
    assert stream.rejected_frames == 3
    assert [bytes(p) for p in sink.packets("caller")] == [b"\x05" * 160]
    assert stream.state == "started"


async def test_unknown_events_dtmf_and_marks_are_ignored() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text({"event": "vendor-thing"}), 0)
    await stream.handle_text(
        text({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "1"}}), 0
    )
    await stream.handle_text(text({"event": "mark", "mark": {"name": "m"}}), 0)
    assert (stream.ignored_events, stream.dtmf_digits) == (1, 1)
    assert stream.state == "started" and sink.ended == []


async def test_stop_ends_the_call_once() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(STOP), 0)
    assert sink.ended == ["CA123"] and stream.state == "stopped"
    await stream.handle_text(text(STOP), 0)
    await stream.close()  # the socket going away afterwards
    assert sink.ended == ["CA123"]


async def test_media_after_stop_is_ignored() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(media("inbound", b"\x01" * 160, timestamp=0)), 0)
    await stream.handle_text(text(STOP), 0)
    await stream.handle_text(text(media("inbound", b"\x02" * 160, timestamp=20)), 0)
    await stream.handle_text(text(media("outbound", b"\x02" * 480, timestamp=20)), 0)
    assert [bytes(p) for p in sink.packets("caller")] == [b"\x01" * 160]
    assert sink.packets("agent") == []


async def test_start_after_stop_is_a_protocol_error() -> None:
    stream, sink = await started_stream()
    await stream.handle_text(text(STOP), 0)
    with pytest.raises(ProtocolError):
        await stream.handle_text(text(start("CA-again")), 0)
    assert len(sink.started) == 1


async def test_socket_gone_without_stop_ends_the_call() -> None:
    stream, sink = await started_stream()
    await stream.close()
    await stream.close()
    assert sink.ended == ["CA123"]


async def test_close_before_start_ends_nothing() -> None:
    sink = RecordingSink()
    stream = TwilioStream(sink)
    await stream.close()
    assert sink.ended == [] and stream.state == "stopped"


# --- split streams: one callSid, one socket per track -------------------------------------


async def split_stream(calls: JoinedCalls, track: str, call_sid: str = "CA123") -> TwilioStream:
    stream = TwilioStream(calls.sink, calls=calls)
    await stream.handle_text(text(start(call_sid, tracks=[track])), 0)
    return stream


async def test_two_one_track_streams_are_one_call_with_two_legs() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    inbound = await split_stream(calls, "inbound")
    [announcement] = sink.started
    assert announcement.legs == ("caller",)  # the agent leg is not sent (yet)
    outbound = await split_stream(calls, "outbound")
    assert len(sink.started) == 1 and sink.legs == [("agent", "caller")]
    await inbound.handle_text(text(media("inbound", b"\x01" * 160)), 0)
    await outbound.handle_text(text(media("outbound", b"\x02" * 160)), 0)
    assert [bytes(p) for p in sink.packets("caller")] == [b"\x01" * 160]
    assert [bytes(p) for p in sink.packets("agent")] == [b"\x02" * 160]

    await inbound.handle_text(text(STOP), 0)  # one stream ends: its leg is no longer sent
    assert sink.ended == [] and sink.legs[-1] == ("agent",)
    await outbound.close()  # the last one ends the call, once
    await inbound.close()
    assert sink.ended == ["CA123"]
    assert "CA123" not in calls


async def test_a_track_sent_by_two_streams_is_refused() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    await split_stream(calls, "inbound")
    second = TwilioStream(sink, calls=calls)
    with pytest.raises(Conflict, match="caller leg") as caught:
        await second.handle_text(text(start("CA123")), 0)  # both tracks: the caller is taken
    assert caught.value.close_code == 4409 and second.state == "new"
    assert sink.legs == []


async def test_media_of_a_track_the_start_did_not_list_is_dropped() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    inbound = await split_stream(calls, "inbound")
    await inbound.handle_text(text(media("outbound", b"\x02" * 160)), 0)
    assert inbound.rejected_frames == 1 and sink.legs == [] and sink.packets("agent") == []


@pytest.mark.parametrize("tracks", [["inbound_track"], ["inbound", "sideways"]])
async def test_track_spellings(tracks: list[str]) -> None:
    sink = RecordingSink()
    await TwilioStream(sink).handle_text(text(start(tracks=tracks)), 0)
    assert sink.started[0].legs == ("caller",)


async def test_without_tracks_each_leg_is_taken_by_its_first_media() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    body = start()
    del body["start"]["tracks"]
    stream = TwilioStream(sink, calls=calls)
    await stream.handle_text(text(body), 0)
    assert sink.started[0].legs == ()  # nothing is known to be sent yet
    await stream.handle_text(text(media("outbound", b"\x02" * 160)), 0)
    await stream.handle_text(text(media("inbound", b"\x01" * 160)), 0)
    assert sink.legs == [("agent",), ("agent", "caller")]
    assert len(sink.packets("agent")) == len(sink.packets("caller")) == 1


async def test_media_of_a_track_another_stream_sends_is_dropped() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    inbound = await split_stream(calls, "inbound")
    outbound = await split_stream(calls, "outbound")
    await inbound.handle_text(text(media("outbound", b"\x09" * 160)), 0)
    await outbound.handle_text(text(media("outbound", b"\x02" * 160)), 0)
    assert inbound.rejected_frames == 1
    assert [bytes(p) for p in sink.packets("agent")] == [b"\x02" * 160]


async def test_a_leg_fed_again_by_a_new_stream_continues_its_timestamps() -> None:
    sink = RecordingSink()
    calls = JoinedCalls(sink)
    inbound = await split_stream(calls, "inbound")
    first = await split_stream(calls, "outbound")
    for chunk in (1, 2, 3):
        await first.handle_text(text(media("outbound", b"\x02" * 160, (chunk - 1) * 20, chunk)), 0)
    await first.close()
    again = await split_stream(calls, "outbound")  # Twilio restarted the stream: chunk 1, 0 ms
    await again.handle_text(text(media("outbound", b"\x03" * 160, 0, 1)), 0)
    assert [p.pts for p in sink.packets("agent")] == [0, 160, 320, 480]
    assert sink.legs == [("agent", "caller"), ("caller",), ("agent", "caller")]
    await inbound.close()
    await again.close()
    assert sink.ended == ["CA123"]


# --- chunk order --------------------------------------------------------------------------


async def test_swapped_chunks_are_put_back_in_order() -> None:
    stream, sink = await started_stream()
    for chunk in (1, 2, 4, 3, 5, 7, 6):
        await stream.handle_text(
            text(media("inbound", bytes([chunk]) * 160, timestamp=(chunk - 1) * 20, chunk=chunk)), 0
        )
    packets = sink.packets("caller")
    assert [p.payload[0] for p in packets] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.pts for p in packets] == [0, 160, 320, 480, 640, 800, 960]
    assert stream.reordered_chunks == 2 and stream.late_chunks == 0


async def test_a_chunk_later_than_the_window_is_dropped_not_sent_back_in_time() -> None:
    stream, sink = await started_stream()
    order = [1] + list(range(3, 3 + REORDER_WINDOW + 1)) + [2]  # 2 comes after the window
    for chunk in order:
        await stream.handle_text(
            text(media("inbound", bytes([chunk]) * 160, timestamp=(chunk - 1) * 20, chunk=chunk)), 0
        )
    pts = [p.pts for p in sink.packets("caller")]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert 2 not in [p.payload[0] for p in sink.packets("caller")]
    assert stream.late_chunks == 1


async def test_chunks_numbered_across_both_tracks_are_not_held() -> None:
    """streamdouble numbers chunks once for both tracks: each leg sees every other number."""
    stream, sink = await started_stream()
    for n in range(6):
        track = ("inbound", "outbound")[n % 2]
        await stream.handle_text(text(media(track, b"\x01" * 160, timestamp=(n // 2) * 20, chunk=n + 1)), 0)
    assert len(sink.packets("caller")) == 3 and len(sink.packets("agent")) == 3


async def test_held_chunks_are_sent_when_the_stream_stops() -> None:
    stream, sink = await started_stream()
    for chunk in (1, 3):  # 2 is missing, 3 waits for it
        await stream.handle_text(text(media("inbound", b"\x01" * 160, (chunk - 1) * 20, chunk)), 0)
    assert len(sink.packets("caller")) == 1
    await stream.handle_text(text(STOP), 0)
    assert [p.pts for p in sink.packets("caller")] == [0, 320]


def _media_of(chunk: int) -> Media:
    return Media("inbound", chunk, (chunk - 1) * 20, b"\x00" * 160)


@settings(max_examples=300, database=None, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=60))
def test_chunk_order_never_goes_back(chunks: list[int]) -> None:
    order = ChunkOrder()
    out = [m.chunk for c in chunks for m in order.push(_media_of(c))] + [m.chunk for m in order.flush()]
    assert out == sorted(out)
    assert len(out) + order.late == len(chunks)


@settings(max_examples=300, database=None, deadline=None)
@given(st.data())
def test_chunks_displaced_within_the_window_all_arrive_in_order(data: st.DataObject) -> None:
    """Shuffled in blocks of up to window + 1: no chunk comes after more than ``window``
    later ones, so none is lost and all come out in order."""
    count = data.draw(st.integers(min_value=1, max_value=40))
    chunks = [1]  # the first message is released at once, whatever it is
    n = 2
    while n <= count:
        size = data.draw(st.integers(min_value=1, max_value=min(REORDER_WINDOW + 1, count - n + 1)))
        chunks += data.draw(st.permutations(list(range(n, n + size))))
        n += size
    order = ChunkOrder()
    out = [m.chunk for c in chunks for m in order.push(_media_of(c))] + [m.chunk for m in order.flush()]
    assert out == list(range(1, count + 1)) and order.late == 0

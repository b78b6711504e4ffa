"""Twilio Media Streams parsing and the per-socket state machine."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from live.errors import Conflict, ProtocolError
from live.ingest.sink import CallAnnouncement
from live.ingest.twilio import Connected, Dtmf, Media, MediaError, Start, Stop, TwilioStream, Unknown, parse_message
from live.media.hub import CallMedia, ListenerQueue
from live.types import CallId, Consent
from tests.support.twilio import media_message, start_message


def text(message: dict[str, Any]) -> str:
    return json.dumps(message)


def test_parses_every_event_with_numbers_as_strings() -> None:
    assert parse_message('{"event":"connected","protocol":"Call","version":"1.0.0"}') == Connected("Call", "1.0.0")
    start = parse_message(text(start_message("CA1", agent="agent-7", consent="denied", queue="billing")))
    assert isinstance(start, Start)
    assert start.call_sid == "CA1" and start.tracks == ("inbound", "outbound")
    assert start.custom_parameters == {"agent": "agent-7", "consent": "denied", "queue": "billing"}
    media = parse_message(text(media_message("outbound", 12, b"\x01" * 160)))
    assert media == Media("outbound", 12, 240, b"\x01" * 160)
    dtmf = parse_message('{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}')
    assert dtmf == Dtmf("inbound_track", "5")
    assert parse_message('{"event":"stop","stop":{}}') == Stop("stop")
    assert parse_message('{"event":"vendor-extension"}') == Unknown("vendor-extension")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", ProtocolError),
        ("[1, 2]", ProtocolError),
        ('{"no":"event"}', ProtocolError),
        ('{"event":"start","start":{"tracks":["inbound"]}}', ProtocolError),
        ('{"event":"start","start":"x"}', ProtocolError),
        ('{"event":"media","media":{"track":"inbound","payload":"!!!"}}', MediaError),
        ('{"event":"media","media":{"track":"inbound","payload":""}}', MediaError),
        ('{"event":"media","media":{"track":"sideways","payload":"AAAA"}}', MediaError),
        ('{"event":"media","media":{"track":"inbound","payload":"AAAA","timestamp":"soon"}}', MediaError),
        ('{"event":"media","media":"AAAA"}', MediaError),
    ],
)
def test_rejects_malformed_messages(raw: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_message(raw)


def test_oversized_media_payload_is_rejected() -> None:
    payload = base64.b64encode(bytes(8001)).decode()
    with pytest.raises(MediaError):
        parse_message(text({"event": "media", "media": {"track": "inbound", "payload": payload}}))


class RecordingSink:
    def __init__(self) -> None:
        self.media = CallMedia()
        self.started: list[CallAnnouncement] = []
        self.ended: list[CallId] = []

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        if any(a.call_id == announcement.call_id for a in self.started):
            raise Conflict("duplicate")
        self.started.append(announcement)
        return self.media

    async def call_ended(self, call_id: CallId) -> None:
        self.ended.append(call_id)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        return None


async def test_stream_lifecycle_and_legs() -> None:
    sink = RecordingSink()
    stream = TwilioStream(sink)
    agent, caller = ListenerQueue(50), ListenerQueue(50)
    sink.media.agent.attach(agent)
    sink.media.caller.attach(caller)
    with pytest.raises(ProtocolError, match="media before start"):
        await stream.handle_text(text(media_message("inbound", 0, bytes(160))), 0)
    await stream.handle_text(text(start_message("CA9", agent="agent-3", consent="granted")), 0)
    assert sink.started[0].agent_id == "agent-3" and sink.started[0].consent is Consent.GRANTED
    await stream.handle_text(text(media_message("outbound", 1, b"\x01" * 160)), 0)
    await stream.handle_text(text(media_message("inbound", 1, b"\x02" * 160)), 0)
    assert bytes(agent._items[0]) == b"\x01" * 160  # outbound = agent
    assert bytes(caller._items[0]) == b"\x02" * 160  # inbound = caller
    await stream.handle_text('{"event":"media","media":{"track":"inbound","payload":"%%%"}}', 0)
    assert stream.rejected_frames == 1  # a damaged frame is dropped, the call goes on
    with pytest.raises(ProtocolError, match="second start"):
        await stream.handle_text(text(start_message("CA9")), 0)
    await stream.handle_text('{"event":"stop"}', 0)
    await stream.handle_text(text(media_message("inbound", 2, bytes(160))), 0)  # ignored
    await stream.close()
    assert sink.ended == ["CA9"]


async def test_batched_and_split_payloads_become_20ms_packets() -> None:
    sink = RecordingSink()
    stream = TwilioStream(sink)
    queue = ListenerQueue(50)
    sink.media.caller.attach(queue)
    await stream.handle_text(text(start_message("CA10")), 0)
    await stream.handle_text(text(media_message("inbound", 5, bytes(480))), 0)
    assert [p.pts for p in queue._items] == [800, 960, 1120]  # timestamp 100 ms = 800 samples
    await stream.handle_text(text(media_message("inbound", 8, bytes(100))), 0)
    assert len(queue) == 3
    await stream.handle_text(text({**media_message("inbound", 9, bytes(60)), "media": {**media_message("inbound", 9, bytes(60))["media"], "timestamp": "172"}}), 0)
    assert len(queue) == 4 and queue._items[-1].pts == 172 * 8 - 100


async def test_unsupported_formats_are_refused() -> None:
    for encoding, rate in (("audio/l16", 8000), ("audio/x-mulaw", 16000)):
        message = start_message("CA11")
        message["start"]["mediaFormat"] = {"encoding": encoding, "sampleRate": rate, "channels": 1}
        with pytest.raises(ProtocolError):
            await TwilioStream(RecordingSink()).handle_text(text(message), 0)

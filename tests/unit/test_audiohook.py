"""Genesys AudioHook v2: the message parser, durations, media selection, the session's rules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.errors import Conflict, LiveError, ProtocolError
from live.ingest.audiohook import (
    NULL_UUID,
    Close,
    Discarded,
    MediaFormat,
    Open,
    Ping,
    Resumed,
    Unknown,
    format_duration,
    parse_duration,
    parse_message,
    select_media,
)
from live.ingest.audiohook_calls import AudioHookCalls
from live.ingest.audiohook_session import AudioHookSession, Handshake
from live.ingest.sink import CallAnnouncement
from live.media.hub import CallMedia
from live.types import CallId, Consent, LegName

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
ORG = "d7934305-0972-4844-938e-9060eef73d05"


def message(kind: str, parameters: dict[str, Any] | None = None, **fields: Any) -> str:
    data = {"version": "2", "id": SESSION, "type": kind, "seq": 1, "serverseq": 0, "position": "PT0S",
            "parameters": parameters if parameters is not None else {}}
    data.update(fields)
    return json.dumps(data)


def open_parameters(**changes: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "organizationId": ORG,
        "conversationId": "090eaa2f-72fa-480a-83e0-8667ff89c0ec",
        "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "+1-555-555-1234", "aniName": "John Doe", "dnis": "+1-800-555-6789"},
        "media": [
            {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000},
            {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
        ],
        "language": "en-US",
        "customConfig": {"agentId": "a-1", "queue": "sales", "consent": "granted", "nested": {"x": 1}},
    }
    parameters.update(changes)
    return parameters


# --- parsing ----------------------------------------------------------------------------------


def test_open_is_parsed() -> None:
    parsed = parse_message(message("open", open_parameters(), position="PT0S"))
    assert (parsed.type, parsed.seq, parsed.serverseq, parsed.id) == ("open", 1, 0, SESSION)
    body = parsed.body
    assert isinstance(body, Open) and not body.probe
    assert body.custom_config == {"agentId": "a-1", "queue": "sales", "consent": "granted"}
    assert body.participant["dnis"] == "+1-800-555-6789"
    assert body.media[0] == MediaFormat("PCMU", ("external", "internal"), 8000)
    assert body.language == "en-US"


def test_every_client_message_type() -> None:
    assert isinstance(parse_message(message("ping", {"rtt": "PT0.05S"})).body, Ping)
    resumed = parse_message(message("resumed", {"start": "PT1.5S", "discarded": "PT2S"})).body
    assert resumed == Resumed(1_500_000_000, 2_000_000_000)
    assert parse_message(message("discarded", {"start": "PT1S", "discarded": "PT0.2S"})).body == Discarded(10**9, 2 * 10**8)
    assert parse_message(message("close", {"reason": "reconnect"})).body == Close("reconnect")
    assert parse_message(message("close", {"reason": "something new"})).body == Close("end")
    assert parse_message(message("paused")).type == "paused"
    assert parse_message(message("update", {"language": "de-DE"})).type == "update"
    assert parse_message(message("error", {"code": 429, "message": "slow down", "retryAfter": "PT3S"})).type == "error"
    assert parse_message(message("dance")).body == Unknown("dance")
    probe = parse_message(message("open", open_parameters(conversationId=NULL_UUID))).body
    assert isinstance(probe, Open) and probe.probe


@pytest.mark.parametrize(
    "text",
    [
        "{", "[]", "null", json.dumps({"version": "1"}),
        message("ping", seq=-1), message("ping", seq=1.5), message("ping", seq="1"), message("ping", seq=True),
        message("ping", serverseq=None), message("ping", position="1.2"), message("ping", position="PT"),
        message("ping", id="not-a-uuid"), message("ping", parameters=[]), message("ping", type=7),
        message("open", {"organizationId": ORG}), message("open", open_parameters(media="PCMU")),
        message("open", open_parameters(media=[{"channels": "external"}])),
        message("open", open_parameters(customConfig=[1])),
        message("open", open_parameters(continuedSessions=[{"id": "x"}])),
        message("resumed", {"start": "PT1S"}), message("error", {"code": "429"}),
        message("ping", {"rtt": 5}),
    ],
)
def test_malformed_messages_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_message(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.sampled_from(["open", "ping", "paused", "resumed", "update", "discarded", "error", "close", "x"]),
       st.dictionaries(st.sampled_from(["organizationId", "conversationId", "participant", "media", "customConfig",
                                        "continuedSessions", "start", "discarded", "code", "message", "reason",
                                        "rtt", "language", "retryAfter"]), json_values, max_size=8),
       st.fixed_dictionaries({}, optional={"seq": json_values, "position": json_values, "serverseq": json_values}))
def test_fuzzed_messages_parse_or_raise_protocol_errors(kind: str, parameters: dict[str, Any], envelope: dict[str, Any]) -> None:
    try:
        parse_message(message(kind, parameters, **envelope))
    except ProtocolError:
        pass


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_any_text_parses_or_raises_a_protocol_error(text: str | bytes) -> None:
    try:
        parse_message(text)
    except ProtocolError:
        pass


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [("PT0S", 0), ("PT1.2S", 1_200_000_000), ("PT.5S", 500_000_000), ("PT1M2.5S", 62_500_000_000),
     ("PT1H", 3_600_000_000_000), ("PT0.000125S", 125_000), ("PT1.0000000009S", 1_000_000_000)],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@given(st.integers(0, 10**15))
def test_formatted_durations_parse_back(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns


@given(st.text(max_size=40))
def test_any_duration_text_parses_or_raises(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ProtocolError:
        pass


# --- media selection --------------------------------------------------------------------------


def media(fmt: str, channels: tuple[str, ...] = ("external", "internal"), rate: int = 8000) -> MediaFormat:
    return MediaFormat(fmt, channels, rate)


def test_selection_prefers_both_channels_then_pcmu() -> None:
    assert select_media((media("L16"), media("PCMU", ("external",)), media("PCMU"))) == media("PCMU")
    assert select_media((media("PCMU", ("internal",)), media("L16"))) == media("L16")
    assert select_media((media("L16", rate=16000),)) == media("L16", rate=16000)
    assert select_media((media("PCMU", ("internal",)),)) == media("PCMU", ("internal",))


@pytest.mark.parametrize(
    "offered",
    [media("opus"), media("PCMU", rate=16000), media("L16", rate=44100), media("PCMU", ("external", "external")),
     media("PCMU", ("external", "left")), media("PCMU", ()), MediaFormat("PCMU", ("external",), 8000, "video")],
)
def test_what_cannot_be_forwarded_is_not_selected(offered: MediaFormat) -> None:
    assert select_media((offered,)) is None


# --- the session's rules, against a recording sink --------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.started: list[CallAnnouncement] = []
        self.ended: list[str] = []
        self.media: dict[str, CallMedia] = {}

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        if announcement.call_id in self.media:
            raise Conflict("already live", code="duplicate_call")
        self.started.append(announcement)
        self.media[announcement.call_id] = CallMedia()
        return self.media[announcement.call_id]

    async def call_ended(self, call_id: CallId) -> None:
        self.ended.append(call_id)
        self.media.pop(call_id, None)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        pass

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        pass


class Harness:
    def __init__(self, *, linger_s: float = 0.0, handshake: Handshake | None = None) -> None:
        handshake = handshake or Handshake(ORG, SESSION, "c")
        self.sink = Sink()
        self.calls = AudioHookCalls(self.sink, linger_s=linger_s)
        self.sent: list[dict[str, Any]] = []
        self.session = AudioHookSession(self.calls, lambda text: self.sent.append(json.loads(text)), handshake)
        self.seq = 0

    async def send(self, kind: str, parameters: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any] | None:
        self.seq += 1
        before = len(self.sent)
        await self.session.handle_text(message(kind, parameters, seq=self.seq, serverseq=self.session.seq, **fields), 0)
        return self.sent[before] if len(self.sent) > before else None


async def test_open_announces_the_call_with_its_keys() -> None:
    h = Harness()
    opened = await h.send("open", open_parameters())
    assert opened is not None and opened["type"] == "opened"
    assert opened["parameters"] == {"media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}], "startPaused": False}
    (announcement,) = h.sink.started
    assert (announcement.agent_id, announcement.queue, announcement.consent) == ("a-1", "sales", Consent.GRANTED)
    assert announcement.legs == ("caller", "agent")
    assert "ani" not in announcement.attributes and announcement.attributes["dnis"] == "+1-800-555-6789"
    assert (await h.send("close", {"reason": "end"}) or {})["type"] == "closed"
    assert h.session.finished and h.sink.ended == [announcement.call_id]


async def test_agent_and_consent_may_come_from_the_participant() -> None:
    h = Harness()
    participant = {"id": str(uuid.uuid4()), "ani": "", "aniName": "", "dnis": "", "agentId": "p-7", "consent": "yes"}
    await h.send("open", open_parameters(participant=participant, customConfig=None))
    assert (h.sink.started[0].agent_id, h.sink.started[0].consent) == ("p-7", Consent.GRANTED)


async def test_audio_is_split_per_channel_into_the_legs() -> None:
    h = Harness()
    await h.send("open", open_parameters())
    media = h.sink.media["090eaa2f-72fa-480a-83e0-8667ff89c0ec"]
    got: dict[str, bytes] = {"agent": b"", "caller": b""}
    for leg in ("agent", "caller"):
        media.leg(leg).taps.append(lambda name, packet: got.__setitem__(name, got[name] + packet.payload))  # type: ignore[arg-type]
    await h.session.handle_binary(b"\x01\x02" * 160, 0)  # external=0x01, internal=0x02
    assert got == {"caller": b"\x01" * 160, "agent": b"\x02" * 160}
    assert h.session.position_ns == 20_000_000
    h.calls.calls[CallId("090eaa2f-72fa-480a-83e0-8667ff89c0ec")].close()


@pytest.mark.parametrize(
    ("first", "words"),
    [({"seq": 2}, "seq 2 after 0"), ({"id": str(uuid.uuid4())}, "id"), ({"serverseq": 3}, "serverseq")],
)
async def test_sequence_and_id_violations_disconnect(first: dict[str, Any], words: str) -> None:
    h = Harness()
    await h.session.handle_text(message("ping", **{"seq": 1, **first}), 0)
    assert h.sent[-1]["type"] == "disconnect" and words in h.sent[-1]["parameters"]["info"]
    assert h.session.state == "closing"
    await h.session.handle_text(message("close", {"reason": "disconnect"}, seq=9), 0)
    assert h.sent[-1]["type"] == "closed" and h.sent[-1]["clientseq"] == 9 and h.session.finished


async def test_a_probe_creates_no_call_and_is_disconnected_if_it_stays() -> None:
    now = [0.0]
    h = Harness()
    h.session._clock = lambda: now[0]
    opened = await h.send("open", open_parameters(conversationId=NULL_UUID))
    assert opened is not None and opened["type"] == "opened" and h.sink.started == []
    assert h.session.wait_s() == pytest.approx(10.0)
    now[0] = 11.0
    await h.session.deadline_passed()
    assert h.sent[-1]["type"] == "disconnect" and h.sent[-1]["parameters"]["reason"] == "completed"
    await h.session.deadline_passed()
    assert h.session.finished


async def test_server_seq_counts_and_clientseq_echoes() -> None:
    h = Harness()
    replies = [await h.send("open", open_parameters()), await h.send("ping"), await h.send("update", {"language": "x"})]
    assert [(r or {})["seq"] for r in replies] == [1, 2, 3]
    assert [(r or {})["clientseq"] for r in replies] == [1, 2, 3]
    await h.calls.aclose()


async def test_a_dropped_session_lingers_and_a_successor_continues() -> None:
    h = Harness(linger_s=30.0)
    await h.send("open", open_parameters())
    await h.session.connection_lost()
    assert h.sink.ended == [] and len(h.calls.calls) == 1
    second = AudioHookSession(h.calls, lambda text: None, Handshake(ORG, str(uuid.uuid4()), "c"))
    await second.handle_text(
        message("open", open_parameters(continuedSessions=[{"id": SESSION, "serverseq": 1, "clientseq": 1}]), id=second.session_id), 0
    )
    assert len(h.sink.started) == 1 and h.calls.counters.calls_continued == 1
    await second.handle_text(message("close", {"reason": "end"}, id=second.session_id, seq=2), 0)
    assert h.sink.ended == ["090eaa2f-72fa-480a-83e0-8667ff89c0ec"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=400), st.text(max_size=200), json_values.map(json.dumps)), max_size=12))
async def test_fuzzed_sessions_never_raise(inputs: list[bytes | str]) -> None:
    h = Harness()
    await h.send("open", open_parameters())
    try:
        for data in inputs:
            if isinstance(data, bytes):
                await h.session.handle_binary(data, 0)
            else:
                await h.session.handle_text(data, 0)
    except LiveError as exc:  # pragma: no cover - the session turns errors into disconnect
        raise AssertionError(f"the session raised {exc!r}") from exc
    finally:
        await h.calls.aclose()


async def test_l16_at_16khz_is_encoded_once_per_leg_to_8khz_pcmu() -> None:
    h = Harness()
    l16 = [{"type": "audio", "format": "L16", "channels": ["internal"], "rate": 16000}]
    opened = await h.send("open", open_parameters(media=l16))
    assert opened is not None and opened["parameters"]["media"] == l16
    assert h.sink.started[0].legs == ("agent",)
    media = h.sink.media["090eaa2f-72fa-480a-83e0-8667ff89c0ec"]
    got: list[bytes] = []
    media.agent.taps.append(lambda _leg, packet: got.append(packet.payload))
    await h.session.handle_binary(bytes(640), 0)  # 20 ms of silence at 16 kHz
    assert got == [b"\xff" * 160] and h.session.position_ns == 20_000_000
    await h.session.handle_binary(bytes(641), 0)  # not whole samples: dropped, counted
    assert h.calls.counters.rejected_frames == 1
    await h.calls.aclose()


async def test_ids_are_compared_without_case_and_echoed_as_sent() -> None:
    h = Harness(handshake=Handshake(ORG.upper(), SESSION.upper(), "c"))
    opened = await h.send("open", open_parameters(conversationId="090EAA2F-72FA-480A-83E0-8667FF89C0EC"))
    assert opened is not None and opened["type"] == "opened" and opened["id"] == SESSION.upper()
    assert h.sink.started[0].call_id == "090eaa2f-72fa-480a-83e0-8667ff89c0ec"
    await h.calls.aclose()

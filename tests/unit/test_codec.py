"""live.codec: what crosses Redis between nodes decodes to exactly what was sent, or is refused."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.codec import WIRE_VERSION, decode_event, decode_media, encode_event, encode_media
from live.errors import BadRequest
from live.model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenerInfo,
    ListenStarted,
)
from live.types import CallId, Consent, NodeId, SessionId

SAM = ListenerInfo(
    SessionId("ls_1"), "u-sam", "Sam Quality", "quality", 1700000001.5, NodeId("node-b")
)
KIM = ListenerInfo(
    SessionId("ls_2"), "u-kim", "Kim Ünïcode ✓", "coaching", 1700000002.25, NodeId("node-a")
)
CALL = CallInfo(
    call_id=CallId("CA1"),
    source="twilio",
    agent_id="agent-7",
    started_at=1700000000.125,
    node_id=NodeId("node-a"),
    consent=Consent.GRANTED,
    pci_paused=True,
    codec="PCMA",
    queue="billing",
    private=True,
    attributes={"customer_tier": "gold", "lang": "de"},
    listeners=(SAM, KIM),
)

EVERY_EVENT: list[BusEvent] = [
    CallStarted(CALL),
    CallStarted(CallInfo(CallId("CA2"), "siprec", "agent-8", 1.0, NodeId("node-c"))),
    CallUpdated(CALL),
    CallEnded(CallId("CA1"), 1700000100.0),
    ListenStarted(CallId("CA1"), SAM, ("agent", "caller")),
    ListenStarted(CallId("CA1"), KIM, ("caller",)),
    ListenStarted(CallId("CA1"), KIM, ()),
    ListenEnded(CallId("CA1"), SessionId("ls_1"), "call-ended", 1700000100.5),
]


def wire(kind: Any, fields: Any, version: Any = WIRE_VERSION) -> bytes:
    return bytes(msgpack.packb({"k": kind, "v": version, "d": fields}, use_bin_type=True))


def call_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "call_id": "CA1", "source": "twilio", "agent_id": "a", "started_at": 1.0, "node_id": "n",
    }
    fields.update(changes)
    return fields


# --- events ------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: e.kind)
def test_every_event_survives_the_round_trip(event: BusEvent) -> None:
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert type(decoded) is type(event)


def test_decoded_call_has_real_enum_tuples_and_dict() -> None:
    decoded = decode_event(encode_event(CallStarted(CALL)))
    assert isinstance(decoded, CallStarted)
    assert decoded.call.consent is Consent.GRANTED
    assert isinstance(decoded.call.listeners, tuple)
    assert all(isinstance(x, ListenerInfo) for x in decoded.call.listeners)
    assert decoded.call.attributes == {"customer_tier": "gold", "lang": "de"}


def test_decoded_legs_are_a_tuple() -> None:
    decoded = decode_event(encode_event(ListenStarted(CallId("CA1"), SAM, ("agent", "caller"))))
    assert isinstance(decoded, ListenStarted) and decoded.legs == ("agent", "caller")


def test_wire_form_is_the_documented_envelope() -> None:
    payload = msgpack.unpackb(encode_event(CallEnded(CallId("CA1"), 2.0)), raw=False)
    assert payload == {
        "k": "call.ended", "v": WIRE_VERSION, "d": {"call_id": "CA1", "ended_at": 2.0}
    }


ids = st.text(min_size=1, max_size=24)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
listeners = st.builds(
    ListenerInfo,
    session_id=ids.map(SessionId),
    user_id=st.text(max_size=24),
    display_name=st.text(max_size=40),
    purpose=st.text(max_size=16),
    started_at=times,
    node_id=ids.map(NodeId),
)
calls = st.builds(
    CallInfo,
    call_id=ids.map(CallId),
    source=st.text(max_size=16),
    agent_id=st.text(max_size=24),
    started_at=times,
    node_id=ids.map(NodeId),
    consent=st.sampled_from(Consent),
    pci_paused=st.booleans(),
    codec=st.sampled_from(["PCMU", "PCMA"]),
    queue=st.text(max_size=16),
    private=st.booleans(),
    attributes=st.dictionaries(st.text(max_size=12), st.text(max_size=24), max_size=5),
    listeners=st.lists(listeners, max_size=4).map(tuple),
    legs=st.sampled_from([("agent", "caller"), ("agent",), ("caller",), ()]),
)


@settings(max_examples=300, database=None, deadline=None)
@given(call=calls, updated=st.booleans())
def test_any_call_survives_the_round_trip(call: CallInfo, updated: bool) -> None:
    event: BusEvent = CallUpdated(call) if updated else CallStarted(call)
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # a byte msgpack never uses
        encode_event(CallEnded(CallId("CA1"), 1.0))[:-3],  # truncated
        encode_event(CallEnded(CallId("CA1"), 1.0)) + b"\x00",  # trailing bytes
        b"\x00" * 16,
        "not bytes at all".encode("utf-16"),
    ],
    ids=["empty", "reserved-byte", "truncated", "trailing", "zeros", "utf16-text"],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_event(data)


@pytest.mark.parametrize("version", [0, 2, "1", None, 1.5])
def test_other_wire_versions_are_refused(version: Any) -> None:
    with pytest.raises(BadRequest, match="version"):
        decode_event(wire("call.ended", {"call_id": "CA1", "ended_at": 1.0}, version))


def test_a_payload_that_is_not_an_envelope_is_refused() -> None:
    for payload in ([1, 2, 3], 7, "call.ended", {"k": "call.ended", "d": {}}):
        with pytest.raises(BadRequest):
            decode_event(bytes(msgpack.packb(payload)))


@pytest.mark.parametrize("kind", ["call.exploded", "", "CALL.STARTED", 42, None])
def test_unknown_kinds_are_refused(kind: Any) -> None:
    with pytest.raises(BadRequest, match="unknown bus event"):
        decode_event(wire(kind, {}))


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("call.ended", {"call_id": "CA1"}),
        ("call.ended", {}),
        ("call.ended", [1, 2]),
        ("call.started", {}),
        ("call.started", {"call": {"call_id": "CA1"}}),
        ("call.started", {"call": 5}),
        ("call.started", {"call": call_fields(consent="maybe")}),
        ("call.started", {"call": call_fields(listeners=5)}),
        ("call.started", {"call": call_fields(listeners=[{"session_id": "ls_1"}])}),
        ("call.started", {"call": call_fields(listeners=[7])}),
        ("call.started", {"call": call_fields(attributes=5)}),
        ("call.started", {"call": call_fields(surprise=True)}),
        ("listen.started", {"call_id": "CA1", "listener": {"session_id": "ls_1"}, "legs": []}),
        ("listen.started", {"call_id": "CA1", "listener": "Sam", "legs": []}),
        ("listen.ended", {"call_id": "CA1", "session_id": "ls_1", "reason": "x"}),
        ("call.ended", {"call_id": "CA1", "ended_at": 1.0, "extra": 1}),
    ],
)
def test_events_missing_or_mangling_fields_are_refused(kind: str, fields: Any) -> None:
    with pytest.raises(BadRequest):
        decode_event(wire(kind, fields))


def test_a_call_with_one_leg_survives_and_says_so_on_the_wire() -> None:
    one = CallInfo(CallId("CA9"), "twilio", "a", 1.0, NodeId("n"), legs=("caller",))
    assert decode_event(encode_event(CallStarted(one))) == CallStarted(one)
    assert msgpack.unpackb(encode_event(CallStarted(one)), raw=False)["d"]["call"]["legs"] == ["caller"]


def test_both_legs_are_left_off_the_wire_for_nodes_that_predate_legs() -> None:
    wire_call = msgpack.unpackb(encode_event(CallStarted(CALL)), raw=False)["d"]["call"]
    assert "legs" not in wire_call


def test_a_call_from_a_node_that_predates_legs_has_both() -> None:
    decoded = decode_event(wire("call.started", {"call": call_fields()}))
    assert isinstance(decoded, CallStarted) and decoded.call.legs == ("agent", "caller")


@pytest.mark.parametrize(
    "legs", ["caller", ["caller", "caller"], ["nobody"], [1], [["agent"]], {"agent": 1}, None]
)
def test_malformed_call_legs_are_refused(legs: Any) -> None:
    with pytest.raises(BadRequest):
        decode_event(wire("call.started", {"call": call_fields(legs=legs)}))


def test_legs_that_are_not_a_list_are_refused() -> None:
    listener = {
        "session_id": "ls_1", "user_id": "u", "display_name": "d", "purpose": "p",
        "started_at": 1.0, "node_id": "n",
    }
    with pytest.raises(BadRequest):
        decode_event(wire("listen.started", {"call_id": "CA1", "listener": listener, "legs": 5}))


def test_an_unhashable_kind_is_refused() -> None:
    with pytest.raises(BadRequest):
        decode_event(wire([1], {}))


def test_a_boolean_version_is_refused() -> None:
    with pytest.raises(BadRequest):
        decode_event(wire("call.ended", {"call_id": "CA1", "ended_at": 1.0}, True))


def test_fields_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(BadRequest):
        decode_event(wire("call.ended", {"call_id": 5, "ended_at": "yesterday"}))


# --- media -------------------------------------------------------------------------------


@pytest.mark.parametrize("leg", ["agent", "caller"])
@pytest.mark.parametrize("payload", [b"", b"\xff" * 160, bytes(range(256))])
def test_media_packets_survive_the_round_trip(leg: str, payload: bytes) -> None:
    assert decode_media(encode_media(leg, 123456, payload)) == (leg, 123456, payload)


@settings(max_examples=200, database=None, deadline=None)
@given(
    leg=st.sampled_from(["agent", "caller"]),
    timestamp=st.integers(min_value=0, max_value=2**32 - 1),
    payload=st.binary(max_size=400),
)
def test_any_media_packet_survives_the_round_trip(leg: str, timestamp: int, payload: bytes) -> None:
    assert decode_media(encode_media(leg, timestamp, payload)) == (leg, timestamp, payload)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        bytes(msgpack.packb(5)),
        bytes(msgpack.packb(("agent", 1))),
        bytes(msgpack.packb(("agent", 1, b"x", "extra"))),
        bytes(msgpack.packb(("both", 1, b"x"), use_bin_type=True)),
        bytes(msgpack.packb(([1], 1, b"x"), use_bin_type=True)),
        bytes(msgpack.packb(("agent", 1, "text, not bytes"), use_bin_type=True)),
    ],
    ids=["empty", "reserved-byte", "int", "two-items", "four-items", "unknown-leg",
         "list-leg", "text-payload"],
)
def test_malformed_media_packets_are_refused(data: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_media(data)


@pytest.mark.parametrize("timestamp", ["soon", None])
def test_media_with_a_non_integer_timestamp_is_refused(timestamp: Any) -> None:
    with pytest.raises(BadRequest):
        decode_media(bytes(msgpack.packb(("agent", timestamp, b"x"), use_bin_type=True)))

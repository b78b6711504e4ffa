"""Typed ledger events: which fields are public, which personal, what is refused."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.audit.canonical import canonical_json
from live.audit.entry import details_commitment, leaf_bytes
from live.audit.events import (
    ALWAYS_PERSONAL,
    EVENT_KINDS,
    INDEXED_FIELDS,
    PERSON_ACTOR,
    RESERVED_FIELDS,
    SYSTEM_ACTOR,
    EventError,
    split_event,
)

REQUIRED_KINDS = {
    "listen.started",
    "listen.ended",
    "leg.muted",
    "leg.unmuted",
    "notice.delivered",
    "notice.seen",
    "policy.changed",
    "export.made",
    "purge.done",
    "listen.refused",
}


def started_fields() -> dict[str, object]:
    return {
        "session_id": "ls_1",
        "call_id": "CA1",
        "agent_id": "agent-7",
        "user_id": "sup-3",
        "display_name": "Sam Supervisor",
        "purpose": "quality",
        "legs": ["agent", "caller"],
        "node_id": "node-a",
        "started_at": 1700000000.25,
    }


def test_every_required_kind_exists() -> None:
    assert REQUIRED_KINDS <= set(EVENT_KINDS)


def test_no_kind_publishes_a_personal_field() -> None:
    for kind in EVENT_KINDS.values():
        assert not kind.public & ALWAYS_PERSONAL, kind.name


def test_listener_identity_is_personal_and_agent_id_is_public() -> None:
    event = split_event("listen.started", "sup-3", started_fields())
    assert event.actor == PERSON_ACTOR
    assert event.details == {"user_id": "sup-3", "display_name": "Sam Supervisor", "actor": "sup-3"}
    assert event.public["agent_id"] == "agent-7"
    assert set(event.public) == {
        "session_id",
        "call_id",
        "agent_id",
        "purpose",
        "legs",
        "node_id",
        "started_at",
    }


def test_the_system_actor_stays_in_the_leaf() -> None:
    event = split_event(
        "listen.ended", SYSTEM_ACTOR, {"session_id": "s", "reason": "node-lost", "duration_s": 3.5}
    )
    assert event.actor == SYSTEM_ACTOR
    assert event.details == {}


def test_caller_numbers_and_free_text_are_personal_whatever_the_kind() -> None:
    event = split_event(
        "consent.changed",
        SYSTEM_ACTOR,
        {"call_id": "CA1", "consent": "granted", "ani": "+4930123456", "note": "said yes"},
    )
    assert event.details == {"ani": "+4930123456", "note": "said yes"}
    assert "ani" not in event.public


def test_unknown_fields_are_personal_by_default() -> None:
    event = split_event("leg.muted", SYSTEM_ACTOR, {"session_id": "s", "leg": "caller", "x": 1})
    assert event.details == {"x": 1}


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("listen.exploded", {}, "unknown ledger event kind"),
        ("listen.started", {"seq": 1}, "reserved"),
        ("listen.started", {"Bad-Name": 1}, "bad field name"),
        ("listen.started", {"agent_id": 7}, "agent_id must be a string"),
    ],
)
def test_invalid_events_are_refused(kind: str, fields: dict[str, object], message: str) -> None:
    with pytest.raises(EventError, match=message) as caught:
        split_event(kind, "sup", fields)
    assert caught.value.status == 400


def test_empty_actor_is_refused() -> None:
    with pytest.raises(EventError, match="actor"):
        split_event("listen.started", "", {})


def test_the_leaf_is_canonical_json_with_the_commitment_in_hex() -> None:
    salt = bytes(range(16))
    details = canonical_json({"display_name": "Sam"})
    commitment = details_commitment(salt, details)
    assert commitment == hashlib.sha256(salt + b'{"display_name":"Sam"}').digest()
    leaf = leaf_bytes(5, "listen.started", 1700000000.5, "user", {"purpose": "quality"}, commitment)
    assert leaf == (
        b'{"actor":"user","at":1700000000.5,"details_commitment":"'
        + commitment.hex().encode()
        + b'","fields":{"purpose":"quality"},"kind":"listen.started","seq":5}'
    )
    assert b"Sam" not in leaf
    assert json.loads(leaf)["details_commitment"] == commitment.hex()


FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: name not in RESERVED_FIELDS and name not in INDEXED_FIELDS
)
VALUES = st.one_of(st.text(max_size=20), st.integers(-(2**53) + 1, 2**53 - 1), st.booleans())


@given(st.dictionaries(FIELD_NAMES, VALUES, max_size=8))
def test_split_is_a_partition_of_the_fields(fields: dict[str, object]) -> None:
    event = split_event("listen.started", "sup", fields)
    personal = {k: v for k, v in event.details.items() if k != "actor"}
    assert {**event.public, **personal} == fields
    assert not set(event.public) & set(personal)
    assert not set(event.public) & ALWAYS_PERSONAL

"""MemoryCallBus and its Roster: the one-node bus keeps the roster a console would show."""

from __future__ import annotations

import dataclasses
import time

import pytest

from live.bus import MemoryCallBus
from live.model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenerInfo,
    ListenStarted,
    Roster,
)
from live.types import CallId, Consent, NodeId, SessionId


def call(call_id: str = "CA1", **changes: object) -> CallInfo:
    info = CallInfo(CallId(call_id), "twilio", "agent-1", 1700000000.0, NodeId("node-1"))
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


def listener(session_id: str, name: str = "Sam") -> ListenerInfo:
    return ListenerInfo(
        SessionId(session_id), "sup", name, "quality", time.time(), NodeId("node-1")
    )


async def test_a_started_call_is_in_the_snapshot() -> None:
    bus = MemoryCallBus()
    await bus.start()
    await bus.publish(CallStarted(call("CA1")))
    await bus.publish(CallStarted(call("CA2")))
    assert [c.call_id for c in await bus.snapshot()] == ["CA1", "CA2"]
    await bus.aclose()


async def test_listeners_come_and_go() -> None:
    bus = MemoryCallBus()
    await bus.publish(CallStarted(call()))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1", "Sam"), ("agent", "caller")))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_2", "Kim"), ("agent",)))
    [shown] = await bus.snapshot()
    assert [x.display_name for x in shown.listeners] == ["Sam", "Kim"]
    await bus.publish(ListenEnded(CallId("CA1"), SessionId("ls_1"), "stopped", time.time()))
    [shown] = await bus.snapshot()
    assert [x.display_name for x in shown.listeners] == ["Kim"]


async def test_the_same_session_is_listed_once() -> None:
    bus = MemoryCallBus()
    await bus.publish(CallStarted(call()))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1", "Sam"), ("agent",)))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1", "Sam again"), ("agent",)))
    [shown] = await bus.snapshot()
    assert [x.display_name for x in shown.listeners] == ["Sam again"]


async def test_an_update_changes_the_call_but_keeps_its_listeners() -> None:
    bus = MemoryCallBus()
    await bus.publish(CallStarted(call()))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1"), ("agent",)))
    # The ingesting node does not know who listens: its update carries no listeners.
    await bus.publish(CallUpdated(call(consent=Consent.DENIED, pci_paused=True)))
    [shown] = await bus.snapshot()
    assert shown.consent is Consent.DENIED and shown.pci_paused
    assert [x.session_id for x in shown.listeners] == ["ls_1"]


async def test_an_ended_call_leaves_the_roster_with_its_listeners() -> None:
    bus = MemoryCallBus()
    await bus.publish(CallStarted(call()))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1"), ("agent",)))
    await bus.publish(CallEnded(CallId("CA1"), time.time()))
    assert await bus.snapshot() == []
    # A late listen event for the ended call does not bring it back.
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_2"), ("agent",)))
    await bus.publish(ListenEnded(CallId("CA1"), SessionId("ls_1"), "call-ended", time.time()))
    assert await bus.snapshot() == []


async def test_events_for_unknown_calls_are_ignored() -> None:
    bus = MemoryCallBus()
    await bus.publish(CallEnded(CallId("nope"), time.time()))
    await bus.publish(ListenEnded(CallId("nope"), SessionId("ls_1"), "stopped", time.time()))
    assert await bus.snapshot() == []


async def test_subscribers_see_every_event_in_order_and_a_broken_one_stops_nobody(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MemoryCallBus()
    first: list[str] = []
    last: list[str] = []

    def broken(event: BusEvent) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(lambda e: first.append(e.kind))
    bus.subscribe(broken)
    bus.subscribe(lambda e: last.append(e.kind))
    await bus.publish(CallStarted(call()))
    await bus.publish(ListenStarted(CallId("CA1"), listener("ls_1"), ("agent",)))
    await bus.publish(CallEnded(CallId("CA1"), time.time()))
    assert first == last == ["call.started", "listen.started", "call.ended"]
    assert "bus subscriber failed" in caplog.text


async def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus = MemoryCallBus()
    seen: list[BusEvent] = []
    unsubscribe = bus.subscribe(seen.append)
    await bus.publish(CallStarted(call()))
    unsubscribe()
    unsubscribe()
    await bus.publish(CallEnded(CallId("CA1"), time.time()))
    assert [e.kind for e in seen] == ["call.started"]


async def test_aclose_drops_every_subscriber() -> None:
    bus = MemoryCallBus()
    seen: list[BusEvent] = []
    bus.subscribe(seen.append)
    await bus.aclose()
    await bus.publish(CallStarted(call()))
    assert seen == []


async def test_one_node_never_relays_media() -> None:
    bus = MemoryCallBus()
    got: list[bytes] = []
    unsubscribe = await bus.subscribe_media(CallId("CA1"), got.append)
    await bus.want_media(CallId("CA1"))
    assert not bus.media_wanted(CallId("CA1"))
    bus.publish_media(CallId("CA1"), b"packet")
    await unsubscribe()
    assert got == []


def test_roster_applies_events_without_a_bus() -> None:
    roster = Roster()
    roster.apply(CallStarted(call(listeners=(listener("ls_0"),))))
    assert [x.session_id for x in roster.calls[CallId("CA1")].listeners] == ["ls_0"]
    roster.apply(CallUpdated(call(queue="billing")))
    assert roster.calls[CallId("CA1")].queue == "billing"
    assert [x.session_id for x in roster.calls[CallId("CA1")].listeners] == ["ls_0"]
    roster.apply(CallEnded(CallId("CA1"), 0.0))
    assert roster.calls == {}

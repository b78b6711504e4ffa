"""The call registry over the in-process bus: the sink the ingest adapters feed."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from live.audit import open_ledger
from live.auth import Identity
from live.bus import MemoryCallBus
from live.bus.base import ClusterView
from live.calls import CallRegistry
from live.errors import BusUnavailable, Conflict, Forbidden, NotFound, ServiceUnavailable
from live.ingest.sink import CallAnnouncement
from live.model import BusEvent, CallEnded, CallInfo, CallStarted, ListenerInfo, ListenStarted
from live.notices import NoticeBoard, NoticeStore
from live.policy import SetConsent, SetPci
from live.policy_holder import PolicyHolder
from live.types import CallId, Consent, EndReason, NodeId, Role, SessionId
from tests.unit.test_notice_board import POLICY, RecordingLedger

DEFAULT = Path(__file__).resolve().parents[2] / "live" / "policy" / "default.toml"
SAM = Identity("sam", "Sam Supervisor", Role.SUPERVISOR)
CTI = Identity("cti", "CTI", Role.ADMIN)


@dataclass
class Watcher:
    """Records what the registry tells the listen service."""

    registry: CallRegistry | None = None
    seen: list[str] = field(default_factory=list)

    async def local_call_ending(self, call_id: CallId) -> None:
        assert self.registry is not None
        self.seen.append(f"ending {call_id} in-roster={call_id in self.registry.roster.calls}")

    def call_changed(self, before: CallInfo, after: CallInfo) -> None:
        self.seen.append(f"changed {after.call_id} {before.consent.value}->{after.consent.value}")

    def call_gone(self, call_id: CallId, reason: EndReason) -> None:
        self.seen.append(f"gone {call_id}" + ("" if reason is EndReason.CALL_ENDED else f" {reason.value}"))


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[tuple[CallRegistry, MemoryCallBus, Watcher]]:
    ledger = open_ledger("", tmp_path / "ledger.sqlite3", key_path=tmp_path / "key.pem", checkpoint_interval_s=0)
    await ledger.open()
    policy = PolicyHolder(DEFAULT, ledger)
    await policy.start()
    bus = MemoryCallBus()
    await bus.start()
    calls = CallRegistry(NodeId("n1"), bus, policy)
    watcher = Watcher(calls)
    calls.watch(watcher)
    await calls.start()
    yield calls, bus, watcher
    await calls.stop()
    await bus.aclose()
    await ledger.aclose()


async def test_a_call_is_announced_gated_and_withdrawn(
    registry: tuple[CallRegistry, MemoryCallBus, Watcher],
) -> None:
    calls, _bus, watcher = registry
    events: list[BusEvent] = []
    unsubscribe = calls.subscribe(events.append)
    media = await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    assert [type(e) for e in events] == [CallStarted]
    assert [c.call_id for c in calls.calls()] == ["CA1"]
    # The default policy hears the caller only with consent.
    assert (media.agent.audible, media.caller.audible) == (True, False)
    stats = calls.stats()
    assert (stats.node_calls, stats.cluster_calls) == (1, 1)

    await calls.consent_reported(CallId("CA1"), Consent.GRANTED)
    assert media.caller.audible
    assert calls.call("CA1").consent is Consent.GRANTED
    assert watcher.seen == ["changed CA1 unknown->granted"]

    await calls.call_ended(CallId("CA1"))
    # The listen service hears of the end while the call is still in the roster.
    assert watcher.seen[1:] == ["ending CA1 in-roster=True", "gone CA1"]
    assert isinstance(events[-1], CallEnded)
    assert calls.calls() == [] and calls.stats().node_calls == 0
    with pytest.raises(NotFound):
        calls.call("CA1")
    unsubscribe()


async def test_a_call_id_is_live_once(registry: tuple[CallRegistry, MemoryCallBus, Watcher]) -> None:
    calls, _bus, _watcher = registry
    await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    with pytest.raises(Conflict) as again:
        await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    assert again.value.code == "duplicate_call"


async def test_a_call_on_another_node_is_not_joined_here(
    registry: tuple[CallRegistry, MemoryCallBus, Watcher],
) -> None:
    calls, bus, _watcher = registry
    await bus.publish(CallStarted(CallInfo(CallId("CA9"), "twilio", "agent-2", 1.0, NodeId("n2"))))
    assert calls.known("CA9") is not None
    with pytest.raises(Conflict) as elsewhere:
        await calls.call_started(CallAnnouncement(CallId("CA9"), "twilio", "agent-2"))
    assert elsewhere.value.code == "call_on_other_node"


async def test_changes_are_the_policy_s(registry: tuple[CallRegistry, MemoryCallBus, Watcher]) -> None:
    calls, _bus, _watcher = registry
    media = await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    with pytest.raises(Forbidden) as raised:
        await calls.change(SAM, "CA1", SetConsent(Consent.GRANTED))
    assert raised.value.code == "consent_grant_forbidden"
    assert not media.caller.audible
    paused = await calls.change(SAM, "CA1", SetPci(True))  # lowering what is heard: allowed
    assert paused.pci_paused and not media.agent.audible
    resumed = await calls.change(CTI, "CA1", SetPci(False))
    assert not resumed.pci_paused and media.agent.audible
    assert calls.current(CallId("CA1")).pci_paused is False


def remote(call_id: str, node: str = "n2", **changes: object) -> CallInfo:
    return CallInfo(CallId(call_id), "twilio", "agent-2", 1.0, NodeId(node), **changes)  # type: ignore[arg-type]


async def test_resync_takes_what_the_bus_did_not_deliver(
    registry: tuple[CallRegistry, MemoryCallBus, Watcher],
) -> None:
    """Events lost on the way (an outage): the roster is reconciled with the bus's state."""
    calls, bus, watcher = registry
    for call_id in ("CA1", "CA2", "CA3"):
        await bus.publish(CallStarted(remote(call_id)))
    events: list[BusEvent] = []
    calls.subscribe(events.append)
    # Behind the registry's back: CA1 ended (its node n2 lives on, with CA3), CA3 changed
    # consent and gained a listener, CA4 started.
    listener = ListenerInfo(SessionId("ls_1"), "sam", "Sam", "quality", 2.0, NodeId("n3"))
    roster = bus._roster  # the bus's shared state, changed without delivering the events
    roster.apply(CallEnded(CallId("CA1"), 3.0))
    roster.apply(CallStarted(remote("CA3", consent=Consent.GRANTED)))
    roster.apply(ListenStarted(CallId("CA3"), listener, ("agent",)))
    roster.apply(CallStarted(remote("CA4")))
    await calls.resync()
    assert sorted(c.call_id for c in calls.calls()) == ["CA2", "CA3", "CA4"]
    assert calls.call("CA3").consent is Consent.GRANTED
    assert calls.call("CA3").listeners == (listener,)
    assert "gone CA1" in watcher.seen and calls.recently_ended("CA1") is not None
    assert any(isinstance(e, CallEnded) and e.call_id == "CA1" for e in events)  # consoles hear it
    # A node with no call left in the view is lost: its calls' listens end as node-lost.
    roster.calls.clear()
    await calls.resync()
    assert calls.calls() == []
    assert {"gone CA2 node-lost", "gone CA3 node-lost", "gone CA4 node-lost"} <= set(watcher.seen)
    await calls.resync()  # nothing left to do: no further news
    assert len([s for s in watcher.seen if s.startswith("gone")]) == 4


async def test_resync_keeps_the_calls_ingested_here(
    registry: tuple[CallRegistry, MemoryCallBus, Watcher],
) -> None:
    calls, bus, _watcher = registry
    await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    bus._roster.calls.clear()  # the bus lost it (Redis restarted empty)
    await calls.resync()
    assert [c.call_id for c in calls.calls()] == ["CA1"] and "CA1" in calls.local


class FailingBus(MemoryCallBus):
    """A bus whose publishes fail with ``error`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    async def publish(self, event: BusEvent) -> None:
        if self.error is not None:
            raise self.error
        await super().publish(event)


@pytest.fixture
async def failing(tmp_path: Path) -> AsyncIterator[tuple[CallRegistry, FailingBus]]:
    ledger = open_ledger("", tmp_path / "ledger.sqlite3", key_path=tmp_path / "key.pem", checkpoint_interval_s=0)
    await ledger.open()
    policy = PolicyHolder(DEFAULT, ledger)
    await policy.start()
    bus = FailingBus()
    calls = CallRegistry(NodeId("n1"), bus, policy)
    await calls.start()
    yield calls, bus
    bus.error = None
    await calls.stop()
    await ledger.aclose()


async def test_a_call_starting_while_the_bus_is_down_goes_on_here(
    failing: tuple[CallRegistry, FailingBus],
) -> None:
    calls, bus = failing
    bus.error = BusUnavailable("Redis publish failed: connection refused")
    await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    assert calls.known("CA1") is not None  # served and listed here meanwhile
    await calls.call_ended(CallId("CA1"))
    assert calls.known("CA1") is None and not calls.local
    bus.error = None
    await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))  # not "already live"


async def test_a_refused_call_leaves_nothing_behind(failing: tuple[CallRegistry, FailingBus]) -> None:
    calls, bus = failing
    bus.error = ServiceUnavailable("refused")
    with pytest.raises(ServiceUnavailable):
        await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    assert calls.known("CA1") is None and not calls.local and calls.stats().node_calls == 0
    bus.error = None
    await calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
    assert calls.known("CA1") is not None


async def test_after_a_resync_the_indicator_shows_what_runs_in_the_cluster(
    registry: tuple[CallRegistry, MemoryCallBus, Watcher], tmp_path: Path
) -> None:
    """Announcements lost while the bus was down: once the roster is reconciled, the agent's
    live indicator here shows exactly the listens running anywhere, as their node said."""
    calls, bus, _ = registry
    board = NoticeBoard(NoticeStore(tmp_path / "notices.sqlite3"), RecordingLedger(), lambda: POLICY)
    await board.store.open()
    calls.after_resync(lambda: board.sync_watching(calls.listening()))
    try:
        await bus.publish(CallStarted(remote("CA7")))  # agent-2's call on node n2
        gone = ListenerInfo(SessionId("ls_gone"), "sam", "Sam", "quality", 2.0, NodeId("n2"), "Sam", "live")
        on = ListenerInfo(SessionId("ls_on"), "kim", "Kim", "training", 3.0, NodeId("n2"), "QA team", "live")
        await bus.publish(ListenStarted(CallId("CA7"), gone, ("agent",)))
        board.listen_started(agent_id="agent-2", session_id="ls_gone", label="Sam", mode="live", purpose="quality")
        page, leave = board.subscribe("agent-2")
        # Behind the registry's back: Sam's listen ended, Kim's began (both announcements lost),
        # and an after-call listen began (no indicator for it).
        quiet = ListenerInfo(SessionId("ls_quiet"), "lee", "Lee", "coaching", 4.0, NodeId("n2"), "Lee", "after_call")
        held = bus._roster.calls[CallId("CA7")]
        bus._roster.calls[CallId("CA7")] = dataclasses.replace(held, listeners=(on, quiet))
        await calls.resync()
        assert set(board.watching["agent-2"]) == {"ls_on"}
        events = [page.get_nowait() for _ in range(page.qsize())]
        assert events[-1]["listening"] == [{"listener": "QA team", "purpose": "training"}]
        # A roster that still lists an ended listen for a moment does not show it again.
        board._unwatch("agent-2", "ls_on")
        await calls.resync()
        assert "agent-2" not in board.watching
        leave()
    finally:
        await board.store.aclose()


class ForgetfulBus(MemoryCallBus):
    """A bus that keeps heartbeats, as Redis does: ``alive`` beat lately, ``heard`` have a
    heartbeat on record (fresh or stale)."""

    def __init__(self) -> None:
        super().__init__()
        self.alive: set[str] = set()
        self.heard: set[str] = set()
        self.node_timeout_s = 60.0

    async def view(self) -> ClusterView:
        calls = tuple(c for c in self._roster.calls.values() if c.node_id in self.alive)
        return ClusterView(calls, frozenset(self.alive), frozenset(self.heard), self.node_timeout_s)


async def test_resync_waits_for_a_node_the_bus_forgot(tmp_path: Path) -> None:
    """Redis restarted empty: a node with no heartbeat on record is not lost before the node
    timeout (it may not have written its calls back yet); one with a stale heartbeat is."""
    ledger = open_ledger("", tmp_path / "ledger.sqlite3", key_path=tmp_path / "key.pem", checkpoint_interval_s=0)
    await ledger.open()
    policy = PolicyHolder(DEFAULT, ledger)
    await policy.start()
    bus = ForgetfulBus()
    await bus.start()
    bus.alive = bus.heard = {"n2", "n3", "n4"}
    for node in ("n2", "n3", "n4"):
        await bus.publish(CallStarted(remote(f"CA-{node}", node)))
    calls = CallRegistry(NodeId("n1"), bus, policy)
    watcher = Watcher(calls)
    calls.watch(watcher)
    await calls.start()
    try:
        bus._roster.calls.clear()
        bus.alive, bus.heard = set(), set()  # Redis restarted empty
        await calls.resync()
        assert len(calls.calls()) == 3 and watcher.seen == []
        # n2 writes its call back and beats again; n3 stays unheard past the node timeout.
        bus.alive, bus.heard = {"n2"}, {"n2"}
        await bus.publish(CallStarted(remote("CA-n2", "n2")))
        bus.node_timeout_s = 0.0
        await calls.resync()
        assert [c.call_id for c in calls.calls()] == ["CA-n2"]
        assert sorted(watcher.seen) == ["gone CA-n3 node-lost", "gone CA-n4 node-lost"]
        # A node whose heartbeat is on record but stale is lost at once, timeout or not.
        bus.node_timeout_s = 60.0
        bus.alive = set()
        await calls.resync()
        assert calls.calls() == [] and watcher.seen[-1] == "gone CA-n2 node-lost"
    finally:
        await calls.stop()
        await bus.aclose()
        await ledger.aclose()

"""The call registry over the in-process bus: the sink the ingest adapters feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from live.audit import open_ledger
from live.auth import Identity
from live.bus import MemoryCallBus
from live.calls import CallRegistry
from live.errors import Conflict, Forbidden, NotFound
from live.ingest.sink import CallAnnouncement
from live.model import BusEvent, CallEnded, CallInfo, CallStarted
from live.policy import SetConsent, SetPci
from live.policy_holder import PolicyHolder
from live.types import CallId, Consent, NodeId, Role

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

    def call_gone(self, call_id: CallId) -> None:
        self.seen.append(f"gone {call_id}")


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

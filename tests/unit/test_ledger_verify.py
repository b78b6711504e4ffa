"""``verify`` beyond tampering: time gaps, damaged rows, and random histories that must pass."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live.audit import SqliteLedger
from live.audit.checkpoint import verify_note
from live.audit.verify import verify_log

T0 = 1_750_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_gaps_between_checkpoints_and_a_stale_head_are_warned(tmp_path: Path) -> None:
    clock = Clock(T0)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=60, clock=clock)
    await ledger.open()  # signs at T0
    try:
        for step in (60, 120):
            clock.now = T0 + step
            await ledger.sign_checkpoint()
        clock.now = T0 + 150
        report = await ledger.verify()
        assert report.ok and report.warnings == ()
        clock.now = T0 + 900  # the server was "down" between T0+120 and T0+900
        await ledger.sign_checkpoint()
        clock.now = T0 + 5000
        report = await ledger.verify()
    finally:
        await ledger.aclose()
    assert report.ok  # warnings only: a stopped server looks the same
    gap, stale = report.warnings
    assert gap.startswith("no checkpoint for 780 s after 2025-06-15T")
    assert "the newest checkpoint is 4100 s old" in stale


async def test_verify_reports_unreadable_rows_without_crashing(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    try:
        for i in range(3):
            await ledger.append("pci.paused", actor="system", at=T0 + i, call_id=f"CA{i}")
        entries, details, checkpoints = await ledger.store.read_all()
        key = ledger.verifier_key()
        origin = ledger.origin
    finally:
        await ledger.aclose()
    broken = [
        entries[0],
        dataclasses.replace(entries[1], fields="{not json"),
        dataclasses.replace(entries[2], kind="pci.exploded"),
    ]
    report = verify_log(
        origin=origin, entries=broken, details=details, checkpoints=checkpoints, keys=[key]
    )
    assert report.first_bad_seq == 1
    assert report.problems[0].message == "entry 1: its public fields are not a JSON object"
    assert report.problems[1].seq == 2 and report.problems[1].code == "leaf_mismatch"
    assert report.warnings == ("entry 2: unknown event kind 'pci.exploded'",)
    assert verify_log(origin=origin, entries=[], details=[], checkpoints=[], keys=[key]).ok


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("listen"), st.integers(0, 3)),
        st.tuples(st.just("purge"), st.integers(0, 40)),
        st.tuples(st.just("checkpoint"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS, st.integers(1, 6))
def test_any_history_verifies_and_proves(operations: list[tuple[str, int]], every: int) -> None:
    asyncio.run(_history(operations, every))


async def _history(operations: list[tuple[str, int]], every: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        ledger = SqliteLedger(
            Path(directory) / "ledger.sqlite3", checkpoint_interval_s=0, checkpoint_every=every
        )
        await ledger.open()
        try:
            notes = []
            for i, (operation, arg) in enumerate(operations):
                if operation == "listen":
                    await ledger.append(
                        "listen.started",
                        actor=f"sup-{arg}",
                        at=T0 + i,
                        session_id=f"ls_{i}",
                        agent_id=f"agent-{arg}",
                        display_name=f"Supervisor {arg}",
                        purpose="quality",
                    )
                elif operation == "purge":
                    await ledger.erase_details(T0 + arg, at=T0 + i)
                else:
                    notes.append(await ledger.checkpoint())
            report = await ledger.verify(held_checkpoints=notes)
            assert report.ok, report.problems
            size, root = await ledger.head()
            assert report.tree_size == size and report.root == root
            key = ledger.verifier_key()
            for note in notes:
                old = verify_note(note, key)
                (await ledger.consistency_proof(old.size, size)).verify(old.root, root)
                for seq in range(old.size):
                    (await ledger.inclusion_proof(seq, old.size)).verify(old.root)
        finally:
            await ledger.aclose()

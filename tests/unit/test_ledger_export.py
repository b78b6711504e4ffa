"""Export bundles: built from a real ledger, verified offline, tampering named."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.audit import SqliteLedger
from live.audit.checkpoint import CheckpointSigner
from live.audit.export import (
    BUNDLE_FORMAT,
    BundleEntry,
    BundleError,
    build_bundle,
    export_bundle,
    verify_bundle,
)

T0 = 1_750_000_000.0


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3", checkpoint_interval_s=0)
    await ledger.open()
    for i in range(6):
        agent = "agent-7" if i % 2 == 0 else "agent-8"
        await ledger.append(
            "listen.started",
            actor="sup-3",
            at=T0 + i,
            session_id=f"ls_{i}",
            call_id=f"CA{i}",
            agent_id=agent,
            user_id="sup-3",
            display_name="Sam Supervisor",
            purpose="coaching",
            legs=["agent"],
            node_id="node-a",
            started_at=T0 + i,
        )
        await ledger.append(
            "listen.ended",
            actor="system",
            at=T0 + i + 0.5,
            session_id=f"ls_{i}",
            call_id=f"CA{i}",
            agent_id=agent,
            reason="call-ended",
            ended_at=T0 + i + 0.5,
            duration_s=0.5,
        )
    yield ledger
    await ledger.aclose()


def lines(bundle: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in bundle.splitlines()]


def join(items: list[dict[str, object]]) -> str:
    return "".join(json.dumps(i, separators=(",", ":"), ensure_ascii=False) + "\n" for i in items)


async def test_an_agents_bundle_verifies_offline(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger, agent_id="agent-7")
    header, *entries = lines(bundle)
    assert header["format"] == BUNDLE_FORMAT
    assert header["scope"] == {"agent_id": "agent-7", "details": False}
    assert [e["seq"] for e in entries] == [0, 1, 4, 5, 8, 9]
    assert all(e["details"] is None for e in entries)
    assert "Sam" not in bundle

    report = verify_bundle(bundle, ledger.verifier_key())
    assert report.ok, report.problems
    assert not report.key_from_bundle
    assert report.tree_size == 12
    assert {e.fields["agent_id"] for e in report.entries} == {"agent-7"}
    assert report.entries[0].fields["purpose"] == "coaching"
    assert report.entries[0].actor == "user"  # the listener's identity was not disclosed

    report = verify_bundle(bundle)
    assert report.ok and report.key_from_bundle
    assert "compare it with the published one" in report.summary()


async def test_details_are_disclosed_whole_and_verified(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger, agent_id="agent-8", include_details=True)
    report = verify_bundle(bundle, ledger.verifier_key())
    assert report.ok, report.problems
    started = report.entries[0]
    assert started.details == {
        "actor": "sup-3",
        "display_name": "Sam Supervisor",
        "user_id": "sup-3",
    }
    assert report.entries[1].details is None  # the system ended it: nothing personal

    header, *entries = lines(bundle)
    entries[0]["details"] = str(entries[0]["details"]).replace("Sam", "Tom")
    report = verify_bundle(join([header, *entries]), ledger.verifier_key())
    assert report.first_bad_seq == 2
    assert "details do not match the commitment" in report.problems[0].message


async def test_erased_details_are_never_exported(ledger: SqliteLedger) -> None:
    await ledger.erase_details(T0 + 100)
    bundle = await export_bundle(ledger, include_details=True)
    report = verify_bundle(bundle, ledger.verifier_key())
    assert report.ok
    assert all(e.details is None for e in report.entries)
    assert report.entries[-1].kind == "purge.done"


async def test_a_changed_leaf_is_named(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger, agent_id="agent-7")
    header, *entries = lines(bundle)
    entries[2]["leaf"] = str(entries[2]["leaf"]).replace("coaching", "quality")
    report = verify_bundle(join([header, *entries]), ledger.verifier_key())
    assert not report.ok
    assert report.first_bad_seq == 4
    assert report.problems[0].message.startswith("entry 4 (line 4) is not in the signed tree")


async def test_a_leaf_moved_to_another_position_is_named(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger)
    header, *entries = lines(bundle)
    entries[3]["leaf"], entries[3]["proof"] = entries[4]["leaf"], entries[4]["proof"]
    report = verify_bundle(join([header, *entries]), ledger.verifier_key())
    assert report.first_bad_seq == 3
    assert "is not the leaf of entry 3" in report.problems[0].message


async def test_a_removed_line_is_noticed(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger, agent_id="agent-7")
    header, *entries = lines(bundle)
    report = verify_bundle(join([header, *entries[:2], *entries[3:]]), ledger.verifier_key())
    assert not report.ok
    assert "announces 6 entries, the bundle has 5" in report.problems[0].message


async def test_a_checkpoint_by_another_key_is_refused(ledger: SqliteLedger) -> None:
    bundle = await export_bundle(ledger)
    header, *entries = lines(bundle)
    impostor = CheckpointSigner.generate(ledger.origin)
    cp_text = str(header["checkpoint"]).split("\n\n")[0] + "\n"
    header["checkpoint"] = impostor.sign_note(cp_text)
    header["verifier_key"] = impostor.verifier_key()
    forged = join([header, *entries])
    assert verify_bundle(forged).ok  # consistent in itself ...
    report = verify_bundle(forged, ledger.verifier_key())  # ... but not by the log's key
    assert not report.ok
    assert report.problems[0].message.startswith("the checkpoint does not verify")


async def test_a_proof_that_does_not_hold_is_not_built(ledger: SqliteLedger) -> None:
    note = await ledger.checkpoint()
    [entry] = await ledger.entries(session_id="ls_1", kind="listen.started")
    proof = (await ledger.inclusion_proof(entry.seq)).hashes
    wrong = (base64.b64decode(base64.b64encode(bytes(32))),) + proof[1:]
    with pytest.raises(BundleError, match="entry 2"):
        build_bundle(
            verifier_key=ledger.verifier_key(),
            checkpoint=note,
            entries=[BundleEntry.of(entry, wrong, include_details=False)],
        )


def test_garbage_is_a_failed_report_not_an_exception() -> None:
    for text in ("", "{}", "not json\n", '{"format":"live.ledger.bundle/v1"}\n'):
        report = verify_bundle(text)
        assert not report.ok and report.problems

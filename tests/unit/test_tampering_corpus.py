"""The tampering corpus: every way of hiding an entry we know of, each caught by ``verify``
given the log's trusted key and a checkpoint kept outside the operator's hands (a witness's
cosigned checkpoint or an agent page's copy), naming the first bad entry.

Each case tampers with a copy of one SQLite ledger with plain SQL or by rebuilding the log
under another key, as someone with the server's disk (and its key file) could.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from live.audit import MerkleLedger, open_ledger
from live.audit.checkpoint import CheckpointSigner
from live.audit.cosignature import WitnessSigner, add_signature_lines
from live.audit.keys import KEY_FILE
from live.audit.verify import VerifyReport

T0 = 1_750_000_000.0
ORIGIN = "live.ledger/tamper-test"
ENTRIES = 12


def _ledger(data: Path, **options: object) -> MerkleLedger:
    return open_ledger(
        "",
        data / "ledger.sqlite3",
        origin=ORIGIN,
        checkpoint_every=4,
        checkpoint_interval_s=0,
        **options,  # type: ignore[arg-type]
    )


async def _append(ledger: MerkleLedger, i: int) -> None:
    await ledger.append(
        "listen.started",
        actor="sup-3",
        at=T0 + i * 60,
        session_id=f"ls_{i:04d}",
        call_id=f"CA{i}",
        agent_id="agent-7",
        user_id="sup-3",
        display_name="Sam Supervisor",
        purpose="quality",
        legs=["agent", "caller"],
        node_id="node-a",
        started_at=T0 + i * 60,
    )


@dataclass
class Original:
    data: Path
    key: str  # the log's trusted verifier key, published by the operator
    witness: str  # the works council's witness key
    held: str  # the newest checkpoint, cosigned by the witness (what it keeps)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    import asyncio

    data = tmp_path_factory.mktemp("original")
    witness = WitnessSigner.generate("council.example/witness")

    async def build() -> Original:
        ledger = _ledger(data)
        await ledger.open()
        for i in range(ENTRIES):
            await _append(ledger, i)
        note = await ledger.sign_checkpoint()
        body = note[: note.index("\n\n") + 1]
        held = add_signature_lines(note, [witness.cosign(body, int(time.time()))])
        key = ledger.verifier_key()
        await ledger.aclose()
        return Original(data, key, witness.key.encode(), held)

    return asyncio.run(build())


def _copy(original: Original, into: Path) -> Path:
    shutil.copytree(original.data, into, dirs_exist_ok=True)
    return into


def _sql(data: Path, *statements: str) -> None:
    db = sqlite3.connect(data / "ledger.sqlite3", isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


async def _verify(data: Path, original: Original, *, key: bool = True) -> VerifyReport:
    ledger = _ledger(data)
    await ledger.open()
    try:
        return await ledger.verify(
            trusted_keys=(original.key,) if key else (),
            trust_key_file=not key,
            held_checkpoints=[original.held],
            witnesses=[original.witness],
        )
    finally:
        await ledger.aclose()


async def _rebuild(data: Path, keep: Callable[[int], bool], *, new_key: bool) -> None:
    """Write the log again from scratch (entries ``keep`` accepts), signed anew."""
    (data / "ledger.sqlite3").unlink()
    if new_key:
        (data / KEY_FILE).write_bytes(CheckpointSigner.generate(ORIGIN).to_pem())
    ledger = _ledger(data)
    await ledger.open()
    for i in range(ENTRIES):
        if keep(i):
            await _append(ledger, i)
    await ledger.sign_checkpoint()
    await ledger.aclose()


async def test_the_untouched_log_verifies(original: Original, tmp_path: Path) -> None:
    report = await _verify(_copy(original, tmp_path), original)
    assert report.ok, report.problems


async def test_every_single_entry_deletion_is_caught(original: Original, tmp_path: Path) -> None:
    for seq in range(ENTRIES):
        data = _copy(original, tmp_path / str(seq))
        _sql(data, f"DELETE FROM ledger_entries WHERE seq = {seq}")
        report = await _verify(data, original)
        assert not report.ok and report.first_bad_seq == seq, (seq, report.problems)


@pytest.mark.parametrize("keep_checkpoints", [True, False])
async def test_tail_truncation_is_caught(
    original: Original, tmp_path: Path, keep_checkpoints: bool
) -> None:
    for cut in (ENTRIES - 1, ENTRIES - 3, 5, 0):
        data = _copy(original, tmp_path / str(cut))
        statements = [f"DELETE FROM ledger_entries WHERE seq >= {cut}"]
        if not keep_checkpoints:
            statements.append(f"DELETE FROM ledger_checkpoints WHERE tree_size > {cut}")
        _sql(data, *statements)
        report = await _verify(data, original)
        assert not report.ok and report.first_bad_seq == cut, (cut, report.problems)
        assert any(p.code == "truncated" for p in report.problems)


async def test_reordered_entries_are_caught(original: Original, tmp_path: Path) -> None:
    data = _copy(original, tmp_path)
    _sql(
        data,
        "UPDATE ledger_entries SET seq = -1 WHERE seq = 3",
        "UPDATE ledger_entries SET seq = 3 WHERE seq = 6",
        "UPDATE ledger_entries SET seq = 6 WHERE seq = -1",
    )
    report = await _verify(data, original)
    assert not report.ok and report.first_bad_seq == 3, report.problems


@pytest.mark.parametrize(
    "column, value",
    [
        ("kind", "'listen.ended'"),
        ("at", "at + 3600"),
        ("actor", "'nobody'"),
        ("fields", "replace(fields, 'quality', 'coaching')"),
    ],
)
async def test_field_edits_are_caught(
    original: Original, tmp_path: Path, column: str, value: str
) -> None:
    data = _copy(original, tmp_path)
    _sql(data, f"UPDATE ledger_entries SET {column} = {value} WHERE seq = 5")
    report = await _verify(data, original)
    assert not report.ok and report.first_bad_seq == 5, report.problems


async def test_a_swapped_key_signing_new_entries_is_caught(
    original: Original, tmp_path: Path
) -> None:
    data = _copy(original, tmp_path)
    (data / KEY_FILE).write_bytes(CheckpointSigner.generate(ORIGIN).to_pem())
    ledger = _ledger(data)
    await ledger.open()
    await _append(ledger, ENTRIES)
    await ledger.aclose()
    report = await _verify(data, original)
    assert not report.ok and report.first_bad_seq == ENTRIES, report.problems


@pytest.mark.parametrize("new_key", [True, False])
async def test_full_re_signing_without_an_entry_is_caught(
    original: Original, tmp_path: Path, new_key: bool
) -> None:
    data = _copy(original, tmp_path)
    await _rebuild(data, lambda i: i != 4, new_key=new_key)
    report = await _verify(data, original)
    assert not report.ok
    if new_key:  # every entry is signed by a key nobody trusts
        assert report.first_bad_seq == 0, report.problems
    else:
        # Re-signed with the stolen key itself: the held checkpoint's root cannot tell
        # which entry differs, only that the log is not what was witnessed.
        assert report.problems[0].code == "truncated", report.problems


async def test_re_signing_under_a_new_key_is_caught_by_the_witness_alone(
    original: Original, tmp_path: Path
) -> None:
    """No trusted key given: the key file beside the log is the attacker's, every entry and
    stored checkpoint verifies under it, and only the witness's checkpoint tells."""
    data = _copy(original, tmp_path)
    await _rebuild(data, lambda i: i != 4, new_key=True)
    report = await _verify(data, original, key=False)
    assert not report.ok
    assert any(p.code in ("truncated", "checkpoint_inconsistent") for p in report.problems)
    untouched = await _verify(_copy(original, tmp_path / "clean"), original, key=False)
    assert untouched.ok, untouched.problems


async def test_a_rotated_key_is_followed_from_the_old_key_alone(
    original: Original, tmp_path: Path
) -> None:
    data = _copy(original, tmp_path)
    ledger = _ledger(data)
    await ledger.open()
    seq, new_key = await ledger.rotate_key(CheckpointSigner.generate(ORIGIN).to_pem())
    assert seq == ENTRIES and ledger.verifier_key() == new_key
    await _append(ledger, ENTRIES + 1)
    await ledger.sign_checkpoint()
    await ledger.aclose()
    report = await _verify(data, original)  # only the old key is trusted
    assert report.ok, report.problems
    assert new_key in report.keys

    # A rotation nobody signed with a trusted key is not followed.
    _sql(data, f"DELETE FROM ledger_entries WHERE seq >= {ENTRIES}")
    ledger = _ledger(data)
    await ledger.open()  # signs with the new key, now without its rotation on record
    await _append(ledger, ENTRIES)
    await ledger.aclose()
    report = await _verify(data, original)
    assert not report.ok and report.first_bad_seq == ENTRIES, report.problems

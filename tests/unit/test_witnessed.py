"""The node's book of witness cosignatures: only good ones, never a smaller tree, served
as extra signature lines of the very checkpoint they cosign."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.audit.checkpoint import CheckpointError, CheckpointSigner, verify_note
from live.audit.cosignature import WitnessSigner, cosignatures
from live.audit.witnessed import CosignatureBook, with_cosignatures

ROOT = bytes(32)


def _body(note: str) -> str:
    return note[: note.index("\n\n") + 1]


def test_a_good_cosignature_is_kept_and_served_with_its_checkpoint(tmp_path: Path) -> None:
    log = CheckpointSigner.generate("example.com/log")
    witness = WitnessSigner.generate("council.example/w")
    book = CosignatureBook(tmp_path / "book.json")
    note = log.sign("example.com/log", 7, ROOT)
    entry = book.add(note, witness.cosign(_body(note), 1000), witness.key.encode(), log.verifier())
    assert (entry.name, entry.tree_size, entry.timestamp) == ("council.example/w", 7, 1000)
    assert [w.tree_size for w in CosignatureBook(tmp_path / "book.json").read()] == [7]
    served = with_cosignatures(note, book.read())
    assert verify_note(served, log.verifier()).size == 7
    assert cosignatures(served, [witness.key])[0].timestamp == 1000
    other = log.sign("example.com/log", 8, ROOT)
    assert with_cosignatures(other, book.read()) == other  # not this checkpoint's witness


def test_bad_cosignatures_and_rollbacks_are_refused(tmp_path: Path) -> None:
    log = CheckpointSigner.generate("example.com/log")
    stranger = CheckpointSigner.generate("example.com/log")
    witness = WitnessSigner.generate("council.example/w")
    book = CosignatureBook(tmp_path / "book.json")
    big = log.sign("example.com/log", 9, ROOT)
    small = log.sign("example.com/log", 3, ROOT)
    forged = stranger.sign("example.com/log", 9, ROOT)
    with pytest.raises(CheckpointError):  # not a checkpoint this node signed
        book.add(forged, witness.cosign(_body(forged), 1), witness.key.encode(), log.verifier())
    with pytest.raises(CheckpointError):  # a cosignature of another checkpoint
        book.add(big, witness.cosign(_body(small), 1), witness.key.encode(), log.verifier())
    book.add(big, witness.cosign(_body(big), 1), witness.key.encode(), log.verifier())
    with pytest.raises(CheckpointError) as raised:
        book.add(small, witness.cosign(_body(small), 2), witness.key.encode(), log.verifier())
    assert raised.value.fields.get("rollback") is True
    assert [w.tree_size for w in book.read()] == [9]

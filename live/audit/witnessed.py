"""Witness cosignatures a node has received, kept beside the log and served with it.

One JSON file in the data directory (``witness-cosignatures.json``) holds, per witness key,
the newest checkpoint it cosigned (the log's signed note with the witness's line appended)
and that checkpoint's size: what the audit page shows as "who has seen what". Only a
cosignature of a checkpoint this node's key signed, by a witness key that verifies it, is
accepted; a witness's size never goes down (a witness that cosigns a smaller tree than before
is reported, not stored). Writes are atomic (temporary file, fsync, rename).

In a cluster every node keeps its own file; a witness polls one node.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, VerifierKey, parse_note, verify_note
from .cosignature import WitnessKey, add_signature_lines, cosignatures, parse_witness_key

BOOK_FILE = "witness-cosignatures.json"


@dataclass(frozen=True, slots=True)
class Witnessed:
    """The newest checkpoint one witness cosigned."""

    witness_key: str
    name: str
    tree_size: int
    timestamp: int
    note: str  # the log's signed note plus the witness's cosignature line

    def to_json(self) -> dict[str, Any]:
        return {
            "witness": self.name,
            "witness_key": self.witness_key,
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "checkpoint": self.note,
        }


class CosignatureBook:
    """The file of received cosignatures (synchronous; call it off the event loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Witnessed]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []
        found = []
        for item in raw.get("witnesses", []) if isinstance(raw, dict) else []:
            try:
                found.append(
                    Witnessed(
                        str(item["witness_key"]),
                        str(item["witness"]),
                        int(item["tree_size"]),
                        int(item["timestamp"]),
                        str(item["checkpoint"]),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return found

    def add(
        self, note: str, cosignature_line: str, witness_key: str, log_key: VerifierKey
    ) -> Witnessed:
        """Check and store one witness's cosignature of ``note`` (signed by ``log_key``).

        Raises ``CheckpointError``: ``bad_key`` (witness key), ``unknown_key`` /
        ``bad_signature`` (the note is not ours, or the cosignature does not verify), or
        ``malformed`` with ``rollback`` when the witness has cosigned a larger tree before."""
        witness: WitnessKey = parse_witness_key(witness_key)
        checkpoint = verify_note(note, log_key)
        ours = note[: note.index("\n\n") + 2] + "".join(
            line + "\n"
            for line in note[note.index("\n\n") + 2 :].splitlines()
            if line.startswith(f"\u2014 {log_key.name} ")
        )
        cosigned = add_signature_lines(ours, [cosignature_line.rstrip("\n") + "\n"])
        found = cosignatures(cosigned, [witness])
        if not found:
            raise CheckpointError(
                f"the line is not a cosignature by {witness.name}+{witness.key_id.hex()}",
                reason="unknown_key",
            )
        entry = Witnessed(
            witness.encode(), witness.name, checkpoint.size, found[0].timestamp, cosigned
        )
        stored = self.read()
        book = [w for w in stored if w.witness_key != entry.witness_key]
        previous = [w for w in stored if w.witness_key == entry.witness_key]
        if previous and previous[0].tree_size > entry.tree_size:
            raise CheckpointError(
                f"{witness.name} cosigned size {previous[0].tree_size} before, now "
                f"{entry.tree_size}: the witness saw a larger tree than this one",
                reason="malformed",
                rollback=True,
            )
        self._write([*book, entry])
        return entry

    def _write(self, entries: list[Witnessed]) -> None:
        data = json.dumps({"witnesses": [e.to_json() for e in entries]}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, data)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temporary file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def with_cosignatures(note: str, witnessed: list[Witnessed]) -> str:
    """``note`` with the cosignature lines of every witness that cosigned this very body."""
    body = parse_note(note).text
    lines: list[str] = []
    for w in witnessed:
        try:
            if parse_note(w.note).text != body:
                continue
        except CheckpointError:
            continue
        block = w.note[w.note.index("\n\n") + 2 :]
        lines += [
            f"{line}\n" for line in block.splitlines() if line.startswith(f"\u2014 {w.name} ")
        ]
    return add_signature_lines(note, lines)


__all__ = [
    "BOOK_FILE",
    "CosignatureBook",
    "Witnessed",
    "with_cosignatures",
    "write_atomically",
]

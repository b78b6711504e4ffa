"""Verify a stored log from scratch: ``verify_log`` over the rows a store returns.

Nothing stored is trusted. In order:

1. **Entries**, by ``seq``: numbering without gaps from 0; the public fields are canonical
   JSON; the leaf recomputed from the stored columns hashes to the stored leaf hash; the
   entry signature by a trusted key matches the recomputed leaf hash (which names the exact
   entry even when someone recomputed its leaf hash, since only the key holder can sign);
   the indexed columns (``session_id``, ``call_id``, ``agent_id``) equal the public fields
   (else a disclosure query could miss entries).
2. **Personal details**: where an entry commits to details, the stored salt and details
   hash to the commitment; details erased only where a later ``purge.done`` entry covers
   them; no details beside an entry that commits to none.
3. **The tree** is rebuilt from the recomputed leaves.
4. **Checkpoints**, every stored one (and any held elsewhere that the caller passes): the
   signature verifies under a trusted key, the origin is this log's, the tree size is not
   larger than the log (else entries were truncated) and the RFC 9162 consistency proof
   from the checkpoint to the current tree verifies against both roots.
5. **Time**: gaps between checkpoint times, and a stale newest checkpoint, are reported as
   warnings (a server that was down looks the same as removed checkpoints).

``VerifyReport.first_bad_seq`` names the first bad entry; each ``Problem`` says what is
wrong in words a data-protection officer can act on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from .canonical import CanonicalError, canonical_json
from .checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    parse_checkpoint,
    parse_note,
    verify_note,
)
from .cosignature import WitnessKey, cosignatures, parse_witness_key
from .entry import CheckpointRow, DetailsRow, EntryRow, leaf_bytes
from .events import EVENT_KINDS, INDEXED_FIELDS
from .keys import TrustedKeys
from .merkle import HASH_SIZE, MerkleTree, ProofError, leaf_hash, verify_consistency
from .timeline import checkpoint_time


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that is wrong, with the entry (``seq``) or checkpoint it concerns."""

    code: str
    message: str
    seq: int | None = None
    checkpoint_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "seq": self.seq,
            "checkpoint_id": self.checkpoint_id,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of ``verify``: ``ok`` when there are no problems (warnings allowed)."""

    origin: str
    tree_size: int
    root: bytes
    entries: int
    checkpoints: int
    details_checked: int
    details_erased: int
    keys: tuple[str, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        """The lowest ``seq`` any problem names, or ``None``."""
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def summary(self) -> str:
        """One line for a terminal or a log."""
        if self.ok:
            return (
                f"ok: {self.entries} entries, {self.checkpoints} checkpoints verified, "
                f"root {self.root.hex()}"
            )
        first = self.problems[0]
        return f"FAILED ({len(self.problems)} problems): {first.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "details_checked": self.details_checked,
            "details_erased": self.details_erased,
            "first_bad_seq": self.first_bad_seq,
            "keys": list(self.keys),
            "problems": [p.to_json() for p in self.problems],
            "warnings": list(self.warnings),
        }


def verify_log(
    *,
    origin: str,
    entries: Sequence[EntryRow],
    details: Iterable[DetailsRow],
    checkpoints: Sequence[CheckpointRow],
    keys: Iterable[VerifierKey | str],
    held_checkpoints: Sequence[str] = (),
    witnesses: Sequence[WitnessKey | str] = (),
    now: float | None = None,
    checkpoint_interval_s: float | None = None,
) -> VerifyReport:
    """Check everything a store holds (module docstring); pure and synchronous.

    ``entries`` must be in ``seq`` order (as stores return them). ``keys`` are the trusted
    verifier keys. ``held_checkpoints`` are signed notes kept outside the store (by an
    agent, the works council); a log truncated below one of them is caught even when the
    stored checkpoints were removed too. A held checkpoint counts when the log's trusted key
    signed it or when one of ``witnesses`` (c2sp.org/tlog-cosignature keys) cosigned it; a
    witness-cosigned checkpoint catches a log rewritten and re-signed under a new key.

    ``key.rotated`` entries are followed: an entry signed by a trusted key that names a
    ``new_key`` makes that key trusted for the entries after it (and checkpoints covering
    them), so a rotated log verifies with only its first key given.
    """
    trusted = TrustedKeys(keys)
    witness_keys = tuple(w if isinstance(w, WitnessKey) else parse_witness_key(w) for w in witnesses)
    details_by_seq = {d.seq: d for d in details}
    entry_problems: list[Problem] = []
    warnings: list[str] = []
    tree = MerkleTree()
    erased: list[tuple[int, float]] = []  # (seq, at) of entries whose details are erased
    purges: list[tuple[int, float]] = []  # (seq, before) of purge.done entries
    details_checked = 0
    seen_seqs: set[int] = set()
    expected = 0

    def problem(code: str, seq: int, message: str) -> None:  # an entry problem
        entry_problems.append(Problem(code, f"entry {seq}: {message}", seq=seq))

    for row in entries:
        seen_seqs.add(row.seq)
        if row.seq != expected:
            if row.seq > expected:
                span = (
                    f"entry {expected} is missing"
                    if row.seq == expected + 1
                    else f"entries {expected} to {row.seq - 1} are missing"
                )
                entry_problems.append(Problem("missing_entries", f"{span} (deleted)", seq=expected))
            else:
                problem("bad_seq", row.seq, "is stored out of order")
        expected = row.seq + 1

        before_check = len(entry_problems)
        computed = _check_entry(row, origin, trusted, problem)
        tree.append(computed)

        fields = _fields_or_none(row)
        if row.kind == "key.rotated" and fields is not None:
            if len(entry_problems) > before_check:
                warnings.append(f"entry {row.seq}: a key rotation that does not verify is ignored")
            else:
                try:
                    trusted.add(str(fields.get("new_key", "")), first_seq=row.seq + 1)
                except CheckpointError as exc:
                    problem("bad_rotation", row.seq, f"names no usable new key: {exc.message}")
        if row.kind not in EVENT_KINDS:
            warnings.append(f"entry {row.seq}: unknown event kind {row.kind!r}")
        if row.kind == "purge.done" and fields is not None:
            before = fields.get("before")
            if isinstance(before, (int, float)) and not isinstance(before, bool):
                purges.append((row.seq, float(before)))

        stored = details_by_seq.pop(row.seq, None)
        outcome = _check_details(row, stored, problem)
        if outcome == "checked":
            details_checked += 1
        elif outcome == "erased":
            erased.append((row.seq, row.at))

    for seq, at in erased:
        if not any(p_seq > seq and at < before for p_seq, before in purges):
            problem(
                "erased_without_purge",
                seq,
                "its personal details were erased, but no later purge.done entry covers it",
            )
    for seq in sorted(details_by_seq):
        if seq not in seen_seqs:
            warnings.append(f"personal details are stored for entry {seq}, which is missing")

    checkpoint_problems, times = _check_checkpoints(
        origin, tree, expected, checkpoints, held_checkpoints, trusted, witness_keys
    )
    warnings.extend(_time_warnings(times, now, checkpoint_interval_s, bool(entries)))
    entry_problems.sort(key=lambda p: p.seq if p.seq is not None else -1)
    return VerifyReport(
        origin=origin,
        tree_size=tree.size,
        root=tree.root(),
        entries=len(entries),
        checkpoints=len(checkpoints) + len(held_checkpoints),
        details_checked=details_checked,
        details_erased=len(erased),
        keys=tuple(trusted.describe()),
        problems=tuple(entry_problems + checkpoint_problems),
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- entries


def _fields_or_none(row: EntryRow) -> dict[str, Any] | None:
    try:
        return row.public_fields()
    except ValueError:
        return None


_Report = Callable[[str, int, str], None]
"""``report(code, seq, message)`` records a problem with entry ``seq``."""


def _check_entry(row: EntryRow, origin: str, trusted: TrustedKeys, problem: _Report) -> bytes:
    """Check one entry row; returns the leaf hash the tree gets (recomputed if possible)."""
    stored_ok = isinstance(row.leaf_hash, bytes) and len(row.leaf_hash) == HASH_SIZE
    fields = _fields_or_none(row)
    if fields is None:
        problem("bad_fields", row.seq, "its public fields are not a JSON object")
        return row.leaf_hash if stored_ok else bytes(HASH_SIZE)
    try:
        if canonical_json(fields).decode("utf-8") != row.fields:
            problem("bad_fields", row.seq, "its public fields are not in canonical form (edited)")
        leaf = leaf_bytes(row.seq, row.kind, row.at, row.actor, fields, row.details_commitment)
    except CanonicalError as exc:
        problem("bad_fields", row.seq, f"its contents have no canonical form: {exc.message}")
        return row.leaf_hash if stored_ok else bytes(HASH_SIZE)
    computed = leaf_hash(leaf)

    if computed == row.leaf_hash:
        why = trusted.entry_problem(origin, computed, row.signature, row.seq)
        if why is not None:
            code = "unsigned_entry" if not row.signature else "bad_entry_signature"
            problem(code, row.seq, f"{why} (it was rewritten, leaf hash included)")
    elif (
        stored_ok and trusted.entry_problem(origin, row.leaf_hash, row.signature, row.seq) is None
    ):
        problem(
            "leaf_mismatch",
            row.seq,
            "its stored contents do not match its signed leaf hash: they were changed "
            "after it was written",
        )
    else:
        problem(
            "leaf_mismatch",
            row.seq,
            "its stored contents do not match its stored leaf hash, and its signature "
            "matches neither",
        )

    for name in INDEXED_FIELDS:
        column = getattr(row, name)
        if column != fields.get(name):
            problem(
                "index_mismatch",
                row.seq,
                f"its {name} column says {column!r} but the entry says {fields.get(name)!r}",
            )
    return computed


def _check_details(row: EntryRow, stored: DetailsRow | None, problem: _Report) -> str:
    """Check the details beside one entry: ``"none"``, ``"checked"``, ``"erased"`` or ``"bad"``."""
    commitment = row.details_commitment
    if commitment is None:
        if stored is not None:
            problem("details_uncommitted", row.seq, "has personal details it does not commit to")
            return "bad"
        return "none"
    if len(commitment) != HASH_SIZE:
        problem("bad_commitment", row.seq, "its details commitment is not a SHA-256 hash")
        return "bad"
    if stored is None:
        problem("details_missing", row.seq, "its personal details record was deleted")
        return "bad"
    if stored.body is None and stored.salt is None:
        return "erased"
    if stored.body is None or stored.salt is None:
        problem("details_mismatch", row.seq, "its personal details are half erased")
        return "bad"
    computed = hashlib.sha256(stored.salt + stored.body.encode("utf-8")).digest()
    if computed != commitment:
        problem(
            "details_mismatch",
            row.seq,
            "its personal details do not match the commitment in its leaf (they were changed)",
        )
        return "bad"
    try:
        json.loads(stored.body)
    except ValueError:
        problem("details_mismatch", row.seq, "its personal details are not JSON")
        return "bad"
    return "checked"


# --------------------------------------------------------------------------- checkpoints


def _open_checkpoint(
    note: str, trusted: TrustedKeys, witnesses: Sequence[WitnessKey] = ()
) -> Checkpoint | str:
    """The checkpoint, verified under a trusted key (one trusted since a rotation only if
    the checkpoint covers the rotation) or cosigned by a trusted witness, or why not."""
    unknown = "there is no trusted key to check it with"
    for key in trusted.keys:
        try:
            cp = verify_note(note, key)
            if cp.size < trusted.first_seq(key):  # signed before its rotation was on record
                unknown = (
                    f"it is signed by {key.name}+{key.key_id.hex()}, which is trusted only for "
                    f"trees of {trusted.first_seq(key)} entries or more (after its key.rotated)"
                )
                continue
            return cp
        except CheckpointError as exc:
            if exc.reason == "bad_signature":
                return (
                    f"its signature by {key.name}+{key.key_id.hex()} does not verify "
                    "(the note was altered)"
                )
            if exc.reason != "unknown_key":
                return f"it is malformed: {exc.message}"
            unknown = f"it is not signed by a trusted key ({exc.message})"
    if witnesses:
        try:
            if cosignatures(note, witnesses):
                return parse_checkpoint(parse_note(note).text)
        except CheckpointError as exc:
            return f"its witness cosignature does not verify: {exc.message}"
        unknown += "; nor cosigned by a trusted witness"
    return unknown


def _check_checkpoints(
    origin: str,
    tree: MerkleTree,
    next_seq: int,
    stored: Sequence[CheckpointRow],
    held: Sequence[str],
    trusted: TrustedKeys,
    witnesses: Sequence[WitnessKey] = (),
) -> tuple[list[Problem], list[float]]:
    problems: list[Problem] = []
    times: list[float] = []
    good_sizes: list[int] = [0]
    inconsistent: list[tuple[str, int | None, int]] = []
    items: list[tuple[str, int | None, str, int | None]] = [
        (f"checkpoint #{row.id}", row.id, row.note, row.tree_size) for row in stored
    ]
    items += [(f"held checkpoint {i + 1}", None, note, None) for i, note in enumerate(held)]

    for label, cid, note, column_size in items:
        opened = _open_checkpoint(note, trusted, witnesses if cid is None else ())
        if isinstance(opened, str):
            problems.append(
                Problem("checkpoint_signature", f"{label}: {opened}", checkpoint_id=cid)
            )
            continue
        cp = opened
        label = f"{label} (size {cp.size})"
        if cp.origin != origin:
            problems.append(
                Problem(
                    "checkpoint_origin",
                    f"{label} is for log {cp.origin!r}, not {origin!r}",
                    checkpoint_id=cid,
                )
            )
            continue
        if column_size is not None and column_size != cp.size:
            problems.append(
                Problem(
                    "checkpoint_row_mismatch",
                    f"{label}: its tree_size column says {column_size}",
                    checkpoint_id=cid,
                )
            )
        if cp.size > tree.size:
            if tree.size == next_seq:  # no gap: the end was cut off
                message = (
                    f"entries {tree.size} to {cp.size - 1} are missing: {label} covers "
                    f"{cp.size} entries but the log holds {tree.size} (it was truncated, "
                    "or rewritten and shortened: then earlier entries differ too)"
                )
                first_missing: int | None = tree.size
            else:
                message = f"{label} covers {cp.size} entries but the log holds {tree.size}"
                first_missing = None
            problems.append(Problem("truncated", message, seq=first_missing, checkpoint_id=cid))
            continue
        try:
            verify_consistency(
                cp.size, tree.size, cp.root, tree.root(), tree.consistency_proof(cp.size)
            )
        except ProofError:
            inconsistent.append((label, cid, cp.size))
            continue
        good_sizes.append(cp.size)
        at = checkpoint_time(cp)
        if at is not None:
            times.append(at)

    for label, cid, size in inconsistent:
        low = max(s for s in good_sizes if s < size)  # good_sizes starts with 0
        problems.append(
            Problem(
                "checkpoint_inconsistent",
                f"{label} is not consistent with the stored log: an entry from {low} to "
                f"{size - 1} differs from what was signed",
                checkpoint_id=cid,
            )
        )
    return problems, times


def _time_warnings(
    times: list[float], now: float | None, interval: float | None, has_entries: bool
) -> list[str]:
    if not interval or interval <= 0:
        return []
    warnings: list[str] = []
    if not times:
        if has_entries:
            warnings.append("the log has entries but no verifiable checkpoint")
        return warnings
    limit = 2 * interval + 5
    ordered = sorted(times)
    for earlier, later in pairwise(ordered):
        if later - earlier > limit:
            warnings.append(
                f"no checkpoint for {later - earlier:.0f} s after {_iso(earlier)} although one "
                f"is signed every {interval:g} s: the server was down, or checkpoints were "
                "removed"
            )
    if now is not None and now - ordered[-1] > limit:
        warnings.append(
            f"the newest checkpoint is {now - ordered[-1]:.0f} s old although one is signed "
            f"every {interval:g} s: the server is stopped, or newer checkpoints were removed"
        )
    return warnings


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


__all__ = ["Problem", "VerifyReport", "verify_log"]

"""Export bundles: ledger entries that anyone can verify offline, and their verifier.

A bundle is JSON Lines (each line RFC 8785 canonical JSON), made for an agent's access
request (GDPR Art. 15), the works council or a data-protection officer. Line 1 is the
header::

    {"checkpoint": "<signed note>", "entries": <count>, "format": "live.ledger.bundle/v1",
     "origin": "<log origin>", "scope": {...}, "tree_size": <N>, "verifier_key": "<key>"}

and each further line one entry::

    {"details": "<details JSON>" | null, "leaf": "<the leaf, canonical JSON text>",
     "proof": ["<base64 hash>", ...], "salt": "<base64>" | null, "seq": <seq>}

To check a bundle (``verify_bundle``, or by hand with any RFC 9162 / C2SP tooling):

1. verify the checkpoint note under the *published* verifier key (c2sp.org/signed-note)
   and read tree size N and root R from it (c2sp.org/tlog-checkpoint);
2. for each entry, ``SHA-256(0x00 || leaf)`` with the inclusion proof for index ``seq``
   in a tree of N leaves must give R (RFC 9162 §2.1.3.2), and the leaf's ``seq`` must be
   that index;
3. where details are included, ``SHA-256(salt || details)`` must equal the leaf's
   ``details_commitment``. Details are included whole or not at all (the commitment covers
   the whole object); after retention they no longer exist and are never in a bundle.

Someone holding an older checkpoint of the same log can also ask the server for a
consistency proof to it (``MerkleLedger.consistency_proof``) to see that the log was only
ever appended to.

``build_bundle`` and ``verify_bundle`` are pure; ``export_bundle`` gathers a bundle from an
open ledger.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest
from .canonical import canonical_json
from .checkpoint import CheckpointError, verify_note
from .entry import LedgerEntry
from .log import MerkleLedger
from .merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from .proofs import b64

BUNDLE_FORMAT = "live.ledger.bundle/v1"
MEDIA_TYPE = "application/jsonl"


class BundleError(BadRequest):
    """A bundle could not be built from the given parts."""

    code = "bad_bundle"


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One entry of a bundle: its leaf, its inclusion proof, and (optionally) its details."""

    seq: int
    leaf: bytes
    proof: tuple[bytes, ...]
    details_json: str | None = None
    details_salt: bytes | None = None

    @classmethod
    def of(
        cls, entry: LedgerEntry, proof: Sequence[bytes], *, include_details: bool
    ) -> BundleEntry:
        """From a read entry; details only if asked for and they still exist."""
        with_details = include_details and entry.details_json is not None
        return cls(
            seq=entry.seq,
            leaf=entry.leaf(),
            proof=tuple(proof),
            details_json=entry.details_json if with_details else None,
            details_salt=entry.details_salt if with_details else None,
        )


def build_bundle(
    *,
    verifier_key: str,
    checkpoint: str,
    entries: Sequence[BundleEntry],
    scope: Mapping[str, Any] | None = None,
) -> str:
    """The bundle text (module docstring). The result is checked with ``verify_bundle``
    before it is returned, so a bundle that would not verify is never handed out
    (``BundleError`` names the first problem)."""
    try:
        cp = verify_note(checkpoint, verifier_key)
    except CheckpointError as exc:
        raise BundleError(f"the checkpoint does not verify: {exc.message}") from exc
    header = {
        "format": BUNDLE_FORMAT,
        "origin": cp.origin,
        "verifier_key": verifier_key,
        "checkpoint": checkpoint,
        "tree_size": cp.size,
        "entries": len(entries),
        "scope": dict(scope or {}),
    }
    lines = [canonical_json(header)]
    for item in entries:
        lines.append(
            canonical_json(
                {
                    "seq": item.seq,
                    "leaf": item.leaf.decode("utf-8"),
                    "proof": [b64(h) for h in item.proof],
                    "details": item.details_json,
                    "salt": None if item.details_salt is None else b64(item.details_salt),
                }
            )
        )
    text = b"\n".join(lines).decode("utf-8") + "\n"
    report = verify_bundle(text, verifier_key)
    if not report.ok:
        raise BundleError(f"the bundle would not verify: {report.problems[0].message}")
    return text


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class BundleProblem:
    seq: int | None
    message: str


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    """An entry whose inclusion was proven: the leaf's contents, and the details if they
    were included and open the commitment."""

    seq: int
    kind: str
    at: float
    actor: str
    fields: dict[str, Any]
    details: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class BundleReport:
    ok: bool
    origin: str
    tree_size: int
    root: bytes
    verifier_key: str
    key_from_bundle: bool
    """True when no key was given and the bundle's own key was used: compare it with the
    key the log publishes, or the check proves nothing about who signed."""
    entries: tuple[VerifiedEntry, ...]
    problems: tuple[BundleProblem, ...]

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED ({len(self.problems)} problems): {self.problems[0].message}"
        note = " (with the key inside the bundle: compare it with the published one)"
        return (
            f"ok: {len(self.entries)} entries of {self.origin} proven in its tree of "
            f"{self.tree_size} entries{note if self.key_from_bundle else ''}"
        )


def verify_bundle(text: str, verifier_key: str | None = None) -> BundleReport:
    """Check a bundle offline (module docstring, steps 1-3); never raises for bad input.

    ``verifier_key`` should be the key the log publishes; without it the bundle's own key
    is used and ``key_from_bundle`` says so."""
    problems: list[BundleProblem] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = _json_object(lines[0] if lines else "")
    empty = BundleReport(False, "", 0, b"", verifier_key or "", verifier_key is None, (), ())
    if header is None or header.get("format") != BUNDLE_FORMAT:
        return _failed(empty, f"line 1 is not a {BUNDLE_FORMAT} header")
    key = verifier_key if verifier_key is not None else header.get("verifier_key")
    note = header.get("checkpoint")
    if not isinstance(key, str) or not isinstance(note, str):
        return _failed(empty, "the header has no verifier key or checkpoint")
    try:
        cp = verify_note(note, key)
    except CheckpointError as exc:
        return _failed(empty, f"the checkpoint does not verify: {exc.message}")
    base = BundleReport(False, cp.origin, cp.size, cp.root, key, verifier_key is None, (), ())
    if header.get("origin") != cp.origin or header.get("tree_size") != cp.size:
        problems.append(BundleProblem(None, "the header does not match its checkpoint"))
    if header.get("entries") != len(lines) - 1:
        problems.append(
            BundleProblem(
                None,
                f"the header announces {header.get('entries')} entries, the bundle has "
                f"{len(lines) - 1} (lines were removed or added)",
            )
        )
    verified: list[VerifiedEntry] = []
    seen: set[int] = set()
    for number, line in enumerate(lines[1:], start=2):
        outcome = _verify_line(line, number, cp.size, cp.root, seen)
        if isinstance(outcome, BundleProblem):
            problems.append(outcome)
        else:
            verified.append(outcome)
    return BundleReport(
        ok=not problems,
        origin=base.origin,
        tree_size=base.tree_size,
        root=base.root,
        verifier_key=key,
        key_from_bundle=verifier_key is None,
        entries=tuple(verified),
        problems=tuple(problems),
    )


def _failed(report: BundleReport, message: str) -> BundleReport:
    return BundleReport(
        False,
        report.origin,
        report.tree_size,
        report.root,
        report.verifier_key,
        report.key_from_bundle,
        (),
        (BundleProblem(None, message),),
    )


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _verify_line(
    line: str, number: int, size: int, root: bytes, seen: set[int]
) -> VerifiedEntry | BundleProblem:
    item = _json_object(line)
    seq = item.get("seq") if item is not None else None
    if item is None or isinstance(seq, bool) or not isinstance(seq, int):
        return BundleProblem(None, f"line {number} is not a bundle entry")
    where = f"entry {seq} (line {number})"
    if seq in seen:
        return BundleProblem(seq, f"{where} appears twice")
    seen.add(seq)
    leaf_text = item.get("leaf")
    proof_items = item.get("proof")
    if not isinstance(leaf_text, str) or not isinstance(proof_items, list):
        return BundleProblem(seq, f"{where} has no leaf or no proof")
    leaf = _json_object(leaf_text)
    if leaf is None or leaf.get("seq") != seq:
        return BundleProblem(seq, f"{where}: its leaf is not the leaf of entry {seq}")
    try:
        proof = [_hash(h) for h in proof_items]
        verify_inclusion(leaf_hash(leaf_text.encode("utf-8")), seq, size, proof, root)
    except ProofError as exc:
        return BundleProblem(seq, f"{where} is not in the signed tree: {exc.message}")
    details = None
    if item.get("details") is not None:
        opened = _open_details(item, leaf)
        if isinstance(opened, str):
            return BundleProblem(seq, f"{where}: {opened}")
        details = opened
    fields = leaf.get("fields")
    at = leaf.get("at")
    return VerifiedEntry(
        seq=seq,
        kind=str(leaf.get("kind")),
        at=float(at) if isinstance(at, (int, float)) else 0.0,
        actor=str(leaf.get("actor")),
        fields=fields if isinstance(fields, dict) else {},
        details=details,
    )


def _hash(value: object) -> bytes:
    if not isinstance(value, str):
        raise ProofError("a proof hash is not a string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ProofError("a proof hash is not base64") from None
    if len(raw) != HASH_SIZE:
        raise ProofError(f"a proof hash is {len(raw)} bytes")
    return raw


def _open_details(item: Mapping[str, Any], leaf: Mapping[str, Any]) -> dict[str, Any] | str:
    details_text, salt_text = item.get("details"), item.get("salt")
    commitment = leaf.get("details_commitment")
    if not isinstance(details_text, str) or not isinstance(salt_text, str):
        return "its details come without a salt"
    if not isinstance(commitment, str):
        return "it carries details but its leaf commits to none"
    try:
        salt = base64.b64decode(salt_text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return "its salt is not base64"
    if hashlib.sha256(salt + details_text.encode("utf-8")).hexdigest() != commitment:
        return "its details do not match the commitment in its leaf"
    details = _json_object(details_text)
    if details is None:
        return "its details are not a JSON object"
    return details


# --------------------------------------------------------------------------- from a ledger


async def export_bundle(
    ledger: MerkleLedger,
    *,
    agent_id: str | None = None,
    session_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    include_details: bool = False,
    scope: Mapping[str, Any] | None = None,
) -> str:
    """A bundle of the matching entries, proven against a checkpoint of the current tree.

    Recording the export (``export.made``, with who asked) is the caller's job: it comes
    after the checkpoint, so it is not part of the bundle itself."""
    note = await ledger.checkpoint()
    size = verify_note(note, ledger.verifier_key()).size
    entries = await ledger.entries(
        agent_id=agent_id, session_id=session_id, since=since, until=until, stop=size
    )
    items = [
        BundleEntry.of(
            entry,
            (await ledger.inclusion_proof(entry.seq, size)).hashes,
            include_details=include_details,
        )
        for entry in entries
    ]
    filters = {
        "agent_id": agent_id,
        "session_id": session_id,
        "since": since,
        "until": until,
        "details": include_details,
    }
    return build_bundle(
        verifier_key=ledger.verifier_key(),
        checkpoint=note,
        entries=items,
        scope={**{k: v for k, v in filters.items() if v is not None}, **(scope or {})},
    )

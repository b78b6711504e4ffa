"""Inclusion and consistency proofs as values that travel (API answers, export bundles).

JSON forms use standard base64 for hashes, as checkpoints do::

    {"seq": 5, "tree_size": 8, "leaf_hash": "...", "hashes": ["...", ...]}
    {"old_size": 4, "new_size": 8, "hashes": ["...", ...]}

``verify`` checks a proof against a root (from a verified checkpoint) with the RFC 9162
algorithms in ``merkle``; it raises ``ProofError`` when the proof does not hold.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .merkle import HASH_SIZE, ProofError, verify_consistency, verify_inclusion


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    """Strict base64 of one 32-byte hash; ``ProofError`` otherwise."""
    if not isinstance(text, str):
        raise ProofError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ProofError(f"{what} is not standard base64") from None
    if len(raw) != HASH_SIZE:
        raise ProofError(f"{what} is {len(raw)} bytes, expected {HASH_SIZE}")
    return raw


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer")
    return value


def _hashes(data: Mapping[str, Any]) -> tuple[bytes, ...]:
    items = data.get("hashes")
    if not isinstance(items, list):
        raise ProofError("hashes must be a list")
    return tuple(unb64(h, f"hashes[{i}]") for i, h in enumerate(items))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Leaf ``seq`` (hash ``leaf_hash``) is in the tree of ``tree_size`` leaves."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]

    def verify(self, root: bytes) -> None:
        """``ProofError`` unless the proof leads from the leaf to ``root``."""
        verify_inclusion(self.leaf_hash, self.seq, self.tree_size, self.hashes, root)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "tree_size": self.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "hashes": [b64(h) for h in self.hashes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        return cls(
            seq=_int(data, "seq"),
            tree_size=_int(data, "tree_size"),
            leaf_hash=unb64(data.get("leaf_hash"), "leaf_hash"),
            hashes=_hashes(data),
        )


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of ``new_size`` leaves extends the tree of ``old_size`` leaves."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        """``ProofError`` unless the proof links ``old_root`` to ``new_root``."""
        verify_consistency(self.old_size, self.new_size, old_root, new_root, self.hashes)

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": [b64(h) for h in self.hashes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsistencyProof:
        return cls(
            old_size=_int(data, "old_size"),
            new_size=_int(data, "new_size"),
            hashes=_hashes(data),
        )

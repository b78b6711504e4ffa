"""The signed checkpoint a disclosure or report was read against (named in every document,
so anyone can hold it against the export bundle of the same period)."""

from __future__ import annotations

from dataclasses import dataclass

from ..audit.checkpoint import verify_note
from ..audit.log import MerkleLedger
from ..audit.proofs import b64
from ..audit.timeline import checkpoint_time


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """The signed checkpoint a disclosure or report was read against."""

    origin: str
    size: int
    root: bytes
    note: str
    verifier_key: str
    signed_at: float | None

    @property
    def root_b64(self) -> str:
        """The root as the checkpoint's third line writes it."""
        return b64(self.root)

    @classmethod
    def of(cls, note: str, verifier_key: str) -> CheckpointInfo:
        """Parse and verify ``note`` (``CheckpointError`` if it does not verify)."""
        cp = verify_note(note, verifier_key)
        return cls(cp.origin, cp.size, cp.root, note, verifier_key, checkpoint_time(cp))


async def current_checkpoint(ledger: MerkleLedger) -> CheckpointInfo:
    """The latest checkpoint covering the whole log (signed now if there is none)."""
    return CheckpointInfo.of(await ledger.checkpoint(), ledger.verifier_key())

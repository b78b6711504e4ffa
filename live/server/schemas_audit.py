"""The JSON bodies of ``/api/audit/…``: checkpoints, proofs, sessions, verification."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, NonNegativeInt

from .bodies import RequestBody
from .schemas import BOUNDS, Open

MAX_NOTE_CHARS = 8192
B64 = Annotated[str, Field(json_schema_extra={"contentEncoding": "base64"})]
Note = Annotated[str, Field(min_length=1, max_length=MAX_NOTE_CHARS)]
Problem = Literal["key_changed", "bad_signature", "origin_changed", "shrunk", "inconsistent"]
"""What an agent's page may report (web/agent/ledger-check.js): the verifier key differs from
the one the page pinned, the checkpoint is not signed by the served key, it is of another log,
the served tree is smaller than the kept one, the consistency proof does not link them."""


class Witnessed(BaseModel):
    witness: str
    witness_key: str
    tree_size: NonNegativeInt
    timestamp: NonNegativeInt


class Checkpoint(BaseModel):
    checkpoint: str = Field(
        description="C2SP signed note, with the cosignature lines (c2sp.org/tlog-cosignature) "
        "of witnesses that cosigned it."
    )
    verifier_key: str
    origin: str
    tree_size: NonNegativeInt
    root: B64
    witnesses: list[Witnessed]


class CosignatureIn(RequestBody):
    error_code = "bad_cosignature"

    checkpoint: Annotated[str, Field(min_length=1)]
    cosignature: Annotated[str, Field(min_length=1)]
    witness_key: Annotated[str, Field(min_length=1)]


class Cosigned(BaseModel):
    witness: str
    tree_size: NonNegativeInt
    timestamp: NonNegativeInt


class InclusionProof(Open):
    seq: NonNegativeInt
    tree_size: NonNegativeInt
    leaf_hash: B64
    hashes: list[B64]
    leaf: str
    checkpoint: str | None = Field(default=None, description="Without `size`: the checkpoint used.")


class ConsistencyProof(Open):
    old_size: NonNegativeInt
    new_size: NonNegativeInt
    hashes: list[B64]
    checkpoint: str | None = Field(default=None, description="Without `to`: the checkpoint used.")


class InconsistencyReport(RequestBody):
    error_code = "bad_checkpoint"
    error_codes: ClassVar[dict[str, str]] = {"problem": "bad_problem"}

    problem: Problem
    kept: Note | None = Field(
        default=None, description="The C2SP signed note the page kept (null on a first visit)."
    )
    served: Note = Field(description="The C2SP signed note served now.")


class Recorded(BaseModel):
    recorded: NonNegativeInt


class ListenRecord(Open):
    session_id: str
    call_id: str | None
    agent_id: str | None
    started_seq: NonNegativeInt
    started_at: float
    started_local: str = Field(json_schema_extra={"format": "date-time"})
    purpose: str | None
    legs: list[str]
    listener_id: str | None = Field(description="A personal detail: null once erased.")
    listener_name: str | None = Field(description="A personal detail: null once erased.")
    listener_role: str | None
    policy_version: str | None
    team: str | None
    node_id: str | None
    ended_seq: int | None
    ended_at: float | None
    duration_s: float | None
    end_reason: str | None
    dropped_packets: int | None
    first_packet_at: float | None
    last_packet_at: float | None
    heard_s: float | None
    ended_after: float | None = Field(description=BOUNDS)
    ended_before: float | None = Field(description=BOUNDS)


class Sessions(BaseModel):
    sessions: list[ListenRecord]
    count: NonNegativeInt
    timezone: str


class LedgerEntryView(BaseModel):
    seq: NonNegativeInt
    kind: str
    at: float
    at_local: str = Field(description="`at` in the asked time zone, ISO 8601.")
    actor: str = Field(description="Who acted: a user id, or `system`.")
    agent_id: str | None
    details_erased: bool = Field(description="Retention erased the entry's personal details.")
    fields: dict[str, object] = Field(description="Every field still held.")


class Entries(BaseModel):
    entries: list[LedgerEntryView]
    next_before: NonNegativeInt | None = Field(
        description="Pass as `before` for the next (older) page; `null`: there is none."
    )
    tree_size: NonNegativeInt
    kinds: list[str] = Field(description="Every entry kind, for a filter.")
    timezone: str


class VerifyProblem(Open):
    code: str
    message: str
    seq: int | None
    checkpoint_id: int | None


class Verified(Open):
    ok: bool
    origin: str
    tree_size: NonNegativeInt
    root: str = Field(description="Hex.")
    entries: NonNegativeInt
    checkpoints: NonNegativeInt
    details_checked: NonNegativeInt
    details_erased: NonNegativeInt
    first_bad_seq: int | None
    keys: list[str]
    problems: list[VerifyProblem]
    warnings: list[str]
    verifier_key: str

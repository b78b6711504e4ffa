"""An agent's disclosure: every listen session on their calls, as people read it.

COMPLIANCE.md, "Disclosure": per agent, every listen session on their calls with date, time,
duration, legs heard, purpose, the listener (name or role, as the policy says) and the policy
version (GDPR Art. 15; EU Court C-579/21). The machine form with proofs is the export bundle
(``live.audit.export``); the forms built from a ``Disclosure`` (``csvfiles``,
``disclosure_pdf``) are for people and name the signed checkpoint they were read against.

``build_disclosure`` is pure; ``collect_disclosure`` reads the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..audit.log import MerkleLedger
from ..policy.listener import RoleOf, ShownListener, shown_listener
from .checkpoint import CheckpointInfo, current_checkpoint
from .sessions import ListenRecord, join_sessions


@dataclass(frozen=True, slots=True)
class DisclosureRow:
    """One session as a person reads it: the listener already reduced to name or role."""

    record: ListenRecord
    listener: str
    listener_is_role: bool


@dataclass(frozen=True, slots=True)
class Disclosure:
    agent_id: str
    since: float | None
    until: float | None
    rows: tuple[DisclosureRow, ...]
    checkpoint: CheckpointInfo
    generated_at: float
    listener_names: bool
    agent_name: str | None = None
    """The agent's display name where the user store knows it (the documents' titles)."""

    @property
    def agent_shown(self) -> str:
        """``Alex Agent (agent-1)``, or the agent id alone when no name is known."""
        if self.agent_name and self.agent_name != self.agent_id:
            return f"{self.agent_name} ({self.agent_id})"
        return self.agent_id


def listener_of(record: ListenRecord, *, names: bool, role_of: RoleOf) -> ShownListener:
    """What the agent is shown as the listener of ``record`` (``shown_listener``)."""
    return shown_listener(
        names=names,
        display_name=record.listener_name,
        user_id=record.listener_id,
        role=record.listener_role,
        role_of=role_of,
    )


def build_disclosure(
    agent_id: str,
    records: Iterable[ListenRecord],
    checkpoint: CheckpointInfo,
    *,
    since: float | None,
    until: float | None,
    listener_names: bool,
    role_of: RoleOf,
    generated_at: float,
    agent_name: str | None = None,
) -> Disclosure:
    """The disclosure of ``agent_id`` from already joined sessions (pure)."""
    rows = []
    for record in records:
        if record.agent_id != agent_id:
            continue
        shown = listener_of(record, names=listener_names, role_of=role_of)
        rows.append(DisclosureRow(record, shown.text, shown.is_role))
    return Disclosure(
        agent_id,
        since,
        until,
        tuple(rows),
        checkpoint,
        generated_at,
        listener_names,
        agent_name,
    )


async def collect_disclosure(
    ledger: MerkleLedger,
    agent_id: str,
    *,
    since: float | None,
    until: float | None,
    listener_names: bool,
    role_of: RoleOf,
    generated_at: float,
    agent_name: str | None = None,
) -> Disclosure:
    """Read the sessions of ``agent_id`` started in ``[since, until)`` up to the current
    checkpoint, and build the disclosure."""
    checkpoint = await current_checkpoint(ledger)
    started = await ledger.entries(
        kind="listen.started", agent_id=agent_id, since=since, until=until, stop=checkpoint.size
    )
    ended = await ledger.entries(
        kind="listen.ended", agent_id=agent_id, since=since, stop=checkpoint.size
    )
    return build_disclosure(
        agent_id,
        join_sessions([*started, *ended]),
        checkpoint,
        since=since,
        until=until,
        listener_names=listener_names,
        role_of=role_of,
        generated_at=generated_at,
        agent_name=agent_name,
    )

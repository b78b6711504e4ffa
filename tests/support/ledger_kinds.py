"""One ledger entry of every kind, as the server writes them, for tests of the pages that
list entries (``GET /api/audit/entries``, the audit page)."""

from __future__ import annotations

from typing import Any

from live.audit.events import EVENT_KINDS

# 2026-03-02 09:00:00 UTC
T0 = 1_772_442_000.0

SESSION = {"session_id": "ls_kinds", "call_id": "CA-kinds", "agent_id": "agent-1", "node_id": "node-x"}

EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "listen.started": (
        "sup",
        {
            **SESSION,
            "user_id": "sup",
            "display_name": "Sam Supervisor",
            "purpose": "quality",
            "legs": ["agent", "caller"],
            "started_at": T0,
            "policy_version": "bv-1",
            "role": "supervisor",
        },
    ),
    "leg.muted": ("system", {**SESSION, "leg": "caller", "reason": "pci"}),
    "leg.unmuted": ("system", {**SESSION, "leg": "caller", "reason": "pci"}),
    "listen.ended": (
        "system",
        {**SESSION, "reason": "stopped", "ended_at": T0 + 95, "duration_s": 95.0},
    ),
    "listen.refused": (
        "sup2",
        {
            **SESSION,
            "session_id": "ls_refused",
            "user_id": "sup2",
            "purpose": "training",
            "reason": "outside the hours of the policy",
            "code": "outside_hours",
            "policy_version": "bv-1",
            "role": "supervisor",
        },
    ),
    "notice.delivered": (
        "system",
        {**SESSION, "notice_id": "n_kinds", "mode": "after_call", "channel": "socket", "policy_version": "bv-1"},
    ),
    "notice.seen": ("agent-1", {"notice_id": "n_kinds", "agent_id": "agent-1", "seen_at": T0 + 200}),
    "policy.changed": (
        "admin",
        {"version": "bv-2", "previous_version": "bv-1", "sha256": "ab" * 32, "role": "admin"},
    ),
    "export.made": (
        "auditor",
        {
            "export_id": "ex_kinds",
            "format": "pdf",
            "scope": "agent",
            "agent_id": "agent-1",
            "entries": 2,
            "tree_size": 9,
            "role": "auditor",
        },
    ),
    "purge.done": ("system", {"before": T0 - 86_400 * 90, "erased": 3, "retention_days": 90}),
    "consent.changed": (
        "system",
        {"call_id": "CA-kinds", "agent_id": "agent-1", "consent": "revoked", "source": "ivr"},
    ),
    "key.rotated": ("system", {"old_key": "live+0123abcd+AAAA", "new_key": "live+4567ef01+BBBB"}),
    "pci.paused": ("system", {"call_id": "CA-kinds", "agent_id": "agent-1"}),
    "pci.resumed": ("system", {"call_id": "CA-kinds", "agent_id": "agent-1"}),
    "checkpoint.inconsistent": (
        "agent-1",
        {"agent_id": "agent-1", "problem": "shrunk", "kept_size": 12, "served_size": 9},
    ),
}
assert set(EXAMPLES) == set(EVENT_KINDS), set(EVENT_KINDS) ^ set(EXAMPLES)


async def seed_every_kind(ledger: Any, at: float = T0) -> dict[str, int]:
    """Append one entry of every kind, a second apart from ``at``; their seqs by kind."""
    seqs = {}
    for n, (kind, (actor, fields)) in enumerate(EXAMPLES.items()):
        seqs[kind] = await ledger.append(kind, actor=actor, at=at + n, **fields)
    return seqs

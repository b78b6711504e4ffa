"""Retention: personal details past the policy's period are erased, the log still verifies."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.server import running_server


async def test_retention_erases_old_personal_details_and_log_verifies(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        node = server.state.node
        days = node.policy.current().retention_days
        now = time.time()
        old = now - (days + 1) * 86400
        for at, session in ((old, "ls_old"), (now - 60, "ls_new")):
            await node.ledger.append(
                "listen.started", actor="sup", at=at, session_id=session, call_id="CA1",
                agent_id="agent-1", user_id="sup", display_name="Sam Supervisor",
                purpose="quality", legs=["agent"], node_id="n", started_at=at,
            )
        checkpoint_before = await node.ledger.checkpoint()
        assert await node.housekeeping.apply_retention(now) == 1
        old_entry = (await node.ledger.entries(session_id="ls_old"))[0]
        new_entry = (await node.ledger.entries(session_id="ls_new"))[0]
        assert "display_name" not in old_entry.fields and old_entry.fields["agent_id"] == "agent-1"
        assert new_entry.fields["display_name"] == "Sam Supervisor"
        purges = await node.ledger.entries(kind="purge.done")
        assert len(purges) == 1 and purges[0].fields["erased"] == 1
        assert purges[0].fields["retention_days"] == days
        report = await node.ledger.verify()
        assert report.ok, report
        assert checkpoint_before  # the older checkpoint was signed before the purge
        assert await node.housekeeping.apply_retention(now) == 0  # nothing left to erase

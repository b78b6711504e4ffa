"""``POST /api/audit/inconsistency``: what an agent's page reports when the log does not
extend the checkpoint it kept — validated, logged and put on record for auditors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.audit.checkpoint import CheckpointSigner
from tests.support.server import RunningServer, running_server

PATH = "/api/audit/inconsistency"


async def post(server: RunningServer, who: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.tokens[who]}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}{PATH}", json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_an_agent_reports_and_auditors_find_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_server(tmp_path / "data") as server:
        ledger = server.state.node.ledger
        served = await ledger.checkpoint()  # type: ignore[attr-defined]
        old = CheckpointSigner.generate("live.ledger/old").sign("live.ledger/old", 7, b"\x01" * 32)
        status, body = await post(server, "agent", {"problem": "key_changed", "kept": old, "served": served})
        assert status == 202, body
        [entry] = await ledger.entries(kind="checkpoint.inconsistent")
        assert entry.seq == body["recorded"]
        fields = entry.public_fields
        assert (fields["agent_id"], fields["problem"], fields["kept_size"]) == ("agent", "key_changed", 7)
        assert fields["kept_checkpoint"] == old and fields["served_checkpoint"] == served
        assert "reports the ledger inconsistent" in caplog.text
        # A first visit has nothing kept.
        status, _ = await post(server, "agent", {"problem": "bad_signature", "kept": None, "served": served})
        assert status == 202


async def test_bad_reports_and_other_roles_are_refused(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        served = await server.state.node.ledger.checkpoint()  # type: ignore[attr-defined]
        cases = [
            ({"problem": "bored", "kept": served, "served": served}, "bad_problem"),
            ({"problem": "inconsistent", "kept": "not a note", "served": served}, "bad_checkpoint"),
            ({"problem": "inconsistent", "kept": served}, "bad_checkpoint"),
            ({"problem": "inconsistent", "kept": served, "served": "x" * 9000}, "bad_checkpoint"),
        ]
        for body, code in cases:
            status, answer = await post(server, "agent", body)
            assert (status, answer["error"]["code"]) == (400, code), body
        for who in ("auditor", "sup", "admin"):
            status, answer = await post(server, who, {"problem": "inconsistent", "kept": served, "served": served})
            assert (status, answer["error"]["code"]) == (403, "role_forbidden"), who
        assert await server.state.node.ledger.entries(kind="checkpoint.inconsistent") == []

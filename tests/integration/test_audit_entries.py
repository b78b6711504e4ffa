"""``GET /api/audit/entries`` on a real server: every kind listed, filters, pages, who may."""

from __future__ import annotations

from pathlib import Path

from live.audit.events import EVENT_KINDS
from tests.integration.test_audit_api import get
from tests.support.ledger_kinds import seed_every_kind
from tests.support.server import running_server


async def test_only_auditors_and_admins_list_entries(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        for who, status in {"sup": 403, "sup2": 403, "agent": 403, "auditor": 200, "admin": 200}.items():
            got, body, _ = await get(server, "/api/audit/entries", who)
            assert got == status, (who, body)
            if status == 403:
                assert body["error"]["code"] == "role_forbidden"
        got, body, _ = await get(server, "/api/audit/entries", None)
        assert (got, body["error"]["code"]) == (401, "signed_out")


async def test_every_kind_is_listed_newest_first_with_its_fields(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        seqs = await seed_every_kind(server.state.node.ledger)
        status, body, _ = await get(server, "/api/audit/entries?limit=500", "auditor")
        assert status == 200
        listed = body["entries"]
        assert [e["seq"] for e in listed] == list(range(body["tree_size"] - 1, -1, -1))
        by_seq = {e["seq"]: e for e in listed}
        assert {by_seq[s]["kind"] for s in seqs.values()} == set(EVENT_KINDS)
        assert body["kinds"] == sorted(EVENT_KINDS) and body["next_before"] is None
        export = by_seq[seqs["export.made"]]
        assert export["actor"] == "auditor" and export["agent_id"] == "agent-1"
        assert export["fields"]["format"] == "pdf"
        refused = by_seq[seqs["listen.refused"]]
        assert refused["fields"]["code"] == "outside_hours" and refused["actor"] == "sup2"


async def test_filters_and_pages(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        seqs = await seed_every_kind(server.state.node.ledger)

        async def listed(query: str) -> list[int]:
            status, body, _ = await get(server, f"/api/audit/entries?{query}", "admin")
            assert status == 200, body
            return [e["seq"] for e in body["entries"]]

        assert await listed("kind=purge.done") == [seqs["purge.done"]]
        assert await listed("actor=sup2") == [seqs["listen.refused"]]
        assert await listed("kind=leg.muted&agent=agent-1") == [seqs["leg.muted"]]
        assert await listed("kind=leg.muted&agent=agent-2") == []
        # The seeded day (UTC) holds every seeded entry; the day before holds none of them.
        day = await listed("from=2026-03-02&to=2026-03-02&limit=500")
        assert sorted(day) == sorted(seqs.values())
        assert await listed("from=2026-03-01&to=2026-03-01") == []

        # Pages of three, each older than the last, together the whole log once.
        pages: list[int] = []
        before = ""
        while True:
            status, body, _ = await get(server, f"/api/audit/entries?limit=3{before}", "auditor")
            assert status == 200 and len(body["entries"]) <= 3
            pages += [e["seq"] for e in body["entries"]]
            if body["next_before"] is None:
                break
            before = f"&before={body['next_before']}"
        assert pages == list(range(body["tree_size"] - 1, -1, -1))


async def test_bad_parameters_are_clear_errors(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        cases = {
            "kind=listen.everything": "bad_kind",
            "limit=0": "bad_limit",
            "limit=501": "bad_limit",
            "limit=ten": "bad_limit",
            "before=-1": "bad_seq",
            "from=yesterday": "bad_date",
            "tz=Mars/Olympus": "bad_timezone",
        }
        for query, code in cases.items():
            status, body, _ = await get(server, f"/api/audit/entries?{query}", "auditor")
            assert (status, body["error"]["code"]) == (400, code), (query, body)

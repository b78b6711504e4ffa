"""``/api/audit/…`` on a real server: who may see what, proofs that verify, exports on record."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import tests.support.server as support
from live.audit.checkpoint import verify_note
from live.audit.export import verify_bundle
from live.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from live.server import audit
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

# 2026-03-02 09:00:00 UTC
T0 = 1_772_442_000.0


@pytest.fixture(autouse=True)
def audit_routes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Serve ``live.server.audit`` even where ``create_app`` does not add it (yet)."""
    original = support.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        paths = {getattr(r, "canonical", None) for r in app.router.resources()}
        if "/api/audit/checkpoint" not in paths:
            audit.setup(app)
        return app

    monkeypatch.setattr(support, "create_app", create_app)
    yield


async def get(
    server: RunningServer, path: str, who: str | None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {server.tokens[who]}"} if who else {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}{path}", headers=headers) as response,
    ):
        if response.content_type == "application/json":
            body: Any = await response.json()
        elif response.content_type == "application/pdf":
            body = await response.read()
        else:
            body = await response.text()
        return response.status, body, response


async def seed(server: RunningServer) -> None:
    """Four listens: sup on "agent" (2, one running), sup2 on "agent" and on "agent-2"."""
    ledger = server.state.node.ledger
    plan = [
        (1, "agent", "sup", "Sam Supervisor", T0, 125.0),
        (2, "agent-2", "sup", "Sam Supervisor", T0 + 60, 30.0),
        (3, "agent", "sup2", "Kim Supervisor", T0 + 86_400, 300.0),
        (4, "agent", "sup", "Sam Supervisor", T0 + 2 * 86_400, None),
    ]
    for n, agent, user, name, at, duration in plan:
        await ledger.append(
            "listen.started",
            actor=user,
            at=at,
            session_id=f"ls_{n}",
            call_id=f"CA{n}",
            agent_id=agent,
            user_id=user,
            display_name=name,
            purpose="quality",
            legs=["agent", "caller"],
            node_id="node-x",
            started_at=at,
            policy_version="bv-1",
        )
        if duration is not None:
            await ledger.append(
                "listen.ended",
                actor="system",
                at=at + duration,
                session_id=f"ls_{n}",
                call_id=f"CA{n}",
                agent_id=agent,
                reason="stopped",
                ended_at=at + duration,
                duration_s=duration,
            )


async def seq_of(server: RunningServer, agent: str) -> int:
    entries = await server.state.node.ledger.entries(kind="listen.started", agent_id=agent)
    return entries[0].seq


async def test_who_may_see_what(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        own, other = await seq_of(server, "agent"), await seq_of(server, "agent-2")
        expected = {
            "/api/audit/checkpoint": {"sup": 403, "agent": 200, "auditor": 200, "admin": 200},
            f"/api/audit/proof/inclusion?seq={own}": {"sup": 403, "agent": 200, "auditor": 200},
            f"/api/audit/proof/inclusion?seq={other}": {"agent": 403, "auditor": 200, "admin": 200},
            "/api/audit/proof/consistency?from=1": {"sup": 403, "agent": 200, "auditor": 200},
            "/api/audit/sessions": {"sup": 403, "agent": 403, "auditor": 200, "admin": 200},
            "/api/audit/verify": {"sup": 403, "sup2": 403, "agent": 403, "auditor": 200},
            "/api/audit/export?agent=agent&format=csv": {
                "sup": 403,
                "agent": 200,
                "auditor": 200,
                "admin": 200,
            },
            "/api/audit/export?format=csv": {"agent": 200, "auditor": 400},
            "/api/audit/export?agent=agent-2&format=csv": {
                "agent": 403,
                "sup2": 403,
                "auditor": 200,
            },
            # The built-in policy discloses listener names to agents.
            "/api/audit/export?format=csv&listener_names=true": {"agent": 200},
            "/api/audit/report?month=2026-03&format=csv": {
                "sup": 403,
                "agent": 403,
                "auditor": 200,
                "admin": 200,
            },
        }
        for path, by_role in expected.items():
            for who, status in by_role.items():
                got, body, _ = await get(server, path, who)
                assert got == status, (path, who, got, body)
                if status == 403:
                    assert body["error"]["code"] in (
                        "role_forbidden",
                        "not_your_entry",
                        "not_your_export",
                    )
            got, body, _ = await get(server, path, None)
            assert got == 401 and body["error"]["code"] == "signed_out"


async def test_proofs_verify_against_the_signed_checkpoint(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        status, first, _ = await get(server, "/api/audit/checkpoint", "agent")
        assert status == 200
        key = first["verifier_key"]
        old = verify_note(first["checkpoint"], key)
        assert (old.size, base64.b64encode(old.root).decode()) == (
            first["tree_size"],
            first["root"],
        )

        # The agent proves an entry about themself, against a checkpoint the answer carries...
        seq = await seq_of(server, "agent")
        status, proof, _ = await get(server, f"/api/audit/proof/inclusion?seq={seq}", "agent")
        assert status == 200
        signed = verify_note(proof["checkpoint"], key)
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert proof["tree_size"] == signed.size and proof["seq"] == seq
        assert '"agent_id":"agent"' in proof["leaf"]
        verify_inclusion(leaf_hash(proof["leaf"].encode()), seq, signed.size, hashes, signed.root)
        assert base64.b64decode(proof["leaf_hash"]) == leaf_hash(proof["leaf"].encode())

        # ... and against the checkpoint they kept earlier.
        status, kept, _ = await get(
            server, f"/api/audit/proof/inclusion?seq={seq}&size={old.size}", "agent"
        )
        assert status == 200 and "checkpoint" not in kept
        verify_inclusion(
            leaf_hash(kept["leaf"].encode()),
            seq,
            old.size,
            [base64.b64decode(h) for h in kept["hashes"]],
            old.root,
        )

        # The log grows; the old checkpoint is consistent with the new one.
        await seed_more(server)
        status, body, _ = await get(
            server, f"/api/audit/proof/consistency?from={old.size}", "agent"
        )
        assert status == 200
        new = verify_note(body["checkpoint"], key)
        assert new.size > old.size and body["old_size"] == old.size and body["new_size"] == new.size
        verify_consistency(
            old.size, new.size, old.root, new.root, [base64.b64decode(h) for h in body["hashes"]]
        )
        status, explicit, _ = await get(
            server, f"/api/audit/proof/consistency?from={old.size}&to={new.size}", "auditor"
        )
        assert status == 200 and explicit["hashes"] == body["hashes"]


async def seed_more(server: RunningServer) -> None:
    for n in range(3):
        await server.state.node.ledger.append(
            "listen.refused",
            actor="sup2",
            at=T0 + n,
            call_id="CA9",
            agent_id="agent",
            purpose="quality",
            reason="outside your teams",
            code="outside_team",
            user_id="sup2",
        )


async def test_bad_parameters_are_400_with_a_code(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        cases = {
            "/api/audit/proof/inclusion": "bad_seq",
            "/api/audit/proof/inclusion?seq=abc": "bad_seq",
            "/api/audit/proof/inclusion?seq=-1": "bad_seq",
            "/api/audit/proof/inclusion?seq=9801008703254697977": "bad_seq",  # over 64 bits
            "/api/audit/proof/inclusion?seq=1&size=x": "bad_size",
            "/api/audit/proof/inclusion?seq=5&size=3": "out_of_range",
            "/api/audit/proof/consistency": "bad_size",
            "/api/audit/proof/consistency?from=2&to=999": "out_of_range",
            "/api/audit/export?agent=agent&format=xml": "bad_format",
            "/api/audit/export?format=csv": "missing_agent",
            "/api/audit/export?agent=agent&format=csv&from=2026-13-01": "bad_date",
            "/api/audit/export?agent=agent&format=csv&from=2026-03-05&to=2026-03-01": "bad_date",
            "/api/audit/export?agent=agent&format=pdf&tz=Mars/Base": "bad_timezone",
            "/api/audit/export?agent=agent&format=pdf&lang=fr": "bad_lang",
            "/api/audit/export?agent=agent&format=csv&listener_names=maybe": "bad_flag",
            "/api/audit/sessions?from=tomorrow": "bad_date",
            "/api/audit/report?month=2026-3": "bad_month",
            "/api/audit/report": "bad_month",
            "/api/audit/report?month=2026-03&format=jsonl": "bad_format",
        }
        for path, code in cases.items():
            status, body, _ = await get(server, path, "auditor")
            assert (status, body["error"]["code"]) == (400, code), (path, body)
        status, body, _ = await get(server, "/api/audit/proof/inclusion?seq=9999", "auditor")
        assert (status, body["error"]["code"]) == (404, "unknown_entry")
        made = await server.state.node.ledger.entries(kind="export.made")
        assert made == []  # refused requests export nothing


async def test_sessions_by_agent_supervisor_and_dates(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)

        async def ids(query: str) -> list[str]:
            status, body, _ = await get(server, f"/api/audit/sessions{query}", "auditor")
            assert status == 200, body
            return [s["session_id"] for s in body["sessions"]]

        assert await ids("") == ["ls_4", "ls_3", "ls_2", "ls_1"]  # newest first
        assert await ids("?agent=agent") == ["ls_4", "ls_3", "ls_1"]
        assert await ids("?supervisor=sup2") == ["ls_3"]
        assert await ids("?agent=agent&supervisor=sup") == ["ls_4", "ls_1"]
        assert await ids("?from=2026-03-03") == ["ls_4", "ls_3"]
        assert await ids("?from=2026-03-02&to=2026-03-02") == ["ls_2", "ls_1"]
        assert await ids("?from=2026-03-02T10:00:30%2B01:00") == ["ls_4", "ls_3", "ls_2"]
        assert await ids("?from=2026-03-02T10:00:30&tz=Europe/Berlin") == ["ls_4", "ls_3", "ls_2"]
        _, body, _ = await get(server, "/api/audit/sessions?agent=agent&tz=Europe/Berlin", "admin")
        newest, middle, oldest = body["sessions"]
        assert oldest["started_local"] == "2026-03-02T10:00:00+01:00"
        assert (oldest["duration_s"], oldest["end_reason"], oldest["listener_id"]) == (
            125.0,
            "stopped",
            "sup",
        )
        assert newest["ended_seq"] is None and newest["duration_s"] is None
        assert middle["listener_name"] == "Kim Supervisor" and middle["policy_version"] == "bv-1"


async def test_exports_for_agents_and_auditors_are_recorded(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        ledger = server.state.node.ledger

        # The agent page's link: the agent's own PDF.
        status, pdf, response = await get(
            server, "/api/audit/export?agent=agent&format=pdf", "agent"
        )
        assert status == 200 and pdf.startswith(b"%PDF")
        assert (
            response.headers["Content-Disposition"]
            == 'attachment; filename="live-listens-agent.pdf"'
        )
        path = tmp_path / "agent.pdf"
        path.write_bytes(pdf)
        pdftotext = await asyncio.create_subprocess_exec(
            "pdftotext", "-layout", str(path), "-", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await pdftotext.communicate()
        # The built-in policy discloses listener names ([disclosure] listener_names = true).
        assert "3 listen sessions" in out.decode() and "Sam Supervisor" in out.decode()
        # The agent by their display name from the user store; purposes as the console says.
        assert "Listening in on the calls of Alex Agent (agent)" in out.decode()
        assert "Quality assurance" in out.decode()

        status, body, response = await get(
            server, "/api/audit/export?format=csv&tz=Europe/Berlin", "agent"
        )
        assert status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(body)))
        assert [(r["session_id"], r["time"]) for r in rows] == [
            ("ls_1", "10:00:00"),
            ("ls_3", "10:00:00"),
            ("ls_4", "10:00:00"),
        ]
        assert all(r["listener"].endswith("Supervisor") for r in rows), rows

        status, bundle, response = await get(
            server, "/api/audit/export?agent=agent-2&format=jsonl&listener_names=true", "auditor"
        )
        assert status == 200 and response.content_type == "application/jsonl"
        report = verify_bundle(bundle, ledger.verifier_key())
        assert report.ok, report.problems
        assert [e.kind for e in report.entries] == ["listen.started", "listen.ended"]
        assert (
            report.entries[0].details is not None
            and report.entries[0].details["display_name"] == "Sam Supervisor"
        )

        made = await ledger.entries(kind="export.made")
        assert [
            (
                e.actor,
                e.fields["role"],
                e.fields["format"],
                e.fields["agent_id"],
                e.fields["entries"],
            )
            for e in made
        ] == [
            ("agent", "agent", "pdf", "agent", 3),
            ("agent", "agent", "csv", "agent", 3),
            ("auditor", "auditor", "jsonl", "agent-2", 2),
        ]
        assert all(e.public_actor == "user" for e in made)  # who exported is a personal detail


async def test_report_for_the_works_council(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        await seed_more(server)
        status, body, response = await get(
            server, "/api/audit/report?month=2026-03&format=csv", "auditor"
        )
        assert status == 200 and response.content_type == "text/csv"
        assert (
            response.headers["Content-Disposition"]
            == 'attachment; filename="live-report-2026-03.csv"'
        )
        rows = {r["team"]: r for r in csv.DictReader(io.StringIO(body))}
        assert list(rows) == ["all", "total"]  # the built-in policy names no teams
        assert (rows["total"]["listens"], rows["total"]["running"], rows["total"]["refused"]) == (
            "4",
            "1",
            "3",
        )
        assert rows["total"]["minutes"] == "7.6" and rows["total"]["refused:outside_team"] == "3"

        status, pdf, response = await get(
            server, "/api/audit/report?month=2026-03&lang=de", "admin"
        )
        assert (
            status == 200 and response.content_type == "application/pdf" and pdf.startswith(b"%PDF")
        )
        made = await server.state.node.ledger.entries(kind="export.made")
        assert [(e.fields["scope"], e.fields["format"], e.fields["entries"]) for e in made] == [
            ("team-report", "csv", 7),
            ("team-report", "pdf", 7),
        ]


async def test_verify_names_the_first_bad_entry(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        await seed(server)
        status, body, _ = await get(server, "/api/audit/verify", "auditor")
        assert status == 200 and body["ok"] is True and body["first_bad_seq"] is None
        assert body["verifier_key"] == server.state.node.ledger.verifier_key()
        seq = await seq_of(server, "agent-2")
        with sqlite3.connect(server.settings.ledger_path) as db:
            db.execute(
                "UPDATE ledger_entries SET fields = replace(fields, 'quality', 'qualitx') WHERE seq = ?",
                (seq,),
            )
        status, body, _ = await get(server, "/api/audit/verify", "admin")
        assert status == 200 and body["ok"] is False and body["first_bad_seq"] == seq
        assert any(f"entry {seq}:" in p["message"] for p in body["problems"])


async def test_a_real_listen_shows_up_in_the_ledger_views(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(
            server.twilio_url, "CA-audit", tone(440, 2.0, 0.5), tone(660, 2.0, 0.1), agent="agent"
        )
        await sender.start()
        await wait_for(lambda: "CA-audit" in server.state.node.calls.roster.calls, 30, "the call")
        listener = Listener(server.base_url, server.tokens["sup"])
        await listener.listen("CA-audit", purpose="coaching")
        await listener.wait_frames(5)
        assert await listener.stop() == 200
        await sender.stop()
        _, body, _ = await get(server, "/api/audit/sessions?agent=agent&supervisor=sup", "auditor")
        (session,) = body["sessions"]
        assert session["session_id"] == listener.session_id and session["call_id"] == "CA-audit"
        assert session["purpose"] == "coaching" and session["end_reason"] == "stopped"
        assert session["legs"] == ["agent", "caller"] and session["duration_s"] > 0
        _, text, _ = await get(server, "/api/audit/export?format=csv", "agent")
        (row,) = csv.DictReader(io.StringIO(text))
        assert (row["session_id"], row["purpose"], row["legs_heard"]) == (
            listener.session_id,
            "coaching",
            "agent+caller",
        )
        assert row["policy_version"] == server.state.node.policy.current().version


async def test_the_audit_page_is_served_without_inline_code(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        status, html, response = await get(server, "/audit/", "auditor")
        assert status == 200 and "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert '<script type="module" src="audit.js"></script>' in html
        assert '<script type="module" src="../shared/signout.js"></script>' in html
        assert html.count("<script") == 2 and "<style" not in html and " style=" not in html
        assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
        for asset in ("audit.js", "audit.css"):
            status, _, _ = await get(server, f"/audit/{asset}", "auditor")
            assert status == 200


async def test_exports_follow_the_policys_disclosure_of_listener_names(tmp_path: Path) -> None:
    """``[disclosure] listener_names = false``: agents see "supervisor", may not ask for
    names; auditors get roles by default and names when they ask."""
    default = (Path(__file__).resolve().parents[2] / "live/policy/default.toml").read_text(encoding="utf-8")
    assert "listener_names = true" in default
    policy = tmp_path / "policy.toml"
    policy.write_text(default.replace("listener_names = true", "listener_names = false"), encoding="utf-8")
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        await seed(server)
        status, body, _ = await get(server, "/api/audit/export?format=csv", "agent")
        assert status == 200
        listeners = {row["listener"] for row in csv.DictReader(io.StringIO(body))}
        assert listeners == {"supervisor"}, listeners
        status, body, _ = await get(server, "/api/audit/export?format=csv&listener_names=true", "agent")
        assert (status, body["error"]["code"]) == (403, "role_forbidden")
        status, body, _ = await get(server, "/api/audit/export?agent=agent&format=csv", "auditor")
        assert {row["listener"] for row in csv.DictReader(io.StringIO(body))} == {"supervisor"}
        status, body, _ = await get(server, "/api/audit/export?agent=agent&format=csv&listener_names=true", "auditor")
        assert "Sam Supervisor" in {row["listener"] for row in csv.DictReader(io.StringIO(body))}
        # The agent's own history page follows the same rule.
        status, body, _ = await get(server, "/api/agent/history", "agent")
        assert status == 200 and {row["listener"] for row in body["listens"]} == {"supervisor"}

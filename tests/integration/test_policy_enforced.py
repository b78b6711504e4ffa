"""The monitoring policy, enforced for real listeners: consent rules, quotas, team scopes, and
reloading the policy file (a bad file keeps the last good policy; a change is on record)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
CALLER = tone(660, 2.0, 0.3)


def policy_text(*, version: str = "t-1", consent: str = "required", per_agent: int = 100) -> str:
    return f"""
version = "{version}"
purposes = ["quality", "training"]

[teams.billing]
agents = ["agent-1", "agent-4"]

[teams.sales]
agents = ["agent-9"]

[supervisors.sup]
teams = ["billing"]

[supervisors.sup2]
teams = ["sales"]

[quotas]
per_agent_per_month = {per_agent}
per_supervisor_per_day = 100

[hours]
timezone = "UTC"
allowed = ["Mon-Sun 00:00-24:00"]

[consent]
caller = "{consent}"

[notices]
default = "after_call"
unannounced_allowed = true

[disclosure]
listener_names = true

[retention]
days = 30
"""


def write_policy(tmp_path: Path, **kwargs: Any) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(policy_text(**kwargs), encoding="utf-8")
    return path


async def wait_call(server: RunningServer, call_id: str) -> None:
    await wait_for(lambda: call_id in server.state.node.calls.roster.calls, 30, f"call {call_id}")


async def try_listen(server: RunningServer, user: str, call_id: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.base_url}/api/calls/{call_id}/listen",
        json={"sdp": "v=0\r\n", "type": "offer", "purpose": "quality"},
        headers={"Authorization": f"Bearer {server.tokens[user]}"},
    ) as response:
        return response.status, await response.json()


async def reload(server: RunningServer, user: str = "admin") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.base_url}/api/admin/policy/reload",
        headers={"Authorization": f"Bearer {server.tokens[user]}"},
    ) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("consent_rule", "consent", "caller_heard", "reason"),
    [
        ("required", "denied", False, "consent-denied"),
        ("not_required", "unknown", True, None),
        ("required", "unknown", False, "consent-unknown"),
    ],
)
async def test_the_caller_is_heard_as_the_consent_rule_says(
    tmp_path: Path, consent_rule: str, consent: str, caller_heard: bool, reason: str | None
) -> None:
    policy = write_policy(tmp_path, consent=consent_rule)
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        sender = TwilioSender(server.twilio_url, "CA-c", LOUD, CALLER, consent=consent)
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-c")
            answer = await listener.listen("CA-c")
            assert answer["legs"][1]["audible"] is caller_heard
            assert answer["legs"][1]["reason"] == reason
            await listener.wait_frames(60)
            agent, caller = listener.stats["agent"].level(10), listener.stats["caller"].level(10)
            assert agent > 0.2, agent
            assert (caller > 0.1) if caller_heard else (caller < 0.005), caller
            started = await server.state.node.ledger.entries(kind="listen.started")
            assert started[-1].fields["policy_version"] == "t-1"
            assert started[-1].fields["team"] == "billing"
            assert started[-1].fields["notice_mode"] == "after_call"
        finally:
            await listener.close()
            await sender.stop()


async def test_outside_team_and_quota_are_refused_and_on_record(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, per_agent=1)
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        sender = TwilioSender(server.twilio_url, "CA-q", LOUD, CALLER)
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-q")
            status, body = await try_listen(server, "sup2", "CA-q")
            assert (status, body["error"]["code"]) == (403, "outside_team"), body

            headers = {"Authorization": f"Bearer {server.tokens['sup2']}"}
            async with aiohttp.ClientSession() as http, http.get(
                f"{server.base_url}/api/calls", headers=headers
            ) as response:
                assert (await response.json())["calls"] == []  # sup2 does not even see the call

            await listener.listen("CA-q")  # the one listen on agent-1 this month
            await listener.stop()
            status, body = await try_listen(server, "sup", "CA-q")
            assert (status, body["error"]["code"]) == (403, "quota_agent_month"), body
            assert body["error"]["policy_version"] == "t-1"

            refused = await server.state.node.ledger.entries(kind="listen.refused")
            assert [e.fields["code"] for e in refused] == ["outside_team", "quota_agent_month"]
        finally:
            await listener.close()
            await sender.stop()


async def test_policy_reload_keeps_the_last_good_policy(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, version="t-1", per_agent=1)
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        node = server.state.node
        changes = await node.ledger.entries(kind="policy.changed")
        assert [(e.fields["version"], e.fields["previous_version"]) for e in changes] == [("t-1", None)]

        status, body = await reload(server, "sup")
        assert status == 403

        policy.write_text('version = "t-2"\npurposes = []\n', encoding="utf-8")
        status, body = await reload(server)
        assert status == 400 and body["error"]["code"] == "bad_policy", body
        assert any("purposes" in problem for problem in body["error"]["problems"])
        assert node.policy.current().version == "t-1"
        assert node.policy.current().quotas.per_agent_per_month == 1

        status, body = await reload(server)  # the same bad file: still refused
        assert status == 400
        assert len(await node.ledger.entries(kind="policy.changed")) == 1

        write_policy(tmp_path, version="t-2", per_agent=5)
        status, body = await reload(server)
        assert status == 200 and body["version"] == "t-2", body
        assert node.policy.current().quotas.per_agent_per_month == 5
        changes = await node.ledger.entries(kind="policy.changed")
        assert [(e.fields["version"], e.fields["previous_version"]) for e in changes] == [
            ("t-1", None),
            ("t-2", "t-1"),
        ]
        assert changes[-1].fields["sha256"] == node.policy.current().sha256

        status, body = await reload(server)  # unchanged content: no new entry
        assert status == 200
        assert len(await node.ledger.entries(kind="policy.changed")) == 2

    # A restart with the same policy adds no entry either.
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        assert len(await server.state.node.ledger.entries(kind="policy.changed")) == 2


async def test_who_may_change_consent_and_payment_pause(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    async with running_server(tmp_path / "data", policy_file=str(policy)) as server:
        sender = TwilioSender(server.twilio_url, "CA-cs", LOUD, CALLER, consent="unknown")
        await sender.start()
        try:
            await wait_call(server, "CA-cs")

            async def change(user: str, what: str, body: dict[str, Any]) -> tuple[int, str | None]:
                async with aiohttp.ClientSession() as http, http.post(
                    f"{server.base_url}/api/calls/CA-cs/{what}",
                    json=body,
                    headers={"Authorization": f"Bearer {server.tokens[user]}"},
                ) as response:
                    payload = await response.json()
                    return response.status, payload.get("error", {}).get("code")

            # The supervisor (in scope) may only lower what is heard.
            assert await change("sup", "consent", {"consent": "granted"}) == (403, "consent_grant_forbidden")
            assert await change("sup", "consent", {"consent": "denied"}) == (200, None)
            assert await change("sup", "pci", {"paused": True}) == (200, None)
            assert await change("sup", "pci", {"paused": False}) == (403, "pci_resume_forbidden")
            # Outside the team: nothing; another agent's call: nothing.
            assert await change("sup2", "pci", {"paused": True}) == (403, "outside_team")
            assert await change("agent", "pci", {"paused": False}) == (403, "not_own_call")
            # The CTI integration (admin) may raise it again.
            assert await change("admin", "pci", {"paused": False}) == (200, None)
            assert await change("admin", "consent", {"consent": "granted"}) == (200, None)
            call = server.state.node.calls.roster.calls["CA-cs"]
            assert call.consent.value == "granted" and not call.pci_paused
        finally:
            await sender.stop()

"""The policy holder: what is on record (``policy.changed``) is the file that is enforced."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.audit import Ledger, open_ledger
from live.auth import Identity
from live.errors import BadRequest, ConfigError
from live.model import CallInfo
from live.policy import Listen, content_sha256
from live.policy_holder import PolicyHolder
from live.types import CallId, Consent, NodeId, Role

DEFAULT = Path(__file__).resolve().parents[2] / "live" / "policy" / "default.toml"
SAM = Identity("sam", "Sam Supervisor", Role.SUPERVISOR)
ANY_AGENT_CALL = CallInfo(
    CallId("CA1"), "twilio", "agent-nobody-named", 1.0, NodeId("n1"), consent=Consent.GRANTED
)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = open_ledger("", tmp_path / "ledger.sqlite3", key_path=tmp_path / "key.pem", checkpoint_interval_s=0)
    await ledger.open()
    yield ledger
    await ledger.aclose()


def assigned_only(tmp_path: Path) -> Path:
    text = DEFAULT.read_text(encoding="utf-8").replace('["all_agents"]', '["assigned"]')
    path = tmp_path / "assigned.toml"
    path.write_text(text.replace("builtin-default-2", "assigned-1"), encoding="utf-8")
    return path


async def test_the_default_policy_on_record_is_the_default_file(ledger: Ledger) -> None:
    holder = PolicyHolder(DEFAULT, ledger)
    await holder.start()
    expected = content_sha256(tomllib.loads(DEFAULT.read_text(encoding="utf-8")))
    policy = holder.current()
    assert (policy.version, policy.sha256) == ("builtin-default-2", expected)
    [changed] = await ledger.entries(kind="policy.changed")
    assert (changed.fields["version"], changed.fields["sha256"]) == ("builtin-default-2", expected)
    # The grant is written in the file: every supervisor, every agent.
    assert policy.supervisors_listen_to == {"all_agents"}
    assert holder.may_view(SAM, ANY_AGENT_CALL)
    assert holder.decide(SAM, Listen("quality"), ANY_AGENT_CALL).allowed


async def test_a_restart_with_the_same_file_records_nothing_new(ledger: Ledger) -> None:
    await PolicyHolder(DEFAULT, ledger).start()
    await PolicyHolder(DEFAULT, ledger).start()
    assert len(await ledger.entries(kind="policy.changed")) == 1


async def test_without_the_grant_the_scope_is_what_the_file_says(ledger: Ledger, tmp_path: Path) -> None:
    holder = PolicyHolder(assigned_only(tmp_path), ledger)
    await holder.start()
    decision = holder.decide(SAM, Listen("quality"), ANY_AGENT_CALL)
    assert (decision.allowed, decision.reason.value) == (False, "outside_team")
    assert not holder.may_view(SAM, ANY_AGENT_CALL)


async def test_an_invalid_file_refuses_the_start_and_keeps_the_last_good_one(
    ledger: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("version = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        await PolicyHolder(path, ledger).start()
    assert refused.value.fields["problems"]

    path.write_text(DEFAULT.read_text(encoding="utf-8"), encoding="utf-8")
    holder = PolicyHolder(path, ledger)
    await holder.start()
    path.write_text("purposes = []\n", encoding="utf-8")
    with pytest.raises(BadRequest) as bad:
        await holder.reload(actor="admin")
    assert bad.value.code == "bad_policy"
    assert holder.current().version == "builtin-default-2"
    assert len(await ledger.entries(kind="policy.changed")) == 1

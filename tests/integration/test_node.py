"""The composition root: a node starts its parts in order, stops them, and undoes a failed start."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.audit import open_ledger
from live.config import load_settings
from live.errors import ConfigError
from live.ingest.sink import CallAnnouncement
from live.node import build_node
from live.types import CallId


async def test_a_node_runs_and_stops_cleanly(tmp_path: Path) -> None:
    settings = load_settings({}, None, data_dir=tmp_path, port=18001)
    node = build_node(settings)
    await node.start()
    try:
        assert node.unready_reason() is None
        await node.calls.call_started(CallAnnouncement(CallId("CA1"), "twilio", "agent-1"))
        stats = node.stats()
        assert (stats.calls.node_calls, stats.listens.sessions, stats.ledger.writable) == (1, 0, True)
    finally:
        await node.stop()
    assert node.stats().calls.node_calls == 0  # the call ended with the node

    ledger = open_ledger("", settings.ledger_path, key_path=settings.ledger_key_path)
    await ledger.open()
    try:
        [changed] = await ledger.entries(kind="policy.changed")
        assert changed.fields["version"] == "builtin-default-2"
    finally:
        await ledger.aclose()


async def test_a_bad_policy_refuses_the_start_and_leaves_nothing_open(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("version = 1\n", encoding="utf-8")
    node = build_node(load_settings({}, None, data_dir=tmp_path, port=18002, policy_file=str(bad)))
    with pytest.raises(ConfigError) as refused:
        await node.start()
    assert refused.value.fields["problems"]

    # The stores were closed again: a node on the same data directory starts.
    again = build_node(load_settings({}, None, data_dir=tmp_path, port=18002))
    await again.start()
    await again.stop()

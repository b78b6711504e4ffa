"""A cluster that heals, on one ledger: three ``live serve`` nodes on loopback share one
PostgreSQL ledger (and its signing key) and one ``redis-server``, both started by the test.

Redis is stopped while calls start, end and are listened to, then restarted empty: the
rosters of all three nodes converge, no phantom call is left, a listen of a call that ended
meanwhile is refused on every node, and the shared ledger verifies as one log in which every
listen started once and ended once. The owner node of a call is killed with ``kill -9``: the
call leaves the other rosters and the listens on it there end as ``node-lost``, once each;
the dead node's own listen stays open until that node restarts and closes it, and no node
closes another node's sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import RedisServer
from tests.integration.test_cluster_heals import INGEST, Node, refused, start_nodes, stopping, until
from tests.support.listener import Listener
from tests.support.process import start_serve
from tests.support.wait import wait_for

__all__ = ["stopping"]  # the fixture, used by name below


def shared(tmp_path: Path, ledger_url: str, **env: str) -> dict[str, str]:
    """What every node of the cluster is told alike: the ledger's database and key file."""
    return {"LIVE_LEDGER_URL": ledger_url, "LIVE_LEDGER_KEY_FILE": str(tmp_path / "ledger-signing.pem"), **env}


async def ledger(url: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """``listen.started`` fields by session, and every ``listen.ended`` of each session."""
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(
            "SELECT kind, session_id, fields FROM ledger_entries"
            " WHERE kind IN ('listen.started', 'listen.ended') ORDER BY seq"
        )
    finally:
        await db.close()
    started: dict[str, dict[str, Any]] = {}
    ended: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        fields = json.loads(row["fields"])
        if row["kind"] == "listen.started":
            started[str(row["session_id"])] = fields
        else:
            ended[str(row["session_id"])].append(fields)
    return started, dict(ended)


def audit_verify(tmp_path: Path, ledger_url: str) -> dict[str, Any]:
    """``live audit verify --json`` of the shared ledger, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    result = subprocess.run(
        [sys.executable, "-m", "live.cli", "audit", "verify", "--json", "--data", str(tmp_path / "audit")],
        capture_output=True,
        text=True,
        env=env | shared(tmp_path, ledger_url),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def node_env(name: str, redis: RedisServer, env: dict[str, str]) -> dict[str, str]:
    """What ``start_nodes`` told node ``name``: to start it again as the same node."""
    return {
        "LIVE_REDIS_URL": redis.url,
        "LIVE_NODE_ID": f"node-{name}",
        "LIVE_INGEST_SECRET": INGEST["X-Live-Ingest-Secret"],
        "LIVE_SESSION_SECRET": "cluster-secret",
        **env,
    }


def listeners_of(node: Node, call_id: str) -> list[str]:
    return sorted(str(x["session_id"]) for x in node.calls().get(call_id, {}).get("listeners", []))


async def test_three_nodes_converge_after_redis_restarts_empty(
    tmp_path: Path, own_redis: RedisServer, postgres_db_url: str, stopping: list[Node]
) -> None:
    nodes = start_nodes(tmp_path, own_redis, "abc", **shared(tmp_path, postgres_db_url))
    stopping.extend(nodes)
    a, b, c = nodes
    keep, ending, new = a.sender("CA-keep"), b.sender("CA-ending"), c.sender("CA-new")
    remote, during, late = c.listener(), c.listener(), a.listener()
    try:
        await keep.start(headers=INGEST)
        await ending.start(headers=INGEST)
        for node in nodes:
            await until(
                lambda node=node: {"CA-keep", "CA-ending"} <= set(node.calls()),  # type: ignore[misc]
                f"both calls on {node.process.base_url}",
            )
        await remote.listen("CA-keep")  # node c hears node a's call through the relay
        await remote.wait_frames(10)

        own_redis.stop()
        await until(lambda: not any(n.ready() for n in nodes), "every node to notice the outage")
        # While Redis is down: a call ends, another starts, one is listened to.
        await ending.stop()
        await until(lambda: "CA-ending" not in b.calls(), "CA-ending to leave node b's roster")
        await new.start(headers=INGEST)
        await until(lambda: "CA-new" in c.calls(), "CA-new on node c during the outage")
        await during.listen("CA-new")  # ingested on the same node: served
        await during.wait_frames(10)
        # Node a still lists node b's call; it cannot reach its media: refused, never a 201.
        assert "503" in await refused(a.listener(), "CA-ending")

        own_redis.start()  # empty: nothing was persisted
        await until(lambda: all(n.ready() for n in nodes), "every node ready again")
        for node in nodes:
            await until(
                lambda node=node: set(node.calls()) == {"CA-keep", "CA-new"},  # type: ignore[misc]
                f"the roster of {node.process.base_url} to converge",
            )
            await until(
                lambda node=node: listeners_of(node, "CA-keep") == [remote.session_id]  # type: ignore[misc]
                and listeners_of(node, "CA-new") == [during.session_id],
                f"{node.process.base_url} to see the listeners taken from the cluster",
            )
        # The relay to node c carries node a's call again.
        heard = remote.frames_heard
        await remote.wait_frames(min(heard.values()) + 10)
        # The call that ended during the outage is refused as ended on every node.
        for node in nodes:
            assert "410" in await refused(node.listener(), "CA-ending")
        # The call that started during the outage is heard from another node.
        await late.listen("CA-new")
        await late.wait_frames(10)
        # It ends and can start again on another node: no phantom entry anywhere.
        await new.stop()
        await until(lambda: all("CA-new" not in n.calls() for n in nodes), "CA-new gone everywhere")
        again = b.sender("CA-new")
        await again.start(headers=INGEST)
        await until(lambda: all("CA-new" in n.calls() for n in nodes), "CA-new again on every node")
        await again.stop()
        assert await remote.stop() == 200
    finally:
        for listener in (remote, during, late):
            await listener.close()
        for call in (keep, ending, new):
            await call.stop()
    await until(lambda: not any(n.calls() for n in nodes), "every roster empty")
    for node in nodes:
        assert node.process.stop() == 0, node.process.log()

    started, ended = await ledger(postgres_db_url)
    sessions = {remote.session_id, during.session_id, late.session_id}
    assert set(started) == sessions  # no listen of a dead call accepted
    assert {s: started[s]["node_id"] for s in sessions} == {
        remote.session_id: "node-c",
        during.session_id: "node-c",
        late.session_id: "node-a",
    }
    assert {s: [e["reason"] for e in ended.get(s, [])] for s in sessions} == {
        remote.session_id: ["stopped"],
        during.session_id: ["call-ended"],  # its call ended while it listened
        late.session_id: ["call-ended"],
    }
    report = audit_verify(tmp_path, postgres_db_url)
    assert report["ok"] and report["entries"] >= 6, report


async def test_a_dead_owner_node_leaves_the_other_rosters(
    tmp_path: Path, own_redis: RedisServer, postgres_db_url: str, stopping: list[Node]
) -> None:
    env = shared(tmp_path, postgres_db_url, LIVE_NODE_TIMEOUT_S="3")
    nodes = start_nodes(tmp_path, own_redis, "abc", **env)
    stopping.extend(nodes)
    a, b, c = nodes
    call = a.sender("CA-owned")
    own, on_b, on_c = a.listener(), b.listener(), c.listener()
    listeners: list[Listener] = [own, on_b, on_c]
    try:
        await call.start(headers=INGEST)
        await until(lambda: all("CA-owned" in n.calls() for n in nodes), "CA-owned on every node")
        for listener in listeners:
            await listener.listen("CA-owned")
            await listener.wait_frames(10)
        a.process.process.kill()  # kill -9: no goodbye on the bus, nothing closed in the ledger
        a.process.process.wait(10)
        for node in (b, c):
            await until(lambda node=node: "CA-owned" not in node.calls(), f"{node.process.base_url} to drop the call")  # type: ignore[misc]

        async def both_ended() -> bool:
            ended = (await ledger(postgres_db_url))[1]
            return on_b.session_id in ended and on_c.session_id in ended

        await wait_for(both_ended, 30, "the listens on nodes b and c to end", every=0.1)
        assert b.ready() and c.ready()  # the survivors serve on
        for node in (b, c):
            assert "410" in await refused(node.listener(), "CA-owned")
        started, ended = await ledger(postgres_db_url)
        assert [e["reason"] for e in ended[str(on_b.session_id)]] == ["node-lost"]
        assert [e["reason"] for e in ended[str(on_c.session_id)]] == ["node-lost"]
        # The dead node's own listen is its to close (it is not the survivors'), on restart.
        assert str(own.session_id) not in ended
        a.process = start_serve(a.process.data_dir, node_env("a", own_redis, env))
        started, ended = await ledger(postgres_db_url)
        assert [e["reason"] for e in ended[str(own.session_id)]] == ["node-lost"]
        assert ended[str(own.session_id)][0]["node_id"] == "node-a"
    finally:
        for listener in listeners:
            await listener.close()
        await call.stop()
    for node in nodes:
        assert node.process.stop() == 0, node.process.log()
    started, ended = await ledger(postgres_db_url)
    assert set(started) == {own.session_id, on_b.session_id, on_c.session_id}
    # Every listen ended exactly once, as node-lost: no node closed another's, none twice.
    assert {s: [e["reason"] for e in ended[s]] for s in started} == {s: ["node-lost"] for s in started}
    report = audit_verify(tmp_path, postgres_db_url)
    assert report["ok"], report

"""A cluster that heals: ``live serve`` nodes on a real Redis that is stopped and restarted
empty, and an owner node killed with ``kill -9``.

After the bus reconnects every node reconciles its roster with the cluster's state: calls
that ended during the outage leave, calls that started during it arrive, nothing is left
behind, and a listen to a call that ended meanwhile is refused. A node that dies takes its
calls out of every roster, and the listens on them end as ``node-lost``, within the node
timeout (plus one heartbeat).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer
from tests.support.g711 import tone
from tests.support.kill9 import audit_verify
from tests.support.listener import Listener
from tests.support.process import LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

INGEST = {"X-Live-Ingest-Secret": "test-ingest-secret"}
LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.08)


class Node:
    def __init__(self, process: LiveProcess, token: str) -> None:
        self.process = process
        self.token = token

    def calls(self) -> dict[str, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.process.base_url}/api/calls", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return {str(c["call_id"]): c for c in json.load(response)["calls"]}

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.process.base_url}/readyz", timeout=2) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return False

    def sender(self, call_sid: str) -> TwilioSender:
        return TwilioSender(f"{self.process.ws_url}/ingest/twilio", call_sid, LOUD, QUIET, consent="granted")

    def listener(self) -> Listener:
        return Listener(self.process.base_url, self.token)


def start_nodes(tmp_path: Path, redis: RedisServer, names: str, **env: str) -> list[Node]:
    nodes = []
    for name in names:
        data = tmp_path / name
        live_cli(data, "users", "add", "sup", "--role", "supervisor", "--name", "Sam")
        token = live_cli(data, "users", "token", "sup")
        process = start_serve(
            data,
            {
                "LIVE_REDIS_URL": redis.url,
                "LIVE_NODE_ID": f"node-{name}",
                "LIVE_INGEST_SECRET": INGEST["X-Live-Ingest-Secret"],
                "LIVE_SESSION_SECRET": "cluster-secret",
                **env,
            },
        )
        nodes.append(Node(process, token))
    return nodes


@pytest.fixture
def stopping() -> Iterator[list[Node]]:
    """Nodes the test started; stopped (or reaped) at the end."""
    nodes: list[Node] = []
    yield nodes
    for node in nodes:
        node.process.stop()


async def until(predicate: Any, what: str, timeout: float = 30) -> Any:
    """``wait_for`` a blocking ``predicate`` (it asks a node over HTTP), run in a thread."""
    return await wait_for(lambda: asyncio.to_thread(predicate), timeout, what, every=0.1)


async def refused(listener: Listener, call_id: str) -> str:
    """The refusal of a listen (a 201 fails the test)."""
    with pytest.raises(RuntimeError, match="listen refused") as raised:
        await listener.listen(call_id)
    await listener.close()
    return str(raised.value)


def ledger(data_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``listen.started`` fields by session, and each ended session's reason."""
    db = sqlite3.connect(data_dir / "ledger.sqlite3")
    try:
        started = {
            str(s): json.loads(f)
            for s, f in db.execute("SELECT session_id, fields FROM ledger_entries WHERE kind = 'listen.started'")
        }
        ended = {
            str(s): str(json.loads(f)["reason"])
            for s, f in db.execute("SELECT session_id, fields FROM ledger_entries WHERE kind = 'listen.ended'")
        }
        return started, ended
    finally:
        db.close()


async def test_rosters_converge_after_redis_restarts_empty(
    tmp_path: Path, own_redis: RedisServer, stopping: list[Node]
) -> None:
    a, b = start_nodes(tmp_path, own_redis, "ab")
    stopping.extend([a, b])
    keep, ending, new = a.sender("CA-keep"), a.sender("CA-ending"), a.sender("CA-new")
    await keep.start(headers=INGEST)
    await ending.start(headers=INGEST)
    heard = a.listener()
    try:
        await until(lambda: {"CA-keep", "CA-ending"} <= set(b.calls()), "both calls on node b")

        own_redis.stop()
        await until(lambda: not a.ready() and not b.ready(), "both nodes to notice the outage")
        # While Redis is down: a call ends, another starts, one is listened to.
        await ending.stop()
        await until(lambda: "CA-ending" not in a.calls(), "CA-ending to leave node a's roster")
        await new.start(headers=INGEST)
        await until(lambda: "CA-new" in a.calls(), "CA-new on node a during the outage")
        await heard.listen("CA-keep")  # a call ingested on the same node: served
        await heard.wait_frames(10)
        # Node b cannot reach the media of node a's calls: refused, never a 201.
        assert "503" in await refused(b.listener(), "CA-ending")

        own_redis.start()  # empty: nothing was persisted
        await until(lambda: a.ready() and b.ready(), "both nodes ready again")
        for node in (a, b):
            await until(
                lambda node=node: set(node.calls()) == {"CA-keep", "CA-new"},  # type: ignore[misc]
                f"the roster of {node.process.base_url} to converge",
            )
        # The listen started during the outage is on every roster again.
        await until(
            lambda: [x["session_id"] for x in b.calls()["CA-keep"]["listeners"]] == [heard.session_id],
            "node b to see the listener of CA-keep",
        )
        # The call that ended during the outage is refused as ended, on record.
        assert "410" in await refused(b.listener(), "CA-ending")
        # A call that started during the outage ends and can start again: no phantom entry.
        await new.stop()
        await until(lambda: "CA-new" not in b.calls() and "CA-new" not in a.calls(), "CA-new gone")
        again = a.sender("CA-new")
        await again.start(headers=INGEST)
        await until(lambda: "CA-new" in b.calls(), "CA-new again on node b")
        await again.stop()
        assert await heard.stop() == 200
    finally:
        await heard.close()
        for sender in (keep, ending, new):
            await sender.stop()
    await until(lambda: not b.calls() and not a.calls(), "every roster empty")
    for node in (a, b):
        assert node.process.stop() == 0, node.process.log()
        result = audit_verify(node.process.data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        started, ended = ledger(node.process.data_dir)
        assert set(started) == set(ended)  # every listen on record ended
    started_a, ended_a = ledger(a.process.data_dir)
    assert list(started_a) == [heard.session_id] and ended_a[heard.session_id] == "stopped"
    assert ledger(b.process.data_dir)[0] == {}  # no listen of a dead call accepted


async def test_a_dead_owner_node_leaves_every_roster(
    tmp_path: Path, own_redis: RedisServer, stopping: list[Node]
) -> None:
    a, b = start_nodes(tmp_path, own_redis, "ab", LIVE_NODE_TIMEOUT_S="3")
    stopping.extend([a, b])
    sender = a.sender("CA-owned")
    await sender.start(headers=INGEST)
    listener = b.listener()
    try:
        await until(lambda: "CA-owned" in b.calls(), "CA-owned on node b")
        await listener.listen("CA-owned")
        await listener.wait_frames(10)
        a.process.process.kill()  # kill -9: no goodbye on the bus
        a.process.process.wait(10)
        await until(lambda: "CA-owned" not in b.calls(), "node b to drop the dead node's call")
        session_id = str(listener.session_id)
        await until(lambda: session_id in ledger(b.process.data_dir)[1], "the listen on node b to end")
        assert ledger(b.process.data_dir)[1][session_id] == "node-lost"
        assert b.ready()  # the survivor serves on
        assert "410" in await refused(b.listener(), "CA-owned")
    finally:
        await listener.close()
        await sender.stop()
    assert b.process.stop() == 0, b.process.log()
    result = audit_verify(b.process.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr

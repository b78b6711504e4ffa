"""Two ``live serve`` processes sharing a real Redis: one roster, and any node serves any call."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

INGEST_SECRET = "test-ingest-secret"

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.08)


def get_calls(node: LiveProcess, token: str) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"{node.base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return list(json.load(response)["calls"])


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """``wait_for`` a blocking ``predicate`` (it asks a node over HTTP), run in a thread."""
    await wait_for(lambda: asyncio.to_thread(predicate), 30, what, every=0.1)


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str):  # type: ignore[no-untyped-def]
    nodes, tokens = [], []
    for name in ("a", "b"):
        data = tmp_path / name
        live_cli(data, "users", "add", "sup", "--role", "supervisor", "--name", "Sam")
        tokens.append(live_cli(data, "users", "token", "sup"))
        env = {
            "LIVE_REDIS_URL": redis_url,
            "LIVE_NODE_ID": f"node-{name}",
            "LIVE_INGEST_SECRET": INGEST_SECRET,
            "LIVE_SESSION_SECRET": "cluster-secret",
        }
        nodes.append(start_serve(data, env))
    yield nodes, tokens
    for node in nodes:
        assert node.stop() == 0, node.log()


async def test_two_nodes_share_the_roster(cluster) -> None:  # type: ignore[no-untyped-def]
    (a, b), (token_a, token_b) = cluster
    sender = TwilioSender(f"{a.ws_url}/ingest/twilio", "CA-cluster-1", LOUD, QUIET, agent="agent-9")
    await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
    try:
        await wait_until(
            lambda: any(c["call_id"] == "CA-cluster-1" for c in get_calls(b, token_b)),
            "CA-cluster-1 on node b",
        )
        call = next(c for c in get_calls(b, token_b) if c["call_id"] == "CA-cluster-1")
        assert call["node_id"] == "node-a"
        assert call["agent_id"] == "agent-9"
    finally:
        await sender.stop()
    await wait_until(lambda: not get_calls(b, token_b), "node b to see no calls")
    assert not get_calls(a, token_a)


async def test_supervisor_on_other_node_hears_the_call(cluster) -> None:  # type: ignore[no-untyped-def]
    (a, b), (_token_a, token_b) = cluster
    sender = TwilioSender(f"{a.ws_url}/ingest/twilio", "CA-cluster-2", LOUD, QUIET, consent="granted")
    await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
    listener = Listener(b.base_url, token_b)
    try:
        await wait_until(
            lambda: any(c["call_id"] == "CA-cluster-2" for c in get_calls(b, token_b)),
            "CA-cluster-2 on node b",
        )
        await listener.listen("CA-cluster-2")
        await listener.wait_frames(50, timeout=15)
        agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert agent > 0.2
        assert 0.01 < caller < agent
        listeners = next(c for c in get_calls(b, token_b) if c["call_id"] == "CA-cluster-2")["listeners"]
        assert [x["display_name"] for x in listeners] == ["Sam"]  # type: ignore[index]
        assert await listener.stop() == 200
    finally:
        await listener.close()
        await sender.stop()

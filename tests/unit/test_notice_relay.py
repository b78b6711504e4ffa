"""Listens made on another node reach this node's notice board through the bus; the node that
made them is not told twice; a notice about one listen is kept once."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import msgpack
import pytest

from live.bus import MemoryCallBus
from live.codec import WIRE_VERSION, decode_event, encode_event
from live.errors import BadRequest
from live.model import ListenEnded, ListenerInfo, ListenStarted
from live.notices import NoticeBoard, NoticeRelay, NoticeStore
from live.types import CallId, NodeId, SessionId
from tests.unit.test_notice_board import POLICY, RecordingLedger

ITEM = {
    "purpose": "quality",
    "listener": "QA team",
    "started_at": 1000.0,
    "call_started_at": 990.0,
    "duration_s": 60,
    "policy_version": "d-1",
}


def started(node: str, session: str, mode: str) -> ListenStarted:
    listener = ListenerInfo(SessionId(session), "sup", "Sam", "quality", 1000.0, NodeId(node))
    return ListenStarted(
        CallId("CA-1"), listener, ("agent",), agent_id="agent-9", label="QA team", notice_mode=mode
    )


async def test_other_nodes_listens_reach_the_board_once(tmp_path: Path) -> None:
    bus = MemoryCallBus()
    # Two nodes' stores on one database file: the shared store of a cluster.
    board_b = NoticeBoard(NoticeStore(tmp_path / "n.sqlite3"), RecordingLedger(), lambda: POLICY)
    ledger_c = RecordingLedger()
    board_c = NoticeBoard(NoticeStore(tmp_path / "n.sqlite3"), ledger_c, lambda: POLICY)
    relay = NoticeRelay(board_b, "b")
    await board_b.store.open()
    await board_c.store.open()
    relay.start()
    unsubscribe = bus.subscribe(relay.on_event)
    page, leave = board_b.subscribe("agent-9")
    try:
        await bus.publish(started("b", "ls-own", "live"))  # made here: the board knew it first
        await bus.publish(started("c", "ls-1", "live"))
        await relay.settled()
        assert page.get_nowait() == {
            "type": "monitoring",
            "active": True,
            "listeners": ["QA team"],
            "listening": [{"listener": "QA team", "purpose": "quality"}],
        }
        assert page.empty()

        notice = await board_c.listen_ended(
            agent_id="agent-9", session_id="ls-1", call_id="CA-1", mode="after_call", item=ITEM
        )
        assert notice is not None
        ended = ListenEnded(CallId("CA-1"), SessionId("ls-1"), "stopped", 1060.0, "agent-9", "c", notice.notice_id)
        await bus.publish(ended)
        await bus.publish(ListenEnded(CallId("CA-1"), SessionId("ls-1"), "stopped", 1060.0, "agent-9", "b", notice.notice_id))
        await relay.settled()
        assert page.get_nowait()["active"] is False
        shown = page.get_nowait()
        assert shown["type"] == "notice" and shown["notice"]["id"] == notice.notice_id
        assert page.empty()  # the echo of its own end is not applied again
        assert [kind for kind, _ in board_b.ledger.appended] == ["notice.delivered"]  # type: ignore[attr-defined]

        # The same listen's notice asked for again (a recovery on another node): the same one.
        again = await board_b.listen_ended(
            agent_id="agent-9", session_id="ls-1", call_id="CA-1", mode="after_call", item=ITEM
        )
        assert again is not None and again.notice_id == notice.notice_id
        assert page.empty()
        assert [n.notice_id for n in await board_c.store.of_agent("agent-9")] == [notice.notice_id]
        assert relay.dropped == 0
    finally:
        leave()
        unsubscribe()
        await relay.aclose()
        await board_b.store.aclose()
        await board_c.store.aclose()


async def test_a_store_from_before_notice_keys_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE notices (notice_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, mode TEXT NOT NULL,
            created_at REAL NOT NULL, text TEXT NOT NULL, data TEXT NOT NULL, delivered_at REAL, seen_at REAL);
        INSERT INTO notices VALUES ('nt-old', 'agent-9', 'after_call', 1.0, 'old', '{}', NULL, NULL);
        """
    )
    db.close()
    store = NoticeStore(path)
    await store.open()
    try:
        first, new = await store.add("agent-9", "after_call", "t", {}, 2.0, key="ls-2:after_call")
        second, again = await store.add("agent-9", "after_call", "t", {}, 3.0, key="ls-2:after_call")
        assert new and not again and first.notice_id == second.notice_id
        assert [n.notice_id for n in await store.of_agent("agent-9")] == ["nt-old", first.notice_id]
    finally:
        await store.aclose()


def test_what_the_notice_needs_crosses_the_wire() -> None:
    start = started("c", "ls-1", "after_call")
    assert decode_event(encode_event(start)) == start
    end = ListenEnded(CallId("CA-1"), SessionId("ls-1"), "stopped", 1060.0, "agent-9", "c", "nt-1")
    assert decode_event(encode_event(end)) == end
    bad = msgpack.packb({"k": "listen.ended", "v": WIRE_VERSION, "d": {**_fields(end), "notice_id": 7}})
    with pytest.raises(BadRequest):
        decode_event(bad)


def _fields(event: ListenEnded) -> dict[str, object]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}

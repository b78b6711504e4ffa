"""Twilio as real accounts use it: split streams, one-track streams, chunks out of order.

A real server, real WebSockets, an aiortc listener; the ledger's ``legs`` must say exactly
which legs were heard.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.audit.entry import LedgerEntry
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender, start_message
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.05)
BOTH = ["agent", "caller"]


async def entries(server: RunningServer, session_id: str | None) -> list[LedgerEntry]:
    return list(await server.state.node.ledger.entries(session_id=session_id))


async def entries_of(server: RunningServer, session_id: str | None, kind: str, timeout: float = 30.0) -> list[LedgerEntry]:
    """The session's ledger entries of ``kind``, once there is one (they are written by a task)."""

    async def found() -> list[LedgerEntry]:
        return [e for e in await entries(server, session_id) if e.kind == kind]

    return await wait_for(found, timeout, f"{kind} for {session_id}")


def legs_of(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {leg["leg"]: leg for leg in answer["legs"]}


async def roster_legs(server: RunningServer, call_id: str) -> list[str]:
    headers = {"Authorization": f"Bearer {server.tokens['sup']}"}
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/api/calls", headers=headers) as response:
        calls = {c["call_id"]: c for c in (await response.json())["calls"]}
    return list(calls[call_id]["legs"])


async def test_split_streams_are_one_call_and_both_legs_are_heard(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        node = server.state.node
        caller = TwilioSender(server.twilio_url, "CA-split", LOUD, QUIET, tracks="inbound", agent="agent-3")
        agent = TwilioSender(server.twilio_url, "CA-split", LOUD, QUIET, tracks="outbound", agent="agent-3")
        await caller.start()
        await wait_for(lambda: "CA-split" in node.calls.roster.calls, 30, "the call")
        await agent.start()  # the second socket of the callSid joins, is not refused
        await wait_for(
            lambda: node.calls.roster.calls["CA-split"].legs == ("agent", "caller"),
            30,
            "both legs",
        )
        assert await roster_legs(server, "CA-split") == BOTH
        assert len(node.calls.local) == 1

        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            answer = await listener.listen("CA-split")
            assert {leg: (x["available"], x["reason"]) for leg, x in legs_of(answer).items()} == {
                "agent": (True, None),
                "caller": (True, None),
            }
            await listener.wait_frames(50)
            loud, quiet = listener.stats["agent"].level(), listener.stats["caller"].level()
            assert loud > 0.2 and 0.01 < quiet < loud / 4, (loud, quiet)
            [started] = [e for e in await entries(server, listener.session_id) if e.kind == "listen.started"]
            assert started.fields["legs"] == BOTH

            await caller.stop()  # one stream ends: the call goes on with the agent leg
            await wait_for(
                lambda: node.calls.roster.calls["CA-split"].legs == ("agent",),
                30,
                "agent leg only",
            )
            assert node.listens.sessions, "the listen goes on"
            muted = await entries_of(server, listener.session_id, "leg.muted")
            assert [(e.fields["leg"], e.fields["reason"]) for e in muted] == [("caller", "not_sent")]

            await agent.stop()  # the last stream ends the call
            await wait_for(
                lambda: not node.calls.local and not node.listens.sessions,
                30,
                "the call's end",
            )
            ended = [e for e in await entries(server, listener.session_id) if e.kind == "listen.ended"]
            assert [e.fields["reason"] for e in ended] == ["call-ended"]
        finally:
            await listener.close()
            await caller.stop()
            await agent.stop()


@pytest.mark.parametrize(
    ("streams", "heard"),
    [
        (["both"], BOTH),
        (["inbound", "outbound"], BOTH),
        (["inbound"], ["caller"]),
        (["outbound"], ["agent"]),
    ],
    ids=["both-tracks", "split", "inbound-only", "outbound-only"],
)
async def test_ledger_legs_are_the_legs_really_heard(tmp_path: Path, streams: list[str], heard: list[str]) -> None:
    async with running_server(tmp_path) as server:
        node = server.state.node
        senders = [TwilioSender(server.twilio_url, "CA-legs", LOUD, QUIET, tracks=t) for t in streams]
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            for sender in senders:
                await sender.start()
                await wait_for(lambda: "CA-legs" in node.calls.roster.calls, 30, "the call")
            await wait_for(
                lambda: list(node.calls.roster.calls["CA-legs"].legs) == heard,
                30,
                f"legs {heard}",
            )
            assert await roster_legs(server, "CA-legs") == heard
            answer = await listener.listen("CA-legs")
            for leg, state in legs_of(answer).items():
                assert state["available"] is (leg in heard), state
                assert state["audible"] is True  # consent granted: the policy would let both be heard
                assert state["reason"] == (None if leg in heard else "not_sent"), state
            await listener.wait_frames(25, legs=tuple(heard))
            for leg in set(BOTH) - set(heard):
                assert listener.stats[leg].frames == 0, "a leg that is not sent carries no audio"
            [started] = [e for e in await entries(server, listener.session_id) if e.kind == "listen.started"]
            assert started.fields["legs"] == heard
        finally:
            await listener.close()
            for sender in senders:
                await sender.stop()


async def test_a_stream_joining_during_a_listen_is_on_record(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        node = server.state.node
        caller = TwilioSender(server.twilio_url, "CA-join", LOUD, QUIET, tracks="inbound")
        agent = TwilioSender(server.twilio_url, "CA-join", LOUD, QUIET, tracks="outbound")
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await caller.start()
            await wait_for(lambda: "CA-join" in node.calls.roster.calls, 30, "the call")
            answer = await listener.listen("CA-join")
            assert legs_of(answer)["agent"]["available"] is False
            await listener.wait_frames(10, legs=("caller",))
            await agent.start()
            await listener.wait_frames(50)  # now the agent is heard too
            assert listener.stats["agent"].level() > 0.2
            unmuted = await entries_of(server, listener.session_id, "leg.unmuted")
            assert [(e.fields["leg"], e.fields["reason"]) for e in unmuted] == [("agent", "not_sent")]
            recorded = await entries(server, listener.session_id)
            assert recorded[0].kind == "listen.started" and recorded[0].fields["legs"] == ["caller"]
        finally:
            await listener.close()
            await caller.stop()
            await agent.stop()


def steps(timestamps: list[int]) -> list[int]:
    """Differences between consecutive RTP timestamps, modulo 2**32 (RFC 3550 §5.1)."""
    return [(b - a) % 2**32 for a, b in itertools.pairwise(timestamps)]


async def test_swapped_chunks_never_step_rtp_timestamps_back(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        node = server.state.node
        sender = TwilioSender(server.twilio_url, "CA-swap", LOUD, QUIET, swap_every=5)
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await sender.start()
            await wait_for(lambda: "CA-swap" in node.calls.roster.calls, 30, "the call")
            await listener.listen("CA-swap")
            await listener.wait_frames(100)
            media = node.calls.local["CA-swap"]
            for leg in BOTH:
                timestamps = listener.rtp_timestamps[leg]
                assert len(timestamps) >= 100
                # Forward only, never back: every step is within (0, 2**31) (RFC 3550 §5.1).
                assert all(0 < step < 2**31 for step in steps(timestamps)), steps(timestamps)
                assert media.leg(leg).late == 0  # reordered, none had to be dropped
            async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/metrics") as response:
                metrics = await response.text()
            reordered = next(
                line for line in metrics.splitlines() if line.startswith('live_twilio_chunks_out_of_order_total{result="reordered"}')
            )
            assert int(reordered.split()[-1]) > 10
        finally:
            await listener.close()
            await sender.stop()


async def test_a_second_stream_on_another_node_is_refused_with_a_reason(tmp_path: Path, redis_url: str) -> None:
    async with (
        running_server(tmp_path / "a", redis_url=redis_url, node_id="node-a") as a,
        running_server(tmp_path / "b", redis_url=redis_url, node_id="node-b") as b,
    ):
        caller = TwilioSender(a.twilio_url, "CA-far", LOUD, QUIET, tracks="inbound")
        await caller.start()
        try:
            await wait_for(
                lambda: "CA-far" in b.state.node.calls.roster.calls,
                30,
                "the call on node b",
            )
            async with aiohttp.ClientSession() as http, http.ws_connect(b.twilio_url) as ws:
                await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
                await ws.send_json(start_message("CA-far", tracks="outbound"))
                closed = await ws.receive(timeout=5)
                assert closed.type == aiohttp.WSMsgType.CLOSE
                assert closed.data == 4409
                assert "node-a" in closed.extra and "same node" in closed.extra
            assert a.state.node.calls.roster.calls["CA-far"].legs == ("caller",)
        finally:
            await caller.stop()

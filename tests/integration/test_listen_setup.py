"""Listens that never were, and listens under a signature before they are heard.

* A valid offer whose answer the browser never applies ends as ``setup-failed`` within
  ``SETUP_S`` (10 s): it frees its slot, counts against no quota and is shown to the agent
  as an attempt in which nothing was heard.
* ``listen.ended`` says what was heard: the first and last packet handed out, ``heard_s``.
* The checkpoint covering ``listen.started`` is signed before the first packet leaves, and a
  clean shutdown signs a final checkpoint covering the last entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.audit import SqliteLedger
from live.listens.service import SETUP_S
from live.media.hub import EncodedPacket, ListenerQueue
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)

POLICY = """
version = "setup-1"
purposes = ["quality"]

[teams.billing]
agents = ["agent"]

[supervisors.sup]
teams = ["billing"]

[quotas]
per_agent_per_month = 100
per_supervisor_per_day = 2

[hours]
timezone = "UTC"
allowed = ["Mon-Sun 00:00-24:00"]

[consent]
caller = "not_required"

[notices]
default = "after_call"
unannounced_allowed = true

[disclosure]
listener_names = true

[retention]
days = 30
"""


async def started_call(server: RunningServer, call_id: str) -> TwilioSender:
    sender = TwilioSender(server.twilio_url, call_id, LOUD, LOUD, agent="agent", consent="granted")
    await sender.start()
    await wait_for(lambda: call_id in server.state.node.calls.roster.calls, 30, f"call {call_id}")
    return sender


async def get_json(server: RunningServer, user: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"}
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}{path}", headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_an_abandoned_offer_ends_as_setup_failed_frees_its_slot_and_counts_for_nothing(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    async with running_server(tmp_path / "data", policy_file=str(policy), listens_per_supervisor=2) as server:
        node = server.state.node
        sender = await started_call(server, "CA-abandon")
        abandoned = [Listener(server.base_url, server.tokens["sup"]) for _ in range(2)]
        heard = Listener(server.base_url, server.tokens["sup"])
        try:
            for browser in abandoned:  # 201 each, but the browser never applies the answer
                await browser.listen("CA-abandon", apply_answer=False)
            with pytest.raises(RuntimeError, match="too_many_listens"):  # both slots held
                await heard.listen("CA-abandon")
            await heard.close()
            heard = Listener(server.base_url, server.tokens["sup"])

            async def setup_failed() -> list[Any]:
                ended = await node.ledger.entries(kind="listen.ended")
                return ended if len(ended) == 2 else []

            ended = await wait_for(setup_failed, SETUP_S + 5, "two setup-failed ends")
            assert {e.fields["reason"] for e in ended} == {"setup-failed"}
            for entry in ended:
                assert entry.fields["duration_s"] <= SETUP_S + 1.0, entry.fields
                assert entry.fields["heard_s"] == 0
                assert entry.fields["first_packet_at"] is None and entry.fields["last_packet_at"] is None
            assert not node.listens.sessions

            # The slots are free, and the two attempts count against no quota
            # (per_supervisor_per_day = 2): a real listen is served and heard.
            await heard.listen("CA-abandon")
            await heard.wait_frames(25)
            assert await heard.stop() == 200
            [real] = await node.ledger.entries(kind="listen.ended", session_id=heard.session_id)
            fields = real.fields
            assert fields["reason"] == "stopped"
            assert fields["first_packet_at"] <= fields["last_packet_at"]
            assert fields["heard_s"] == pytest.approx(fields["last_packet_at"] - fields["first_packet_at"], abs=0.002)
            assert 0.3 < fields["heard_s"] <= fields["duration_s"]

            # The agent sees two attempts in which nothing was heard, and the real listen.
            history = (await get_json(server, "agent", "/api/agent/history"))["listens"]
            attempts = [row for row in history if row["attempt"]]
            assert len(history) == 3 and len(attempts) == 2, history
            assert all(row["end_reason"] == "setup-failed" and row["heard_s"] == 0 for row in attempts)
            notices = (await get_json(server, "agent", "/api/notices"))["notices"]
            texts = sorted(n["text"] for n in notices)
            assert len(texts) == 3
            assert sum("nothing was heard" in t for t in texts) == 2, texts
        finally:
            for browser in [*abandoned, heard]:
                await browser.close()
            await sender.stop()


async def test_the_start_is_signed_before_the_first_packet_and_shutdown_signs_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    signed_at_first_packet: list[int] = []
    original_get = ListenerQueue.get

    async def get(queue: ListenerQueue) -> EncodedPacket:
        packet = await original_get(queue)
        if queue.delivered == 1:  # the packet handed out now is this listener's first
            signed_at_first_packet.append(ledger.signed_size)
        return packet

    monkeypatch.setattr(ListenerQueue, "get", get)
    async with running_server(data) as server:
        ledger = server.state.node.ledger
        assert isinstance(ledger, SqliteLedger)
        sender = await started_call(server, "CA-signed")
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await listener.listen("CA-signed")
            await listener.wait_frames(10)
            [started] = await ledger.entries(kind="listen.started", session_id=listener.session_id)
            # Both legs' first packets left under a checkpoint covering the start.
            assert len(signed_at_first_packet) == 2
            assert min(signed_at_first_packet) > started.seq, (signed_at_first_packet, started.seq)
            assert await listener.stop() == 200
        finally:
            await listener.close()
            await sender.stop()
    # After a clean shutdown, the newest stored checkpoint covers every entry.
    reader = SqliteLedger(data / "ledger.sqlite3", checkpoint_interval_s=0, checkpoint_every=0)
    async with reader:
        entries = await reader.entries()
        newest = await reader.store.latest_checkpoint()
        assert newest is not None
        assert newest.tree_size == len(entries) == entries[-1].seq + 1
        assert any(e.kind == "listen.ended" for e in entries)
        assert (await reader.verify()).ok

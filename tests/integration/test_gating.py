"""Consent and payment pauses gate legs for real listeners at once, and go on record."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
CALLER = tone(660, 2.0, 0.3)


async def post(server, path: str, body: dict[str, object]) -> int:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}{path}", json=body, headers=headers) as response:
            return response.status


async def levels_after(listener: Listener, frames: int = 30) -> tuple[float, float]:
    """The levels once ``frames`` more frames (20 ms each) arrived on both legs."""
    heard = min(stats.frames for stats in listener.stats.values())
    await listener.wait_frames(heard + frames)
    return listener.stats["agent"].level(10), listener.stats["caller"].level(10)


async def test_consent_and_payment_pause_gate_the_legs(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-gate", LOUD, CALLER, consent="denied")
        await sender.start()
        node = server.state.node
        await wait_for(lambda: "CA-gate" in node.calls.roster.calls, 30, "the call")
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            answer = await listener.listen("CA-gate")
            assert answer["legs"][1] == {"leg": "caller", "mid": answer["legs"][1]["mid"], "audible": False, "reason": "consent-denied", "available": True}
            await listener.wait_frames(30)
            agent, caller = await levels_after(listener)
            assert agent > 0.2 and caller < 0.005, (agent, caller)

            assert await post(server, "/api/calls/CA-gate/consent", {"consent": "granted"}) == 200
            agent, caller = await levels_after(listener)
            assert agent > 0.2 and caller > 0.1, (agent, caller)

            assert await post(server, "/api/calls/CA-gate/pci", {"paused": True}) == 200
            agent, caller = await levels_after(listener)
            assert agent < 0.005 and caller < 0.005, (agent, caller)

            assert await post(server, "/api/calls/CA-gate/pci", {"paused": False}) == 200
            agent, caller = await levels_after(listener)
            assert agent > 0.2 and caller > 0.1, (agent, caller)

            assert await post(server, "/api/calls/CA-gate/consent", {"consent": "maybe"}) == 400
            assert await post(server, "/api/calls/CA-unknown/pci", {"paused": True}) == 404
            session_id = listener.session_id
            await listener.stop()

            async def ended() -> list[object]:
                return await node.ledger.entries(session_id=session_id, kind="listen.ended")

            await wait_for(ended, 30, "the end of the listen on record")
            entries = await node.ledger.entries(session_id=session_id)
            kinds = [(e.kind, e.fields.get("leg")) for e in entries]
            assert kinds == [
                ("listen.started", None),
                ("leg.unmuted", "caller"),
                ("leg.muted", "agent"),
                ("leg.muted", "caller"),
                ("leg.unmuted", "agent"),
                ("leg.unmuted", "caller"),
                ("listen.ended", None),
            ], kinds
        finally:
            await listener.close()
            await sender.stop()


async def test_refused_listens_are_on_record(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        sender = TwilioSender(server.twilio_url, "CA-refuse", LOUD, CALLER)
        await sender.start()
        node = server.state.node
        await wait_for(lambda: "CA-refuse" in node.calls.roster.calls, 30, "the call")
        try:
            for user, purpose in (("agent", "quality"), ("sup", "gossip")):
                listener = Listener(server.base_url, server.tokens[user])
                try:
                    await listener.listen("CA-refuse", purpose=purpose)
                    raise AssertionError("listening should have been refused")
                except RuntimeError:
                    pass
                finally:
                    await listener.close()
            refused = await node.ledger.entries(kind="listen.refused")
            assert [e.fields["code"] for e in refused] == ["role_forbidden", "purpose_not_allowed"]
            assert all(e.fields["agent_id"] == "agent-1" for e in refused)
        finally:
            await sender.stop()

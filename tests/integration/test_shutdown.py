"""Shutting down while a supervisor listens: the end is on record and the agent's notice kept."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 1.0, 0.5)


async def test_shutdown_with_a_listener_keeps_the_notice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        sender = TwilioSender(server.twilio_url, "CA-shutdown", LOUD, LOUD, agent="agent")
        await sender.start()
        await wait_for(lambda: "CA-shutdown" in server.state.node.calls.roster.calls, 30, "the call")
        listener = Listener(server.base_url, server.tokens["sup"])
        await listener.listen("CA-shutdown")
        await listener.wait_frames(10)
    try:
        async with running_server(data) as server:
            ended = await server.state.node.ledger.entries(kind="listen.ended")
            assert len(ended) == 1 and ended[0].fields["reason"] == "shutdown"
            headers = {"Authorization": f"Bearer {server.tokens['agent']}"}
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{server.base_url}/api/notices", headers=headers) as response:
                    notices = (await response.json())["notices"]
            assert len(notices) == 1, notices
    finally:
        await listener.close()
        await sender.stop()

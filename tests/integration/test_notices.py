"""Agent notices for real listens: the live indicator over the agent socket, after-call and
digest notices, delivery and acknowledgement on record, and notices kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)


def policy(tmp_path: Path, mode: str) -> str:
    digest = '\ndigest_schedule = "daily 18:00"' if mode == "digest" else ""
    path = tmp_path / f"policy-{mode}.toml"
    path.write_text(
        f"""
version = "n-1"
purposes = ["quality", "training"]

[teams.desk]
agents = ["agent"]

[supervisors.sup]
teams = ["desk"]

[quotas]
per_agent_per_month = 100
per_supervisor_per_day = 100

[hours]
timezone = "Europe/Berlin"
allowed = ["Mon-Sun 00:00-24:00"]

[consent]
caller = "required"

[notices]
default = "{mode}"
unannounced_allowed = true{digest}

[disclosure]
listener_names = true

[retention]
days = 30
""",
        encoding="utf-8",
    )
    return str(path)


async def api(
    server: RunningServer, method: str, path: str, user: str = "agent", language: str = ""
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"}
    if language:
        headers["Accept-Language"] = language
    async with aiohttp.ClientSession() as http, http.request(
        method, f"{server.base_url}{path}", headers=headers
    ) as response:
        return response.status, await response.json()


async def test_live_indicator_while_listened_to(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", policy_file=policy(tmp_path, "live")) as server:
        sender = TwilioSender(server.twilio_url, "CA-live", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{server.ws_url}/api/agent/events",
                headers={"Authorization": f"Bearer {server.tokens['agent']}"},
            )
            try:
                assert await ws.receive_json(timeout=5) == {
                    "type": "monitoring",
                    "active": False,
                    "listeners": [],
                    "listening": [],
                }
                await wait_call(server, "CA-live")
                await listener.listen("CA-live", purpose="training")
                assert await ws.receive_json(timeout=5) == {
                    "type": "monitoring",
                    "active": True,
                    "listeners": ["Sam Supervisor"],
                    "listening": [{"listener": "Sam Supervisor", "purpose": "training"}],
                }
                await listener.stop()
                assert (await ws.receive_json(timeout=5))["active"] is False
                status, body = await api(server, "GET", "/api/agent/history")
                assert status == 200
                [row] = body["listens"]
                assert row["purpose"] == "training" and row["listener"] == "Sam Supervisor"
                assert row["duration_s"] is not None and row["policy_version"] == "n-1"
                # Only agents have this socket.
                status, _ = await api(server, "GET", "/api/notices", user="sup")
                assert status == 403
            finally:
                await ws.close()
                await listener.close()
                await sender.stop()


async def test_after_call_notice_is_kept_until_seen_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    file = policy(tmp_path, "after_call")
    async with running_server(data, policy_file=file) as server:
        sender = TwilioSender(server.twilio_url, "CA-after", LOUD, LOUD, agent="agent")
        await sender.start()
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_call(server, "CA-after")
            await listener.listen("CA-after", purpose="training")
            await listener.wait_frames(10)
        finally:
            await listener.close()
            await sender.stop()  # the call ends: the listen ends with it
        await wait_for(
            lambda: server.state.node.ledger.entries(kind="listen.ended"), 30, "the listen's end"
        )
        assert await server.state.node.ledger.entries(kind="notice.delivered") == []

    async with running_server(data, policy_file=file) as server:
        status, body = await api(server, "GET", "/api/notices")
        assert status == 200
        [notice] = body["notices"]
        assert notice["mode"] == "after_call" and notice["seen_at"] is None
        assert "was listened to for" in notice["text"] and "purpose: Training" in notice["text"]
        assert "by Sam Supervisor" in notice["text"]
        # The same notice in the reader's language: the browser's, or ?lang= as the page picks.
        _, german = await api(server, "GET", "/api/notices", language="de-DE,de;q=0.9,en;q=0.8")
        [notice_de] = german["notices"]
        assert notice_de["id"] == notice["id"] and "Zweck: Schulung" in notice_de["text"]
        assert "mitgehört" in notice_de["text"] and "von: Sam Supervisor" in notice_de["text"]
        _, asked = await api(server, "GET", "/api/notices?lang=en", language="de")
        assert asked["notices"][0]["text"] == notice["text"]
        ledger = server.state.node.ledger
        [delivered] = await ledger.entries(kind="notice.delivered")
        assert delivered.fields["notice_id"] == notice["id"] and delivered.fields["channel"] == "page"

        status, _ = await api(server, "POST", f"/api/notices/{notice['id']}/seen", user="sup")
        assert status == 403
        status, body = await api(server, "POST", f"/api/notices/{notice['id']}/seen")
        assert status == 200 and body["notice"]["seen_at"] is not None
        [seen] = await ledger.entries(kind="notice.seen")
        assert seen.fields["notice_id"] == notice["id"]
        status, _ = await api(server, "POST", "/api/notices/nt-nope/seen")
        assert status == 404


async def test_digest_notice_summarises_listens(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", policy_file=policy(tmp_path, "digest")) as server:
        sender = TwilioSender(server.twilio_url, "CA-digest", LOUD, LOUD, agent="agent")
        await sender.start()
        try:
            await wait_call(server, "CA-digest")
            for purpose in ("quality", "training"):
                listener = Listener(server.base_url, server.tokens["sup"])
                try:
                    await listener.listen("CA-digest", purpose=purpose)
                    await listener.stop()
                finally:
                    await listener.close()
        finally:
            await sender.stop()
        _, body = await api(server, "GET", "/api/notices")
        assert body["notices"] == []  # nothing until the digest runs
        [made] = await server.state.node.notices.run_digest()
        _, body = await api(server, "GET", "/api/notices")
        [notice] = body["notices"]
        assert notice["id"] == made.notice_id and notice["mode"] == "digest"
        assert notice["text"].startswith("2 listens on your calls")
        assert await server.state.node.notices.run_digest() == []

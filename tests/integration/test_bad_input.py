"""Bad input on the ingest socket and the API gets a clear error; everyone else is served.

One good call is listened to for the whole test; at the end the listener must still be
receiving both legs and the call must still be in the roster.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender, media_message, start_message

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.1)
GOOD_SDP_ERRORS = {"bad_sdp"}


async def ingest_close(server: RunningServer, *frames: Any, headers: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Send frames on a fresh ingest socket; return its close code and reason."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(server.twilio_url, headers=headers, max_msg_size=0) as ws:
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
            message = await ws.receive(timeout=5)
            assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), message
            return ws.close_code, str(message.extra or "")


async def api(server: RunningServer, method: str, path: str, *, token: str | None = "sup", **kw: Any) -> tuple[int, Any]:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {server.tokens.get(token, token)}"
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{server.base_url}{path}", headers=headers, **kw) as response:
            return response.status, await response.json(content_type=None)


def error_code(body: Any) -> str:
    assert isinstance(body, dict) and set(body["error"]) >= {"code", "message"}, body
    return str(body["error"]["code"])


async def test_bad_input_is_refused_and_nothing_else_is_disturbed(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        good = TwilioSender(server.twilio_url, "CA-good", LOUD, QUIET, consent="granted")
        await good.start()
        monitor = server.state.monitor
        for _ in range(100):
            if "CA-good" in monitor.roster.calls:
                break
            await asyncio.sleep(0.02)
        listener = Listener(server.base_url, server.tokens["sup"])
        await listener.listen("CA-good")
        await listener.wait_frames(20)
        try:
            # --- ingest -------------------------------------------------------------
            code, reason = await ingest_close(server, "{not json")
            assert code == 4400 and "malformed JSON" in reason
            code, _ = await ingest_close(server, "[1,2,3]")
            assert code == 4400
            code, reason = await ingest_close(server, media_message("inbound", 0, bytes(160)))
            assert code == 4400 and "media before start" in reason
            code, _ = await ingest_close(server, b"\x00\x01binary")
            assert code == 4400
            code, _ = await ingest_close(server, "x" * (70 * 1024))
            assert code == 1009  # message too big
            code, reason = await ingest_close(server, start_message("CA-good"))
            assert code == 4409 and "already live" in reason

            # Unknown events are ignored, damaged media frames dropped and counted.
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(server.twilio_url) as ws:
                    await ws.send_json(start_message("CA-damaged"))
                    await ws.send_json({"event": "vendor-thing", "x": 1})
                    await ws.send_json({"event": "media", "media": {"track": "inbound", "payload": "***"}})
                    bad_size = base64.b64encode(bytes(9000)).decode()
                    await ws.send_json({"event": "media", "media": {"track": "inbound", "payload": bad_size}})
                    await ws.send_json(media_message("outbound", 1, bytes(160)))
                    await asyncio.sleep(0.2)
                    assert not ws.closed
                    assert "CA-damaged" in monitor.roster.calls
                    await ws.send_json({"event": "stop"})
            status, metrics = 0, ""
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{server.base_url}/metrics") as response:
                    status, metrics = response.status, await response.text()
            assert status == 200
            assert "live_ingest_frames_rejected_total 2" in metrics

            # --- API ----------------------------------------------------------------
            offer = {"sdp": "v=0\r\nnonsense", "type": "offer", "purpose": "quality"}
            status, body = await api(server, "POST", "/api/calls/CA-nope/listen", json=offer)
            assert (status, error_code(body)) == (404, "unknown_call")
            status, body = await api(server, "POST", "/api/calls/CA-damaged/listen", json=offer)
            assert (status, error_code(body)) == (404, "unknown_call")  # ended call
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", json=offer)
            assert (status, error_code(body)) == (400, "bad_sdp")
            one_leg = listener.pc.localDescription.sdp.split("m=audio")
            single = one_leg[0] + "m=audio" + one_leg[1]
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", json={**offer, "sdp": single})
            assert (status, error_code(body)) == (400, "bad_sdp")
            for purpose in (None, "gossip", 7):
                status, body = await api(server, "POST", "/api/calls/CA-good/listen", json={**offer, "purpose": purpose})
                assert status == 400
                assert error_code(body) in {"purpose_required", "purpose_not_allowed"}
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", data=b"not json")
            assert (status, error_code(body)) == (400, "bad_json")
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", data=b"[" * (70 * 1024))
            assert (status, error_code(body)) == (413, "too_large")
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", token=None, json=offer)
            assert (status, error_code(body)) == (401, "signed_out")
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", token="lt_forged", json=offer)
            assert (status, error_code(body)) == (401, "bad_token")
            status, body = await api(server, "POST", "/api/calls/CA-good/listen", token="agent", json=offer)
            assert (status, error_code(body)) == (403, "role_forbidden")
            status, body = await api(server, "DELETE", "/api/listens/ls_unknown")
            assert (status, error_code(body)) == (404, "unknown_session")
            status, body = await api(server, "DELETE", f"/api/listens/{listener.session_id}", token="sup2")
            assert (status, error_code(body)) == (403, "not_your_session")
            status, body = await api(server, "GET", "/api/nothing-here")
            assert (status, error_code(body)) == (404, "not_found")

            # --- roster socket --------------------------------------------------------
            headers = {"Authorization": f"Bearer {server.tokens['sup']}", "Origin": "https://evil.example"}
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{server.base_url}/api/events", headers=headers) as response:
                    assert response.status == 403
                    assert error_code(await response.json()) == "bad_origin"
                headers = {"Authorization": f"Bearer {server.tokens['sup']}"}
                async with http.ws_connect(f"{server.ws_url}/api/events", headers=headers) as ws:
                    assert (await ws.receive_json(timeout=5))["type"] == "snapshot"
                    await ws.send_str("please send me everything")
                    while True:
                        message = await ws.receive(timeout=5)
                        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                            break
                    assert ws.close_code == 4400

            # --- and the good call was never disturbed ---------------------------------
            before = {leg: s.frames for leg, s in listener.stats.items()}
            await asyncio.sleep(0.5)
            assert all(listener.stats[leg].frames > before[leg] + 10 for leg in before), listener.stats
            assert listener.stats["agent"].level(10) > 0.2
            assert "CA-good" in monitor.roster.calls
            assert len(monitor.sessions) == 1
        finally:
            await listener.stop()
            await good.stop()


async def test_ingest_needs_credentials_without_loopback_trust(tmp_path: Path) -> None:
    async with running_server(tmp_path, ingest_loopback_trust=False, ingest_secret="s3cret") as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.twilio_url.replace("ws://", "http://")) as response:
                assert response.status == 401
                assert error_code(await response.json()) == "ingest_unauthenticated"
            async with http.ws_connect(server.twilio_url, headers={"X-Live-Ingest-Secret": "s3cret"}) as ws:
                await ws.send_json(start_message("CA-authed"))
                for _ in range(100):
                    if "CA-authed" in server.state.monitor.roster.calls:
                        break
                    await asyncio.sleep(0.02)
                assert "CA-authed" in server.state.monitor.roster.calls
        assert server.state.ingest.refused == 1

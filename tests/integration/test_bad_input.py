"""Bad input on the ingest socket and the API gets a clear error; everyone else is served.

Every test runs against a real server while one good call is being listened to. After each
piece of bad input the listener must still be receiving both legs, and at the end the good
call must still be in the roster with its listen session intact.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiortc import RTCConfiguration, RTCPeerConnection

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender, media_message, start_message
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.1)
GOOD = "CA-good"
CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)


@dataclass
class ListenedCall:
    """A good call streaming in real time, heard by one supervisor, for the whole test."""

    server: RunningServer
    sender: TwilioSender
    listener: Listener
    seen: dict[str, int] = field(default_factory=dict)

    async def still_heard(self, after: str, frames: int = 5, timeout: float = 5.0) -> None:
        """Both legs received at least ``frames`` more frames since the last check."""
        before = dict(self.seen)
        stats = self.listener.stats
        counts = {leg: s.frames for leg, s in stats.items()}
        await wait_for(
            lambda: all(stats[leg].frames >= before.get(leg, 0) + frames for leg in stats),
            timeout,
            f"the listener kept hearing both legs after {after} (frames then: {counts})",
        )
        self.seen = {leg: s.frames for leg, s in stats.items()}

    async def assert_undisturbed(self) -> None:
        await self.still_heard("everything", frames=20)
        assert self.listener.stats["agent"].level(10) > 0.2
        assert self.listener.stats["caller"].level(10) > 0.02
        node = self.server.state.node
        assert GOOD in node.calls.roster.calls and GOOD in node.calls.local
        assert list(node.listens.sessions) == [self.listener.session_id]
        status, body = await api(self.server, "GET", "/api/calls")
        assert status == 200 and GOOD in [c["call_id"] for c in body["calls"]]


@contextlib.asynccontextmanager
async def listened_call(
    tmp_path: Path, headers: dict[str, str] | None = None, **settings: Any
) -> AsyncIterator[ListenedCall]:
    async with running_server(tmp_path, **settings) as server:
        sender = TwilioSender(server.twilio_url, GOOD, LOUD, QUIET, consent="granted")
        await sender.start(headers=headers)
        listener = Listener(server.base_url, server.tokens["sup"])
        try:
            await wait_for(
                lambda: GOOD in server.state.node.calls.roster.calls,
                30,
                "good call announced",
            )
            await listener.listen(GOOD)
            await listener.wait_frames(20)
            scene = ListenedCall(server, sender, listener)
            await scene.still_heard("setup")
            yield scene
        finally:
            await listener.close()
            await sender.stop()


# --- helpers ------------------------------------------------------------------------------


async def ingest_close(
    server: RunningServer, *frames: Any, headers: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """Send frames on a fresh ingest socket; return the close code and reason it gets."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(server.twilio_url, headers=headers, max_msg_size=0) as ws,
    ):
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        message = await ws.receive(timeout=5)
        assert message.type == WSMsgType.CLOSE, message
        return message.data, str(message.extra or "")


async def api(
    server: RunningServer, method: str, path: str, *, token: str | None = "sup", **kw: Any
) -> tuple[int, Any]:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {server.tokens.get(token, token)}"
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{server.base_url}{path}", headers=headers, **kw) as response,
    ):
        return response.status, await response.json(content_type=None)


def error_code(body: Any) -> str:
    """The public error contract: ``{"error": {"code", "message"}}``."""
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    return str(error["code"])


async def metrics(server: RunningServer) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.base_url}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def upgrade_headers(**extra: str) -> dict[str, str]:
    """What a browser sends to open a WebSocket, so the refusal is seen as a client sees it."""
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        **extra,
    }


async def offer_sdp(legs: int = 2, direction: str = "recvonly") -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for _ in range(legs):
            pc.addTransceiver("audio", direction=direction)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def media_json(**media: Any) -> dict[str, Any]:
    message = media_message("inbound", 1, bytes(160))
    message["media"].update(media)
    return message


# --- ingest -------------------------------------------------------------------------------


async def test_structural_violations_close_the_ingest_socket(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        server = scene.server
        unsupported = start_message("CA-alaw")
        unsupported["start"]["mediaFormat"]["encoding"] = "audio/x-alaw"
        no_sid = start_message("CA-x")
        del no_sid["start"]["callSid"]
        non_ascii = start_message("CA-utf8")
        non_ascii["start"]["mediaFormat"]["encoding"] = "x" + "é" * 80  # reason is cut at 120 bytes
        cases: list[tuple[str, tuple[Any, ...], int, str]] = [
            ("malformed JSON", ("{not json",), 4400, "malformed JSON"),
            ("a JSON array", ("[1,2,3]",), 4400, "must be an object"),
            ("no event", ('{"streamSid":"MZ1"}',), 4400, "no event"),
            (
                "media before start",
                (media_message("inbound", 0, bytes(160)),),
                4400,
                "media before start",
            ),
            (
                "damaged media before start",
                (media_json(payload="***"),),
                4400,
                "media before start",
            ),
            ("binary frame", (b"\x00\x01binary",), 4400, "JSON text"),
            ("unsupported encoding", (unsupported,), 4400, "unsupported media encoding"),
            ("start without callSid", (no_sid,), 4400, "callSid"),
            (
                "a second start",
                (start_message("CA-twice"), start_message("CA-twice2")),
                4400,
                "second start",
            ),
            ("a non-ASCII reason", (non_ascii,), 4400, "unsupported media encoding 'x"),
            ("duplicate callSid", (start_message(GOOD),), 4409, "already live"),
        ]
        errors_before = (await metrics(server))["live_ingest_protocol_errors_total"]
        for what, frames, expected_code, expected_reason in cases:
            code, reason = await ingest_close(server, *frames)
            assert (code, expected_reason in reason) == (expected_code, True), (what, code, reason)
            await scene.still_heard(what)
        after = await metrics(server)
        assert after["live_ingest_protocol_errors_total"] == errors_before + len(cases)
        # The call the second start would have opened ended with its socket.
        await wait_for(
            lambda: "CA-twice" not in server.state.node.calls.roster.calls,
            30,
            "CA-twice gone",
        )
        assert sorted(server.state.node.calls.roster.calls) == [GOOD]
        await scene.assert_undisturbed()


async def test_oversized_ingest_message_closes_1009(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        code, _ = await ingest_close(scene.server, "x" * (64 * 1024 + 1))
        assert code == 1009  # aiohttp's max_msg_size: RFC 6455 "message too big"
        await scene.still_heard("an oversized message before start")
        big = media_message("inbound", 1, bytes(50 * 1024))  # ~68 KiB of base64 after start
        code, _ = await ingest_close(scene.server, start_message("CA-big"), big)
        assert code == 1009
        await wait_for(
            lambda: "CA-big" not in scene.server.state.node.calls.roster.calls,
            30,
            "CA-big gone",
        )
        await scene.assert_undisturbed()


async def test_damaged_frames_are_dropped_and_counted_while_the_call_goes_on(
    tmp_path: Path,
) -> None:
    async with listened_call(tmp_path) as scene:
        server, node = scene.server, scene.server.state.node
        rejected = (await metrics(server))["live_ingest_frames_rejected_total"]
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(server.twilio_url) as ws,
        ):
            await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            # an unknown event, even before start, is ignored
            await ws.send_json({"event": "vendor-hello", "x": 1})
            await ws.send_json(start_message("CA-damaged"))
            await wait_for(lambda: "CA-damaged" in node.calls.local, 30, "CA-damaged announced")
            media = node.calls.local["CA-damaged"]
            damaged = [
                ("bad base64", media_json(payload="***")),
                ("bad base64 padding", media_json(payload="AAA")),
                ("empty payload", media_json(payload="")),
                (
                    "oversized payload",
                    media_json(payload=base64.b64encode(bytes(8001)).decode()),
                ),
                ("unknown track", media_json(track="sideways")),
                ("track not a string", media_json(track=["inbound"])),
                ("timestamp not a number", media_json(timestamp="soon")),
            ]
            counted = server.state.ingest
            for n, (what, message) in enumerate(damaged, start=1):
                await ws.send_json(message)
                await wait_for(
                    lambda n=n: counted.rejected_frames == rejected + n,
                    30,
                    f"{what} counted",
                )
                # ... and visible to an operator while the call is still running
                assert (await metrics(server))["live_ingest_frames_rejected_total"] == rejected + n
                assert not ws.closed, what
                await scene.still_heard(what)
            for what in ("vendor-thing", "mark", "dtmf"):  # ignored, not counted
                await ws.send_json({"event": what, what: {"name": "x", "digit": "1"}})
            for chunk in range(3):
                await ws.send_json(media_message("outbound", chunk, bytes(160)))
                await ws.send_json(media_message("inbound", chunk, bytes(160)))
            await wait_for(
                lambda: media.agent.received == 3 and media.caller.received == 3,
                30,
                "good frames",
            )
            assert not ws.closed and "CA-damaged" in node.calls.roster.calls
            assert (await metrics(server))["live_ingest_frames_rejected_total"] == rejected + len(
                damaged
            )
            await ws.send_json({"event": "stop", "stop": {}})
            await wait_for(
                lambda: "CA-damaged" not in node.calls.roster.calls,
                30,
                "CA-damaged ended",
            )
        await scene.assert_undisturbed()


async def test_ingest_needs_credentials_without_loopback_trust(tmp_path: Path) -> None:
    secret = {"X-Live-Ingest-Secret": "s3cret"}
    async with listened_call(
        tmp_path, headers=secret, ingest_loopback_trust=False, ingest_secret="s3cret"
    ) as scene:
        server = scene.server
        refused = server.state.ingest.refused
        async with aiohttp.ClientSession() as http:
            for headers in (
                {},
                {"X-Live-Ingest-Secret": "wrong"},
                {"Authorization": "Bearer wrong"},
            ):
                with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                    await http.ws_connect(server.twilio_url, headers=headers)
                assert caught.value.status == 401
                async with http.get(
                    server.twilio_url.replace("ws://", "http://"),
                    headers=upgrade_headers(**headers),
                ) as response:
                    assert response.status == 401
                    assert error_code(await response.json()) == "ingest_unauthenticated"
                await scene.still_heard(f"an ingest upgrade with {headers or 'no credentials'}")
            assert server.state.ingest.refused == refused + 6
            for n, headers in enumerate((secret, {"Authorization": "Bearer s3cret"})):
                call_sid = f"CA-authed-{n}"
                async with http.ws_connect(server.twilio_url, headers=headers) as ws:
                    await ws.send_json(start_message(call_sid))
                    await wait_for(
                        lambda call_sid=call_sid: call_sid in server.state.node.calls.roster.calls,
                        30,
                        f"{call_sid} live",
                    )
                    await ws.send_json({"event": "stop"})
        values = await metrics(server)
        assert values['live_ingest_connections_total{result="refused"}'] == refused + 6
        await scene.assert_undisturbed()


# --- API ----------------------------------------------------------------------------------


async def test_listen_errors(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        server = scene.server
        good_offer = {"sdp": await offer_sdp(), "type": "offer", "purpose": "quality"}

        async def refused(
            call_id: str, expected: tuple[int, str], *, what: str, **kw: Any
        ) -> dict[str, Any]:
            status, body = await api(server, "POST", f"/api/calls/{call_id}/listen", **kw)
            assert (status, error_code(body)) == expected, (what, body)
            await scene.still_heard(what)
            return dict(body["error"])

        await refused("CA-nope", (404, "unknown_call"), what="unknown call", json=good_offer)

        # A call that just ended is known: the refusal says so (410) and is on record.
        short = TwilioSender(server.twilio_url, "CA-short", LOUD, QUIET)
        await short.start()
        await wait_for(
            lambda: "CA-short" in server.state.node.calls.roster.calls,
            30,
            "CA-short live",
        )
        await short.stop()
        await wait_for(
            lambda: "CA-short" not in server.state.node.calls.roster.calls,
            30,
            "CA-short ended",
        )
        await refused("CA-short", (410, "call_ended"), what="ended call", json=good_offer)

        for what, sdp in (
            ("malformed SDP", "v=0\r\nnonsense"),
            ("empty SDP", ""),
            ("SDP not a string", 42),
        ):
            await refused(GOOD, (400, "bad_sdp"), what=what, json={**good_offer, "sdp": sdp})
        error = await refused(
            GOOD,
            (400, "bad_sdp"),
            what="one m-line",
            json={**good_offer, "sdp": await offer_sdp(1)},
        )
        assert "two audio" in error["message"]
        error = await refused(
            GOOD,
            (400, "bad_sdp"),
            what="send-only offer",
            json={**good_offer, "sdp": await offer_sdp(2, "sendonly")},
        )
        assert "receive" in error["message"]
        await refused(
            GOOD,
            (400, "bad_sdp"),
            what="an answer, not an offer",
            json={**good_offer, "type": "answer"},
        )

        # A bad purpose is refused by the policy, with its reason as the code.
        without_purpose = {k: v for k, v in good_offer.items() if k != "purpose"}
        await refused(GOOD, (400, "purpose_required"), what="no purpose", json=without_purpose)
        await refused(
            GOOD,
            (400, "purpose_required"),
            what="empty purpose",
            json={**good_offer, "purpose": ""},
        )
        await refused(
            GOOD,
            (400, "purpose_required"),
            what="purpose not a string",
            json={**good_offer, "purpose": 7},
        )
        await refused(
            GOOD,
            (400, "purpose_not_allowed"),
            what="unknown purpose",
            json={**good_offer, "purpose": "gossip"},
        )

        await refused(GOOD, (400, "bad_json"), what="non-JSON body", data=b"not json")
        await refused(GOOD, (400, "bad_json"), what="JSON array body", json=[good_offer])
        await refused(GOOD, (400, "bad_json"), what="deeply nested JSON", data=b"[" * 20000)
        await refused(
            GOOD, (413, "too_large"), what="body over 64 KiB", data=b" " * (64 * 1024 + 1)
        )

        async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
            for offset in range(0, len(body), size):
                yield body[offset : offset + size]
                await asyncio.sleep(0.01)

        await refused(
            GOOD,
            (413, "too_large"),
            what="chunked body over 64 KiB",
            data=chunks(b" " * (70 * 1024), 8192),
        )

        await refused(GOOD, (401, "signed_out"), what="no credentials", token=None, json=good_offer)
        await refused(
            GOOD, (401, "bad_token"), what="wrong token", token="lt_forged", json=good_offer
        )
        await refused(
            GOOD,
            (401, "bad_token"),
            what="not a bearer token",
            token=None,
            headers={"Authorization": "Basic c3VwOnN1cA=="},
            json=good_offer,
        )
        await refused(
            GOOD, (403, "role_forbidden"), what="agent role", token="agent", json=good_offer
        )
        await refused(
            GOOD, (403, "role_forbidden"), what="auditor role", token="auditor", json=good_offer
        )

        # A body that arrives in pieces is read whole: this one is a good offer and is served.
        body = json.dumps({**good_offer, "sdp": await offer_sdp()}).encode()
        status, answer = await api(
            server, "POST", f"/api/calls/{GOOD}/listen", data=chunks(body, 700)
        )
        assert status == 201, answer
        status, stopped = await api(server, "DELETE", f"/api/listens/{answer['session_id']}")
        assert status == 200 and stopped["ended"] is True
        await scene.assert_undisturbed()


async def test_session_and_roster_socket_errors(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        server, session_id = scene.server, scene.listener.session_id
        for what, path, token, expected in (
            (
                "DELETE an unknown session",
                "/api/listens/ls_unknown",
                "sup",
                (404, "unknown_session"),
            ),
            (
                "DELETE someone else's session",
                f"/api/listens/{session_id}",
                "sup2",
                (403, "not_your_session"),
            ),
            ("DELETE without credentials", f"/api/listens/{session_id}", None, (401, "signed_out")),
            ("DELETE as an agent", f"/api/listens/{session_id}", "agent", (403, "role_forbidden")),
        ):
            status, body = await api(server, "DELETE", path, token=token)
            assert (status, error_code(body)) == expected, (what, body)
            await scene.still_heard(what)
        status, body = await api(server, "GET", "/api/nothing-here")
        assert (status, error_code(body)) == (404, "not_found")
        status, body = await api(server, "PUT", "/api/calls")
        assert (status, error_code(body)) == (405, "method_not_allowed")

        events_url = f"{server.ws_url}/api/events"
        auth = {"Authorization": f"Bearer {server.tokens['sup']}"}
        async with aiohttp.ClientSession() as http:
            foreign = {**auth, "Origin": "https://evil.example"}
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(events_url, headers=foreign)
            assert caught.value.status == 403
            async with http.get(
                f"{server.base_url}/api/events", headers=upgrade_headers(**foreign)
            ) as response:
                assert response.status == 403 and error_code(await response.json()) == "bad_origin"
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(events_url)
            assert caught.value.status == 401
            await scene.still_heard("roster sockets refused")

            own_origin = {**auth, "Origin": server.base_url}
            async with http.ws_connect(events_url, headers=own_origin) as ws:
                snapshot = await ws.receive_json(timeout=5)
                assert snapshot["type"] == "snapshot" and [
                    c["call_id"] for c in snapshot["calls"]
                ] == [GOOD]
                await ws.send_str('"ping"')
                assert await ws.receive_json(timeout=5) == {"type": "pong"}
                await ws.send_str("please send me everything")
                message = await ws.receive(timeout=5)
                while message.type not in CLOSED:  # roster events may come first
                    message = await ws.receive(timeout=5)
                assert message.type == WSMsgType.CLOSE and message.data == 4400, message
                assert "unknown message type" in str(message.extra)
            async with http.ws_connect(events_url, headers=auth) as ws:
                await ws.receive_json(timeout=5)
                await ws.send_bytes(b"\x00")
                message = await ws.receive(timeout=5)
                while message.type not in CLOSED:
                    message = await ws.receive(timeout=5)
                assert message.data == 4400
        await scene.assert_undisturbed()


async def test_each_sending_system_has_its_own_ingest_secret(tmp_path: Path) -> None:
    """Per-source secrets: each works on its own; a withdrawn one is refused and counted."""
    async with running_server(
        tmp_path, ingest_loopback_trust=False, ingest_secrets="sbc-a=alpha-secret,sbc-b=beta-secret"
    ) as server, aiohttp.ClientSession() as http:
        for n, secret in enumerate(("alpha-secret", "beta-secret")):
            call_sid = f"CA-source-{n}"
            async with http.ws_connect(server.twilio_url, headers={"X-Live-Ingest-Secret": secret}) as ws:
                await ws.send_json(start_message(call_sid))
                await wait_for(
                    lambda call_sid=call_sid: call_sid in server.state.node.calls.roster.calls,
                    30,
                    f"{call_sid} started",
                )
        refused = server.state.ingest.refused
        for offered in ("sbc-a=alpha-secret", "alpha", "gamma-secret"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(server.twilio_url, headers={"X-Live-Ingest-Secret": offered})
            assert caught.value.status == 401
        assert server.state.ingest.refused == refused + 3


def test_a_malformed_ingest_secret_list_stops_the_server_at_start(tmp_path: Path) -> None:
    from live.config import load_settings
    from live.errors import ConfigError
    from live.server import create_app

    with pytest.raises(ConfigError, match="source=secret"):
        create_app(load_settings({}, None, data_dir=tmp_path, ingest_secrets="no-equals-sign"))

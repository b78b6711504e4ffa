"""Genesys AudioHook v2 into a real server, spoken by a client written from the protocol.

Every message type, the connection probe, pause/resume driven by the policy, ``discarded``,
reconnection with ``continuedSessions``, the handshake's API key and HTTP message signature
(and each way a signature can be wrong), and pacing of 200 ms frames at the listener.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from live.media.hub import EncodedPacket
from tests.support.audiohook import (
    L16_STEREO,
    PCMU_STEREO,
    PROBE_CONVERSATION,
    AudioHookClient,
    voices,
)
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.wait import wait_for

SECRET = b"0123456789abcdef0123456789abcdef"
KEYS = {
    "audiohook_api_keys": "genesys=test-key,other=other-key",
    "audiohook_client_secrets": f"genesys={base64.b64encode(SECRET).decode()}",
}


def url(server: RunningServer) -> str:
    return f"{server.ws_url}/ingest/audiohook"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path, ingest_loopback_trust=False, audiohook_reconnect_grace_s=1, **KEYS) as running:
        yield running


async def connected(server: RunningServer, **options: Any) -> AudioHookClient:
    client = AudioHookClient(url(server), api_key="test-key", secret=SECRET, **options)
    await client.connect()
    return client


async def pci(server: RunningServer, call_id: str, paused: bool) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.base_url}/api/calls/{call_id}/pci",
        json={"paused": paused},
        headers={"Authorization": f"Bearer {server.tokens['admin']}"},
    ) as response:
        assert response.status == 200, await response.text()


async def consent(server: RunningServer, call_id: str, value: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.base_url}/api/calls/{call_id}/consent",
        json={"consent": value},
        headers={"Authorization": f"Bearer {server.tokens['admin']}"},
    ) as response:
        assert response.status == 200, await response.text()


def record_pts(server: RunningServer, call_id: str, leg: str = "agent") -> list[int]:
    """Every pts the call's leg publishes from now on."""
    seen: list[int] = []
    source = server.state.node.calls.local[call_id].leg(leg)  # type: ignore[index]

    def tap(_leg: object, packet: EncodedPacket) -> None:
        seen.append(packet.pts)

    source.taps.append(tap)
    return seen


# --- the session: open, stream, every message, close ------------------------------------------


@pytest.mark.parametrize("media", [PCMU_STEREO, L16_STEREO], ids=["PCMU", "L16"])
async def test_both_legs_are_heard_and_the_session_closes(server: RunningServer, media: dict[str, Any]) -> None:
    conversation = str(uuid.uuid4())
    client = await connected(server)
    listener = Listener(server.base_url, server.tokens["sup"])
    try:
        opened = await client.open(
            conversation, [media], custom_config={"agentId": "agent-7", "queue": "billing", "consent": "granted"}
        )
        assert opened["seq"] == 1 and opened["clientseq"] == 1 and opened["id"] == client.session_id
        assert opened["parameters"]["media"] == [media]
        assert opened["parameters"]["startPaused"] is False
        call = server.state.node.calls.roster.calls[conversation]  # type: ignore[index]
        assert (call.agent_id, call.queue, call.consent.value, call.source) == ("agent-7", "billing", "granted", "audiohook")
        assert call.attributes["organization_id"] == client.organization_id
        agent, caller = voices(media["format"])
        client.start_streaming(agent, caller)
        await listener.listen(conversation)
        await listener.wait_frames(60, timeout=15)
        loud, quiet = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert loud > 0.2, loud
        assert 0.01 < quiet < loud / 4, (loud, quiet)
        closed = await client.close()
        assert closed["clientseq"] == client.seq and closed["seq"] == opened["seq"] + 1
        await wait_for(lambda: conversation not in server.state.node.calls.roster.calls, 30, "the call to end")
        await wait_for(lambda: not server.state.node.listens.sessions, 30, "the listen to end")
    finally:
        await listener.close()
        await client.aclose()


async def test_pcmu_is_preferred_and_l16_chosen_when_alone(server: RunningServer) -> None:
    offered = [
        {"type": "audio", "format": "opus", "channels": ["external", "internal"], "rate": 48000},
        L16_STEREO,
        PCMU_STEREO,
        {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
    ]
    client = await connected(server)
    try:
        assert (await client.open(str(uuid.uuid4()), offered))["parameters"]["media"] == [PCMU_STEREO]
    finally:
        await client.aclose()
    client = await connected(server)
    try:
        assert (await client.open(str(uuid.uuid4()), offered[:2]))["parameters"]["media"] == [L16_STEREO]
    finally:
        await client.aclose()


async def test_ping_update_error_and_sequence_numbers(server: RunningServer) -> None:
    client = await connected(server)
    try:
        await client.open(str(uuid.uuid4()))
        await client.send("ping", {"rtt": "PT0.012S"})
        pong = await client.expect("pong")
        assert pong["seq"] == 2 and pong["clientseq"] == 2 and pong["parameters"] == {}
        await client.send("update", {"language": "en-US"})
        updated = await client.expect("updated")
        assert updated["seq"] == 3 and updated["clientseq"] == 3
        await client.send("error", {"code": 429, "message": "rate limited", "retryAfter": "PT2S"})
        await client.send("ping")
        assert (await client.expect("pong", after=2))["clientseq"] == 5
        counters = server.app[ingest_key()].calls.counters  # type: ignore[index]
        assert counters.client_errors == 1
        async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/metrics") as response:
            metrics = await response.text()
        assert 'live_audiohook_events_total{event="client_errors"} 1' in metrics
        assert "live_audiohook_sessions 1" in metrics
    finally:
        await client.aclose()


def ingest_key() -> Any:
    from live.server.ingest_audiohook import AUDIOHOOK

    return AUDIOHOOK


async def test_a_connection_probe_gets_opened_and_no_call(server: RunningServer) -> None:
    client = await connected(server)
    try:
        opened = await client.open(PROBE_CONVERSATION)
        assert opened["parameters"]["media"] == [PCMU_STEREO]
        await client.send_raw(b"\xff" * 320)  # audio on a probe is ignored
        assert server.state.node.calls.roster.calls == {}
        assert (await client.close())["type"] == "closed"
        await wait_for(lambda: client.closed_by_server.is_set(), 30, "the server to close the probe's socket")
        assert server.state.node.calls.roster.calls == {}
        assert server.app[ingest_key()].calls.counters.probes == 1  # type: ignore[index]
    finally:
        await client.aclose()


async def test_discarded_audio_leaves_a_gap_in_timestamps(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    client = await connected(server)
    try:
        await client.open(conversation, custom_config={"consent": "granted"})
        pts = record_pts(server, conversation)
        agent, caller = voices("PCMU")
        await client.send_frame(client.frame(caller[:1600], agent[:1600]))  # 200 ms
        await wait_for(lambda: len(pts) == 10, 30, "the first frame's packets")
        await client.send("discarded", {"start": "PT0.2S", "discarded": "PT1.5S"})
        client.position_s += 1.5
        await client.send_frame(client.frame(caller[:1600], agent[:1600]))
        await wait_for(lambda: len(pts) == 20, 30, "the second frame's packets")
        assert pts[:10] == list(range(0, 1600, 160))
        assert pts[10] == 1600 + 12000  # 1.5 s of 8 kHz skipped
        assert pts[10:] == list(range(13600, 13600 + 1600, 160))
        await client.close()
    finally:
        await client.aclose()


# --- the policy pauses the stream -------------------------------------------------------------


async def test_payment_pause_pauses_the_client_and_resume_resumes_it(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    client = await connected(server)
    try:
        await client.open(conversation, custom_config={"consent": "granted"})
        agent, caller = voices("PCMU")
        client.start_streaming(agent, caller)
        pts = record_pts(server, conversation)
        await wait_for(lambda: len(pts) >= 20, 30, "audio before the pause")
        await pci(server, conversation, True)
        pause = await client.expect("pause")
        assert pause["parameters"] == {}
        await wait_for(lambda: client.paused, 30, "the client to pause")
        await wait_for(lambda: client.frames_skipped >= 3, 30, "the client to hold back 600 ms of audio")
        sent = client.frames_sent
        await pci(server, conversation, False)
        await client.expect("resume")
        await wait_for(lambda: client.frames_sent > sent + 2, 30, "audio after the resume")
        counters = server.app[ingest_key()].calls.counters  # type: ignore[index]
        assert (counters.pauses_sent, counters.resumes_sent) == (1, 1)
        before = len(pts)
        await wait_for(lambda: len(pts) > before + 5, 30, "packets after the resume")
        assert pts == sorted(pts)
        # the span the client discarded while paused became a gap, not a squeeze
        jumps = [b - a for a, b in zip(pts, pts[1:]) if b - a != 160]
        assert jumps and max(jumps) > 160 * 5, jumps
        await client.close()
    finally:
        await client.aclose()


async def test_consent_withdrawn_pauses_only_a_caller_only_stream(server: RunningServer) -> None:
    both = str(uuid.uuid4())
    caller_only = str(uuid.uuid4())
    stereo = await connected(server)
    mono = await connected(server)
    try:
        await stereo.open(both, custom_config={"consent": "granted"})
        await mono.open(
            caller_only,
            [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}],
            custom_config={"consent": "granted"},
        )
        await consent(server, both, "denied")
        await consent(server, caller_only, "denied")
        await mono.expect("pause")
        await stereo.send("ping")
        await stereo.expect("pong")
        assert "pause" not in stereo.types()  # the agent may still be heard
        await consent(server, caller_only, "granted")
        await mono.expect("resume")
    finally:
        await stereo.aclose()
        await mono.aclose()


async def test_a_call_that_may_not_be_heard_starts_paused(server: RunningServer) -> None:
    client = await connected(server)
    try:
        opened = await client.open(
            str(uuid.uuid4()),
            [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}],
            custom_config={"consent": "denied"},
        )
        assert opened["parameters"]["startPaused"] is True
    finally:
        await client.aclose()


# --- reconnecting ----------------------------------------------------------------------------


async def test_reconnect_with_continued_sessions_continues_the_call(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    first = await connected(server)
    listener = Listener(server.base_url, server.tokens["sup"])
    second: AudioHookClient | None = None
    try:
        await first.open(conversation, custom_config={"consent": "granted", "agentId": "agent-9"})
        agent, caller = voices("PCMU")
        first.start_streaming(agent, caller)
        await listener.listen(conversation)
        await listener.wait_frames(20, timeout=15)
        second = await connected(server, organization_id=first.organization_id)
        opened = await second.open(
            conversation,
            custom_config={"consent": "granted", "agentId": "agent-9"},
            continued_sessions=[{"id": first.session_id, "serverseq": first.serverseq, "clientseq": first.seq}],
        )
        assert opened["parameters"]["media"] == [PCMU_STEREO]
        await first.close("reconnect")
        second.start_streaming(agent, caller)
        frames = listener.stats["agent"].frames
        await wait_for(lambda: listener.stats["agent"].frames > frames + 50, 30, "audio through the new session")
        node = server.state.node
        assert list(node.calls.local) == [conversation]  # one call, not a duplicate
        assert len(node.listens.sessions) == 1 and not next(iter(node.listens.sessions.values())).ended
        counters = server.app[ingest_key()].calls.counters  # type: ignore[index]
        assert (counters.calls_started, counters.calls_continued) == (1, 1)
        await second.close()
        await wait_for(lambda: conversation not in node.calls.roster.calls, 30, "the call to end")
    finally:
        await listener.close()
        await first.aclose()
        if second is not None:
            await second.aclose()


async def test_a_dropped_socket_waits_for_its_successor_then_ends(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    node = server.state.node
    first = await connected(server)
    await first.open(conversation)
    await first.aclose()  # gone without close: the call waits (grace of 1 s here)
    second = await connected(server, organization_id=first.organization_id)
    try:
        await second.open(conversation, continued_sessions=[{"id": first.session_id, "serverseq": 1, "clientseq": 1}])
        assert conversation in node.calls.local
    finally:
        await second.aclose()
    await wait_for(lambda: conversation not in node.calls.roster.calls, 30, "the call to end after the grace")


async def test_shutdown_asks_clients_to_reconnect(tmp_path: Path) -> None:
    async with running_server(tmp_path, **KEYS) as server:
        client = await connected(server)
        await client.open(str(uuid.uuid4()))
        client.auto_close_on_disconnect = False
        shutdown = asyncio.create_task(server.app.shutdown())  # type: ignore[union-attr]
        reconnect = await client.expect("reconnect")
        assert reconnect["parameters"]["info"]
        await shutdown
        await client.close("reconnect")
        await client.aclose()


# --- protocol errors: disconnect with the reason ------------------------------------------------


async def test_a_wrong_seq_is_answered_with_disconnect_then_closed(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    client = await connected(server)
    try:
        await client.open(conversation)
        client.seq += 1  # skip one
        await client.send("ping")
        disconnect = await client.expect("disconnect")
        assert disconnect["parameters"]["reason"] == "error"
        assert "seq" in disconnect["parameters"]["info"]
        await client.expect("closed")  # the client answered close
        await wait_for(lambda: client.closed_by_server.is_set(), 30, "the socket to close")
        await wait_for(lambda: conversation not in server.state.node.calls.roster.calls, 30, "the call to end")
    finally:
        await client.aclose()


async def test_organization_mismatch_is_unauthorized(server: RunningServer) -> None:
    client = await connected(server)
    try:
        client.organization_id = str(uuid.uuid4())  # the open names another organisation
        await client.send("open", {
            "organizationId": client.organization_id, "conversationId": str(uuid.uuid4()),
            "participant": {}, "media": [PCMU_STEREO],
        })
        disconnect = await client.expect("disconnect")
        assert disconnect["parameters"]["reason"] == "unauthorized"
        assert server.state.node.calls.roster.calls == {}
    finally:
        await client.aclose()


# --- the handshake: API key and HTTP message signature ----------------------------------------


async def test_a_valid_signature_is_accepted(server: RunningServer) -> None:
    client = await connected(server)
    try:
        await client.open(str(uuid.uuid4()))
    finally:
        await client.aclose()


async def test_a_key_without_a_secret_needs_no_signature(server: RunningServer) -> None:
    client = AudioHookClient(url(server), api_key="other-key")
    await client.connect()
    await client.aclose()


@pytest.mark.parametrize(
    "case",
    ["no-key", "wrong-key", "wrong-secret", "unsigned", "component-missing", "expired", "future", "keyid", "tampered"],
)
async def test_each_wrong_credential_is_refused_with_401(server: RunningServer, case: str) -> None:
    import time

    key, secret, options, headers = "test-key", SECRET, {}, {}
    if case == "no-key":
        key = None  # type: ignore[assignment]
    elif case == "wrong-key":
        key = "not-a-key"
    elif case == "wrong-secret":
        secret = b"another secret, same length....."
    elif case == "unsigned":
        options = {"signed": False}
    elif case == "component-missing":
        options = {"components": ("@request-target", "@authority", "audiohook-organization-id",
                                  "audiohook-session-id", "x-api-key")}
    elif case == "expired":
        options = {"created": int(time.time()) - 120, "expires": int(time.time()) - 90}
    elif case == "future":
        options = {"created": int(time.time()) + 60}
    elif case == "keyid":
        options = {"keyid": "other-key"}
    elif case == "tampered":
        headers = {"Audiohook-Session-Id": str(uuid.uuid4())}  # signed with another session id
    client = AudioHookClient(url(server), api_key=key, secret=secret)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.connect(headers, **options)
    assert caught.value.status == 401
    assert server.state.ingest.refused >= 1


async def test_a_nonce_is_accepted_once(server: RunningServer) -> None:
    nonce = "bm9uY2Utbm9uY2Utbm9uY2U="
    first = AudioHookClient(url(server), api_key="test-key", secret=SECRET)
    await first.connect(nonce=nonce)
    await first.aclose()
    again = AudioHookClient(url(server), api_key="test-key", secret=SECRET)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await again.connect(nonce=nonce)
    assert caught.value.status == 401


async def test_a_refusal_is_a_json_error_and_logs_no_secret(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    headers = {
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(), "X-API-KEY": "guessed-key-123",
    }
    async with aiohttp.ClientSession() as http, http.get(
        f"{server.base_url}/ingest/audiohook", headers=headers
    ) as response:
        assert response.status == 401
        body = await response.json()
    assert body["error"]["code"] == "ingest_unauthenticated"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "127.0.0.1" in logged and "guessed-key-123" not in logged and "test-key" not in logged


async def test_loopback_trust_lets_a_keyless_local_sender_in(tmp_path: Path) -> None:
    async with running_server(tmp_path, **KEYS) as server:  # ingest_loopback_trust=True
        client = AudioHookClient(url(server), api_key=None)
        await client.connect()
        try:
            await client.open(str(uuid.uuid4()))
        finally:
            await client.aclose()
        wrong = AudioHookClient(url(server), api_key="not-a-key")
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await wrong.connect()
        assert caught.value.status == 401  # a key that is presented is judged even here


# --- pacing -----------------------------------------------------------------------------------


async def test_200ms_frames_reach_the_listener_paced(server: RunningServer) -> None:
    conversation = str(uuid.uuid4())
    client = await connected(server)
    listener = Listener(server.base_url, server.tokens["sup"])
    try:
        await client.open(conversation, custom_config={"consent": "granted"})
        agent, caller = voices("PCMU")
        client.start_streaming(agent, caller, frame_s=0.2)
        await listener.listen(conversation)
        await listener.wait_frames(150, timeout=20)
        for leg in ("agent", "caller"):
            arrivals = listener.stats[leg].arrivals[20:]  # past connection set-up
            gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:]))
            p95 = gaps[int(0.95 * (len(gaps) - 1))]
            # Unpaced, 10 frames would arrive at once every 200 ms: p95 near 0 and 90% of
            # the time spent in 200 ms holes. Paced, they arrive about 20 ms apart.
            assert p95 <= 0.030, (leg, p95, statistics.median(gaps))
            assert statistics.median(gaps) >= 0.010, (leg, statistics.median(gaps))
        await client.close()
    finally:
        await listener.close()
        await client.aclose()

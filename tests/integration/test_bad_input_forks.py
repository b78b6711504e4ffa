"""Bad input on the fork WebSockets and the AudioSocket port: a clear close, nothing else.

Every test runs against a real server while one good Twilio call is listened to
(``test_bad_input.listened_call``); after the bad input the listener must still be receiving
both legs of it, and the good call must be undisturbed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import live.server.ingest_fork
from live.ingest.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_UUID, MAX_AUDIO, encode
from live.server.ingest_audiosocket import AUDIOSOCKET, ports
from live.server.ingest_fork import FORKS
from tests.integration.test_bad_input import ListenedCall, listened_call
from tests.support.l16 import pcm
from tests.support.wait import wait_for

METADATA = {"call_id": "fork-bad", "channels": 1, "sample_rate": 8000}


async def fork_close(scene: ListenedCall, kind: str, *frames: Any, query: str = "") -> tuple[Any, str]:
    """Send frames on a fresh fork socket; return the close code and reason it gets."""
    url = f"{scene.server.ws_url}/ingest/fork/{kind}" + (f"?{query}" if query else "")
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        message = await ws.receive(timeout=15)
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), message
        return message.data, str(message.extra or "")


@pytest.mark.parametrize(
    ("kind", "frames", "code", "reason"),
    [
        ("freeswitch", ["{not json"], 4400, "not JSON"),
        ("jambonz", ['["an", "array"]'], 4400, "JSON object"),
        ("vonage", [{"event": "websocket:connected", "content-type": "audio/l16;rate=16000"}], 4400, "no call id"),
        ("jambonz", [{"callSid": "j-bad", "sampleRate": 44100}], 4400, "sample rate"),
        ("jambonz", [{"callSid": "j-bad", "mixType": "mixed"}], 4400, "mixed"),
        ("vonage", [b"\x00\x01" * 320], 4400, "audio before the metadata"),
        ("freeswitch", ["x" * 70_000], 1009, ""),  # over max_ingest_message (64 KiB)
        ("freeswitch", [METADATA, b"\x00" * 70_000], 1009, ""),
    ],
    ids=["not-json", "not-object", "no-call-id", "rate", "mixed", "binary-first", "big-text", "big-binary"],
)
async def test_bad_fork_input_is_closed_with_a_reason(
    tmp_path: Path, kind: str, frames: list[Any], code: int, reason: str
) -> None:
    async with listened_call(tmp_path) as scene:
        closed, why = await fork_close(scene, kind, *frames)
        assert closed == code, (closed, why)
        assert reason in why
        await scene.still_heard(f"a bad {kind} fork")
        node = scene.server.state.node
        await wait_for(lambda: len(node.calls.local) == 1, 30, "only the good call left")
        await scene.assert_undisturbed()


async def test_odd_length_and_split_pcm_keeps_the_fork_call_flowing(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        node = scene.server.state.node
        url = f"{scene.server.ws_url}/ingest/fork/freeswitch"
        audio = pcm(440, 0.6, 0.3)
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.send_json({**METADATA, "call_id": "fork-odd"})
            for offset in range(0, len(audio), 333):  # odd lengths, samples split across frames
                await ws.send_bytes(audio[offset : offset + 333])
            await ws.send_bytes(b"")  # an empty frame, too
            await wait_for(
                lambda: "fork-odd" in node.calls.local and node.calls.local["fork-odd"].caller.received >= 25,
                30,
                "the odd fork's audio, whole",
            )
        await wait_for(lambda: "fork-odd" not in node.calls.local, 30, "the odd fork's end")
        await scene.assert_undisturbed()


async def test_a_silent_fork_is_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.server.ingest_fork, "METADATA_TIMEOUT_S", 0.3)
    async with listened_call(tmp_path) as scene:
        closed, why = await fork_close(scene, "jambonz")
        assert (closed, why) == (4408, "no metadata frame")
        await scene.assert_undisturbed()


async def test_a_second_fork_for_a_leg_already_sent_is_refused(tmp_path: Path) -> None:
    async with listened_call(tmp_path) as scene:
        url = f"{scene.server.ws_url}/ingest/fork/freeswitch"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as first:
            await first.send_json({**METADATA, "call_id": "fork-twice"})
            await wait_for(
                lambda: "fork-twice" in scene.server.state.node.calls.local,
                30,
                "the first fork",
            )
            closed, why = await fork_close(scene, "freeswitch", {**METADATA, "call_id": "fork-twice"})
            assert closed == 4409 and "caller leg" in why
            closed, why = await fork_close(scene, "freeswitch", {**METADATA, "call_id": "CA-good"})
            assert closed == 4409  # not the Twilio call's id either
        await scene.assert_undisturbed()


# --- AudioSocket ------------------------------------------------------------------------------


async def audiosocket_send(scene: ListenedCall, data: bytes, *, wait: bool = True) -> bool:
    """Send ``data`` on a fresh connection to the caller port; whether the server closed it
    (``wait=False``: hang up at once instead)."""
    assert scene.server.app is not None
    port = ports(scene.server.app[AUDIOSOCKET])[0]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if not wait:
            return False
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except (TimeoutError, ConnectionError):
        return False
    finally:
        writer.close()


HELLO = encode(KIND_UUID, uuid.UUID(int=7).bytes)


@pytest.mark.parametrize(
    "data",
    [
        encode(KIND_AUDIO, b"\x00" * 320),  # audio before the UUID
        encode(KIND_UUID, b"\x01" * 15),  # a short UUID
        HELLO + HELLO,  # a second UUID
        HELLO + bytes([KIND_AUDIO]) + (MAX_AUDIO + 2).to_bytes(2, "big"),  # oversized
        HELLO + encode(KIND_DTMF, b"123"),  # a DTMF message of three digits
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not AudioSocket at all
    ],
    ids=["audio-first", "short-uuid", "second-uuid", "oversized", "long-dtmf", "http"],
)
async def test_bad_audiosocket_frames_close_the_connection(tmp_path: Path, data: bytes) -> None:
    async with listened_call(tmp_path, audiosocket_listen="127.0.0.1:0") as scene:
        assert scene.server.app is not None
        counters = scene.server.app[AUDIOSOCKET].counters
        assert await audiosocket_send(scene, data), "the server did not close the connection"
        await wait_for(lambda: counters.protocol_errors == 1, 30, "the protocol error counted")
        await wait_for(
            lambda: len(scene.server.state.node.calls.local) == 1,
            30,
            "only the good call left",
        )
        await scene.assert_undisturbed()


async def test_fuzzed_fork_and_audiosocket_input_never_disturbs_a_call(tmp_path: Path) -> None:
    """Random frames on every fork kind and random bytes on AudioSocket, while a call is heard."""
    async with listened_call(tmp_path, audiosocket_listen="127.0.0.1:0") as scene:
        texts = st.one_of(
            st.text(max_size=80),
            st.dictionaries(
                st.sampled_from(["call_id", "callSid", "uuid", "sampleRate", "mixType", "leg", "content-type"]),
                st.one_of(st.text(max_size=12), st.integers(-5, 70000), st.booleans(), st.none()),
                max_size=5,
            ).map(json.dumps),
        )
        frames = st.lists(st.one_of(texts, st.binary(max_size=900)), min_size=1, max_size=6)

        @settings(max_examples=80, database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(kind=st.sampled_from(["freeswitch", "jambonz", "vonage"]), sent=frames,
               raw=st.binary(max_size=300), hello=st.booleans())
        def fuzz(kind: str, sent: list[Any], raw: bytes, hello: bool) -> None:
            async def once() -> None:
                url = f"{scene.server.ws_url}/ingest/fork/{kind}"
                async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
                    for frame in sent:
                        if ws.closed:
                            break
                        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                await audiosocket_send(scene, (HELLO if hello else b"") + raw, wait=False)

            asyncio.run_coroutine_threadsafe(once(), loop).result(30)

        loop = asyncio.get_running_loop()
        await asyncio.to_thread(fuzz)
        assert scene.server.app is not None
        forks = scene.server.app[FORKS].counters
        assert sum(c.connections for c in forks.values()) >= 40  # the fuzz really ran
        assert scene.server.app[AUDIOSOCKET].counters.accepted >= 40
        node = scene.server.state.node
        await wait_for(lambda: list(node.calls.local) == ["CA-good"], 30, "only the good call left")
        await scene.assert_undisturbed()

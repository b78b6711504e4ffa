"""A Genesys AudioHook (protocol version 2) client for tests, written from the protocol.

It signs the upgrade request as Genesys does (RFC 9421, HMAC-SHA256 over
``@request-target``, ``@authority``, the three ``Audiohook-*`` headers and ``X-API-KEY``),
numbers its messages (``seq``, ``serverseq``, ``position``), streams interleaved PCMU or L16
frames of 200 ms in real time, and answers the server as a real client would: ``pause`` with
``paused`` (and stops sending audio), ``resume`` with ``resumed`` (naming the span it
discarded), ``disconnect`` with ``close``. Nothing here imports the server's code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import struct
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.support.g711 import tone

GENESYS_COMPONENTS = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
PROBE_CONVERSATION = "00000000-0000-0000-0000-000000000000"
PCMU_STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
L16_STEREO = {"type": "audio", "format": "L16", "channels": ["external", "internal"], "rate": 8000}


def duration(seconds: float) -> str:
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sign(
    url: str,
    headers: dict[str, str],
    secret: bytes,
    *,
    keyid: str,
    components: tuple[str, ...] = GENESYS_COMPONENTS,
    created: int | None = None,
    expires: int | None = None,
    nonce: str | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """``Signature-Input`` and ``Signature`` for a GET of ``url`` with ``headers``."""
    parts = urlsplit(url)
    created = int(time.time()) if created is None else created
    expires = created + 30 if expires is None else expires
    nonce = base64.b64encode(secrets.token_bytes(18)).decode() if nonce is None else nonce
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in components:
        if name == "@request-target":
            value = parts.path + (f"?{parts.query}" if parts.query else "")
        elif name == "@authority":
            value = parts.netloc.lower()
        else:
            value = lower.get(name, "").strip()
        lines.append(f"{_sf_string(name)}: {value}")
    params = (
        "(" + " ".join(_sf_string(c) for c in components) + ")"
        f";keyid={_sf_string(keyid)};nonce={_sf_string(nonce)};alg=\"hmac-sha256\";created={created};expires={expires}"
    )
    lines.append(f'"@signature-params": {params}')
    mac = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    return {"Signature-Input": f"{label}={params}", "Signature": f"{label}=:{base64.b64encode(mac).decode()}:"}


def l16_tone(freq: float, seconds: float, amplitude: float, rate: int = 8000) -> bytes:
    count = int(seconds * rate)
    return struct.pack(
        f"<{count}h", *(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count))
    )


def interleave(channels: list[bytes], width: int) -> bytes:
    frames = min(len(c) for c in channels) // width
    out = bytearray()
    for i in range(frames):
        for channel in channels:
            out += channel[i * width : (i + 1) * width]
    return bytes(out)


class AudioHookClient:
    """One AudioHook session: connect, open, stream, answer the server, close."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = "test-key",
        secret: bytes | None = None,
        organization_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.secret = secret
        self.organization_id = organization_id or str(uuid.uuid4())
        self.session_id = session_id or str(uuid.uuid4())
        self.correlation_id = str(uuid.uuid4())
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seq = 0
        self.serverseq = 0
        self.position_s = 0.0
        self.received: list[dict[str, Any]] = []
        self.media: dict[str, Any] | None = None
        self.paused = False
        self.paused_at = 0.0
        self.frames_sent = 0
        self.frames_skipped = 0  # frames not sent while paused
        self.auto_close_on_disconnect = True
        self.closed_by_server = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._streamer: asyncio.Task[None] | None = None

    # --- connection ---------------------------------------------------------------------

    def handshake_headers(self) -> dict[str, str]:
        headers = {
            "Audiohook-Organization-Id": self.organization_id,
            "Audiohook-Session-Id": self.session_id,
            "Audiohook-Correlation-Id": self.correlation_id,
        }
        if self.api_key is not None:
            headers["X-API-KEY"] = self.api_key
        return headers

    async def connect(self, headers: dict[str, str] | None = None, *, signed: bool = True, **sign_options: Any) -> None:
        """Open the WebSocket; raises ``aiohttp.WSServerHandshakeError`` when refused."""
        all_headers = self.handshake_headers()
        if signed and self.secret is not None:
            options = {"keyid": self.api_key or "", **sign_options}
            all_headers.update(sign(self.url, all_headers, self.secret, **options))
        all_headers.update(headers or {})
        self.http = aiohttp.ClientSession()
        try:
            self.ws = await self.http.ws_connect(self.url, headers=all_headers, autoping=True)
        except BaseException:
            await self.http.close()
            raise
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            self.serverseq = data["seq"]
            async with self._arrived:
                self.received.append(data)
                self._arrived.notify_all()
            await self._answer(data)
        self.closed_by_server.set()
        async with self._arrived:
            self._arrived.notify_all()

    async def _answer(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind == "pause" and not self.paused:
            self.paused = True
            self.paused_at = time.monotonic()
            await self.send("paused")
        elif kind == "resume" and self.paused:
            discarded = time.monotonic() - self.paused_at
            start = self.position_s
            self.position_s += discarded
            self.paused = False
            await self.send("resumed", {"start": duration(start), "discarded": duration(discarded)})
        elif kind == "opened" and data["parameters"].get("startPaused"):
            self.paused = True
            self.paused_at = time.monotonic()
        elif kind == "disconnect" and self.auto_close_on_disconnect:
            await self.send("close", {"reason": "disconnect"})

    # --- messages -----------------------------------------------------------------------

    def message(self, kind: str, parameters: dict[str, Any] | None = None, **override: Any) -> dict[str, Any]:
        self.seq += 1
        message = {
            "version": "2",
            "id": self.session_id,
            "type": kind,
            "seq": self.seq,
            "serverseq": self.serverseq,
            "position": duration(self.position_s),
            "parameters": parameters or {},
        }
        message.update(override)
        return message

    async def send(self, kind: str, parameters: dict[str, Any] | None = None, **override: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(self.message(kind, parameters, **override)))

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def expect(self, kind: str, timeout: float = 5.0, *, after: int = 0) -> dict[str, Any]:
        """The first server message of ``kind`` (from index ``after`` on); fails loudly."""

        def found() -> dict[str, Any] | None:
            return next((m for m in self.received[after:] if m["type"] == kind), None)

        async def wait() -> dict[str, Any]:
            async with self._arrived:
                while (message := found()) is None:
                    if self.closed_by_server.is_set():
                        raise AssertionError(f"socket closed before {kind!r}; got {self.types()}")
                    await self._arrived.wait()
                return message

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {kind!r} within {timeout}s; got {self.types()}") from None

    def types(self) -> list[str]:
        return [m["type"] for m in self.received]

    async def open(
        self,
        conversation_id: str,
        media: list[dict[str, Any]] | None = None,
        *,
        custom_config: dict[str, Any] | None = None,
        continued_sessions: list[dict[str, Any]] | None = None,
        participant: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "organizationId": self.organization_id,
            "conversationId": conversation_id,
            "participant": participant
            or {"id": str(uuid.uuid4()), "ani": "+4930123456", "aniName": "Caller", "dnis": "+4940999"},
            "media": media if media is not None else [PCMU_STEREO],
            "language": "de-DE",
        }
        if custom_config is not None:
            parameters["customConfig"] = custom_config
        if continued_sessions is not None:
            parameters["continuedSessions"] = continued_sessions
        await self.send("open", parameters)
        opened = await self.expect("opened")
        selected = opened["parameters"]["media"]
        self.media = selected[0] if selected else None
        return opened

    async def close(self, reason: str = "end") -> dict[str, Any]:
        await self.stop_streaming()
        await self.send("close", {"reason": reason})
        return await self.expect("closed")

    # --- audio --------------------------------------------------------------------------

    def frame(self, external: bytes, internal: bytes) -> bytes:
        """One binary frame of the selected media from per-channel samples."""
        assert self.media is not None
        width = 2 if self.media["format"] == "L16" else 1
        by_name = {"external": external, "internal": internal}
        return interleave([by_name[c] for c in self.media["channels"]], width)

    async def send_frame(self, frame: bytes) -> None:
        assert self.ws is not None and self.media is not None
        await self.ws.send_bytes(frame)
        width = 2 if self.media["format"] == "L16" else 1
        self.position_s += len(frame) / (width * len(self.media["channels"])) / self.media["rate"]
        self.frames_sent += 1

    def start_streaming(self, agent: bytes, caller: bytes, frame_s: float = 0.2) -> None:
        """Send ``agent`` on ``internal`` and ``caller`` on ``external`` (looped) in frames of
        ``frame_s`` seconds, each on time (an absolute schedule, no drift), none while paused."""
        self._streamer = asyncio.create_task(self._stream(agent, caller, frame_s))

    async def _stream(self, agent: bytes, caller: bytes, frame_s: float) -> None:
        assert self.media is not None
        width = 2 if self.media["format"] == "L16" else 1
        size = int(self.media["rate"] * frame_s) * width
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while self.ws is not None and not self.ws.closed:
            if not self.paused:
                offset = (k * size) % max(len(agent) - size, 1)
                offset_c = (k * size) % max(len(caller) - size, 1)
                try:
                    await self.send_frame(self.frame(caller[offset_c : offset_c + size], agent[offset : offset + size]))
                except (ConnectionError, RuntimeError):
                    return
            else:
                self.frames_skipped += 1
            k += 1
            await asyncio.sleep(max(0.0, start + k * frame_s - loop.time()))

    async def stop_streaming(self) -> None:
        if self._streamer is not None:
            self._streamer.cancel()
            await asyncio.gather(self._streamer, return_exceptions=True)
            self._streamer = None

    async def aclose(self) -> None:
        await self.stop_streaming()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.http is not None:
            await self.http.close()


def voices(fmt: str) -> tuple[bytes, bytes]:
    """(a loud agent, a quiet caller) for 2 s, as μ-law or as L16 at 8 kHz."""
    if fmt == "L16":
        return l16_tone(440, 2.0, 0.6), l16_tone(660, 2.0, 0.06)
    return tone(440, 2.0, 0.6), tone(660, 2.0, 0.06)

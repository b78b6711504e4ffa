"""Senders of linear PCM for tests: the L16 WebSocket forks and Asterisk AudioSocket.

What FreeSWITCH ``mod_audio_fork``, jambonz ``listen`` and Vonage send (a JSON text frame,
then binary 16-bit little-endian PCM every 20 ms), and what Asterisk's AudioSocket sends
(``[kind][length][payload]`` over TCP: the UUID, then 20 ms of 8 kHz ``slin``), in real time.
"""

from __future__ import annotations

import asyncio
import math
import struct
from typing import Any

import aiohttp

from live.ingest.audiosocket import KIND_AUDIO, KIND_HANGUP, KIND_UUID, encode


def pcm(freq: float, seconds: float, amplitude: float, rate: int = 8000) -> bytes:
    """A sine tone as 16-bit signed little-endian mono PCM."""
    count = int(seconds * rate)
    return struct.pack(
        f"<{count}h", *(int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count))
    )


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono PCM buffers as one stereo buffer (channel 0 = ``left``)."""
    a, b = struct.unpack(f"<{len(left) // 2}h", left), struct.unpack(f"<{len(right) // 2}h", right)
    return struct.pack(f"<{2 * min(len(a), len(b))}h", *(s for pair in zip(a, b) for s in pair))


class ForkSender:
    """One fork WebSocket: ``first`` (a JSON object, or ``None`` for a metadata-less
    FreeSWITCH fork), then ``audio`` looped in frames of ``frame_bytes`` every 20 ms."""

    def __init__(
        self,
        url: str,
        first: dict[str, Any] | None,
        audio: bytes,
        frame_bytes: int,
        *,
        protocols: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.first = first
        self.audio = audio
        self.frame_bytes = frame_bytes
        self.protocols = protocols
        self.headers = headers
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, protocols=self.protocols, headers=self.headers)
        if self.first is not None:
            await self.ws.send_json(self.first)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        frames = max(len(self.audio) // self.frame_bytes, 1)
        while not self.ws.closed:
            offset = (self.sent % frames) * self.frame_bytes
            try:
                await self.ws.send_bytes(self.audio[offset : offset + self.frame_bytes])
            except ConnectionError:
                return
            self.sent += 1
            delay = t0 + self.sent * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


class AudioSocketSender:
    """One AudioSocket connection: the UUID, then ``audio`` (8 kHz slin) looped in 20 ms
    messages; ``stop`` sends the hangup message."""

    def __init__(self, host: str, port: int, call_uuid: bytes, audio: bytes) -> None:
        self.host, self.port = host, port
        self.call_uuid = call_uuid
        self.audio = audio
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None
        self.task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(encode(KIND_UUID, self.call_uuid))
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.writer is not None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        frames = max(len(self.audio) // 320, 1)
        while not self.writer.is_closing():
            offset = (self.sent % frames) * 320
            self.writer.write(encode(KIND_AUDIO, self.audio[offset : offset + 320]))
            try:
                await self.writer.drain()
            except ConnectionError:
                return
            self.sent += 1
            delay = t0 + self.sent * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Whether the server closed the connection (EOF) within ``timeout``."""
        assert self.reader is not None
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except (TimeoutError, ConnectionError):
            return False

    async def stop(self, hangup: bool = True) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.writer is not None and not self.writer.is_closing():
            if hangup:
                self.writer.write(encode(KIND_HANGUP))
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass

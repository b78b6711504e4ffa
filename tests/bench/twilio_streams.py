"""Twilio Media Streams calls for the ingest benchmark: N WebSockets, two tracks each.

``TwilioStreams`` opens N streams like ``sender.py`` does for one (aiohttp's client for the
upgrade, the ``connected`` and ``start`` messages, consent granted), and then writes each
stream's two ``media`` messages for a 20 ms tick as two masked text frames in one
``transport.write``: the bytes a Twilio fork sends, without aiohttp's per-frame writer and
lock, so the sender stays much cheaper than the server's WebSocket reader, JSON parse and
base64 decode it is measured against. Each stream's reader task answers the server's pings
(aiohttp's autoping) and notices a close.

``backlog_bytes`` is what the server has not yet taken off our sockets (the transports'
write buffers): a server that keeps up leaves it at 0.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp._websocket.helpers import websocket_mask  # C, as aiohttp's own writer uses

from tests.support.twilio import start_message

TRACKS = ("outbound", "inbound")  # marker legs AGENT, CALLER: Twilio's outbound is the agent


def frame(text: bytes, mask: bytes) -> bytes:
    """One masked text frame, FIN set (RFC 6455 §5.2; a client masks every frame, §5.3)."""
    size = len(text)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    body = bytearray(text)
    websocket_mask(mask, body)
    return head + mask + body


@dataclass(slots=True)
class MediaStream:
    call_id: str
    stream_sid: bytes
    ws: aiohttp.ClientWebSocketResponse
    transport: asyncio.WriteTransport
    sequence: int = 2  # the start message is 1
    reader: asyncio.Task[None] | None = field(default=None)


class TwilioStreams:
    """N Media Streams calls on one server: ``grow``, ``tick`` every 20 ms, ``aclose``."""

    def __init__(self, url: str, secret: str, run_id: str, concurrency: int = 16) -> None:
        self.url = url
        self.headers = {"X-Live-Ingest-Secret": secret} if secret else {}
        self.run_id = run_id
        self.semaphore = asyncio.Semaphore(concurrency)
        self.http: aiohttp.ClientSession | None = None
        self.streams: list[MediaStream] = []
        self.failures: list[str] = []
        self.closed = 0  # streams the server closed
        self.sent = 0
        self.send_errors = 0
        self.current_tick = 0

    async def start(self) -> None:
        # each WebSocket holds a connection for good: no pool limit (aiohttp defaults to 100)
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    @property
    def legs(self) -> int:
        return 2 * len(self.streams)

    async def _open(self, index: int) -> MediaStream:
        assert self.http is not None
        async with self.semaphore:
            call_id = f"bench-tw-{self.run_id}-{index}"
            ws = await self.http.ws_connect(self.url, headers=self.headers, autoping=True)
            start = start_message(call_id, agent=f"agent-bench-{index}", consent="granted")
            await ws.send_str(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await ws.send_str(json.dumps(start))
            transport = ws._writer.transport  # the raw frames below go where aiohttp's would
            stream = MediaStream(call_id, start["streamSid"].encode(), ws, transport)
            stream.reader = asyncio.create_task(self._read(stream), name=f"read-{call_id}")
            return stream

    async def _read(self, stream: MediaStream) -> None:
        async for _message in stream.ws:  # pings are answered inside receive()
            pass
        self.closed += 1

    async def grow(self, n: int) -> dict[str, Any]:
        started = time.monotonic()
        first = len(self.streams) + len(self.failures)
        results = await asyncio.gather(
            *(self._open(i) for i in range(first, first + n - len(self.streams))),
            return_exceptions=True,
        )
        errors = []
        for result in results:
            if isinstance(result, MediaStream):
                self.streams.append(result)
            else:
                errors.append(repr(result))
        self.failures += errors
        return {
            "calls": len(self.streams),
            "setup_s": round(time.monotonic() - started, 3),
            "failed": len(errors),
            "errors": errors[:5],
            "call_ids": [s.call_id for s in self.streams],
        }

    def tick(self, tick: int, payloads: tuple[bytes, bytes]) -> None:
        # The part after the stream's own fields is the same for every stream in this tick.
        tails = [
            (
                f'","media":{{"track":"{track}","chunk":"{tick}","timestamp":"{tick * 20}",'
                f'"payload":"{base64.b64encode(payload).decode()}"}}}}'
            ).encode()
            for track, payload in zip(TRACKS, payloads)
        ]
        mask = os.urandom(4)
        sent = 0
        for stream in self.streams:
            transport = stream.transport
            if transport.is_closing():
                continue
            sequence = stream.sequence
            stream.sequence = sequence + 2
            head = b'","streamSid":"' + stream.stream_sid
            transport.write(
                frame(b'{"event":"media","sequenceNumber":"%d' % sequence + head + tails[0], mask)
                + frame(
                    b'{"event":"media","sequenceNumber":"%d' % (sequence + 1) + head + tails[1],
                    mask,
                )
            )
            sent += 2
        self.sent += sent
        self.send_errors += 2 * len(self.streams) - sent

    def figures(self) -> dict[str, Any]:
        return {
            "packets_sent": self.sent,
            "send_errors": self.send_errors,
            "streams_closed": self.closed,
            "backlog_bytes": sum(s.transport.get_write_buffer_size() for s in self.streams),
        }

    async def aclose(self) -> dict[str, Any]:
        streams, self.streams = self.streams, []
        for stream in streams:
            if not stream.ws.closed:
                try:
                    await stream.ws.send_str(
                        json.dumps(
                            {"event": "stop", "streamSid": stream.stream_sid.decode(), "stop": {}}
                        )
                    )
                    await stream.ws.close()
                except (aiohttp.ClientError, ConnectionError):
                    pass
            if stream.reader is not None:
                stream.reader.cancel()
        await asyncio.gather(*(s.reader for s in streams if s.reader), return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        return {"stopped": len(streams)}

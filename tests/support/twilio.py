"""A minimal Twilio Media Streams sender for tests (what Twilio's fork sends, in order)."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import aiohttp

TRACKS = {"both": ["inbound", "outbound"], "inbound": ["inbound"], "outbound": ["outbound"]}


def start_message(
    call_sid: str, agent: str = "agent-1", consent: str = "granted", *, tracks: str = "both", **params: str
) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ" + secrets.token_hex(16),
        "start": {
            "accountSid": "AC" + secrets.token_hex(16),
            "streamSid": "MZ" + secrets.token_hex(16),
            "callSid": call_sid,
            "tracks": TRACKS[tracks],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"agent": agent, "consent": consent, **params},
        },
    }


def media_message(track: str, chunk: int, payload: bytes) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(chunk + 2),
        "streamSid": "MZ0",
        "media": {
            "track": track,
            "chunk": str(chunk),
            "timestamp": str(chunk * 20),
            "payload": base64.b64encode(payload).decode(),
        },
    }


class TwilioSender:
    """Streams two μ-law buffers (agent = outbound, caller = inbound) in real time, looped.

    ``tracks`` is what one ``<Stream>`` carries: ``both`` (``track="both_tracks"``), or
    ``inbound`` / ``outbound`` alone, as one of the two sockets of split streams. With
    ``swap_every`` = n, chunks n·k and n·k + 1 of each track go out in swapped order (what a
    reordering proxy does)."""

    def __init__(
        self,
        url: str,
        call_sid: str,
        agent_audio: bytes,
        caller_audio: bytes,
        *,
        tracks: str = "both",
        swap_every: int = 0,
        **params: str,
    ) -> None:
        self.url = url
        self.call_sid = call_sid
        self.agent_audio = agent_audio
        self.caller_audio = caller_audio
        self.tracks = tracks
        self.swap_every = swap_every
        self.params = params
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self, headers: dict[str, str] | None = None) -> None:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url, headers=headers)
        await self.ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.ws.send_json(start_message(self.call_sid, tracks=self.tracks, **self.params))
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        chunk = 0
        held: list[dict[str, Any]] = []
        while not self.ws.closed:
            offset = (chunk * 160) % max(len(self.agent_audio) - 160, 1)
            offset_c = (chunk * 160) % max(len(self.caller_audio) - 160, 1)
            messages = []
            if self.tracks in ("both", "outbound"):
                messages.append(media_message("outbound", chunk, self.agent_audio[offset : offset + 160]))
            if self.tracks in ("both", "inbound"):
                messages.append(media_message("inbound", chunk, self.caller_audio[offset_c : offset_c + 160]))
            if self.swap_every and chunk % self.swap_every == 0 and chunk > 0:
                held = messages  # goes out after the next chunk
            else:
                for message in messages + held:
                    await self.ws.send_json(message)
                held = []
            self.sent += 1
            chunk += 1
            delay = t0 + chunk * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.send_json({"event": "stop", "sequenceNumber": "0", "streamSid": "MZ0", "stop": {}})
            except (ConnectionError, RuntimeError):
                pass
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()

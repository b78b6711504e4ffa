"""Simulated calls for ``live demo``: a real Twilio Media Streams client of the server.

Each call is one WebSocket to ``/ingest/twilio`` sending what a ``<Start><Stream
track="both_tracks">`` fork sends: ``connected``, ``start`` (with ``customParameters``), one
``media`` message per track every 20 ms (numbers as JSON strings, as Twilio sends them), and
``stop``. Pacing follows an absolute schedule on the loop clock, so it does not drift; a late
tick sends its backlog.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import secrets

import aiohttp

from .voices import DemoCall, demo_calls, load_clip

log = logging.getLogger(__name__)

FRAME = 160  # 20 ms of 8 kHz μ-law


def _frames(audio: bytes) -> list[str]:
    """The clip cut into base64 20 ms payloads once, so each tick only formats JSON."""
    usable = len(audio) - len(audio) % FRAME
    return [base64.b64encode(audio[i : i + FRAME]).decode() for i in range(0, usable, FRAME)]


class CallSimulator:
    """Keeps ``calls`` simulated calls running until ``aclose()``."""

    def __init__(
        self,
        url: str,
        *,
        calls: int = 3,
        headers: dict[str, str] | None = None,
        min_length_s: float = 90,
        max_length_s: float = 240,
    ) -> None:
        self.url = url
        self.headers = headers or {}
        self.min_length_s = min_length_s
        self.max_length_s = max_length_s
        templates = demo_calls()
        self.plan = [templates[i % len(templates)] for i in range(calls)]
        self._clips: dict[str, list[str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.calls_started = 0

    def _clip(self, name: str) -> list[str]:
        if name not in self._clips:
            self._clips[name] = _frames(load_clip(name))
        return self._clips[name]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        for index, call in enumerate(self.plan):
            agent_id = call.agent_id if index < 3 else f"agent-{index + 1}"
            self._tasks.append(asyncio.create_task(self._keep_calling(call, agent_id), name=f"demo-call-{index}"))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _keep_calling(self, call: DemoCall, agent_id: str) -> None:
        backoff = 0.5
        while True:
            try:
                await self._one_call(call, agent_id, random.uniform(self.min_length_s, self.max_length_s))
                backoff = 0.5
                await asyncio.sleep(random.uniform(1.0, 3.0))
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, ConnectionError, OSError, RuntimeError) as exc:
                log.warning("demo call for %s failed (%s); retrying in %.1fs", agent_id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _one_call(self, call: DemoCall, agent_id: str, length_s: float) -> None:
        assert self._session is not None
        agent, caller = self._clip(call.agent_clip), self._clip(call.caller_clip)
        stream_sid = "MZ" + secrets.token_hex(16)
        call_sid = "CA" + secrets.token_hex(16)
        async with self._session.ws_connect(self.url, headers=self.headers) as ws:
            await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send_str(
                json.dumps(
                    {
                        "event": "start",
                        "sequenceNumber": "1",
                        "streamSid": stream_sid,
                        "start": {
                            "accountSid": "AC" + secrets.token_hex(16),
                            "streamSid": stream_sid,
                            "callSid": call_sid,
                            "tracks": ["inbound", "outbound"],
                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                            "customParameters": {"agent": agent_id, "consent": call.consent, "queue": call.queue},
                        },
                    }
                )
            )
            self.calls_started += 1
            loop = asyncio.get_running_loop()
            started = loop.time()
            chunk, sequence = 0, 2
            total = int(length_s / 0.02)
            while chunk < total and not ws.closed:
                due = started + chunk * 0.02
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                for track, frames in (("outbound", agent), ("inbound", caller)):
                    await ws.send_str(
                        '{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":'
                        '{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"}}'
                        % (sequence, stream_sid, track, chunk + 1, chunk * 20, frames[chunk % len(frames)])
                    )
                    sequence += 1
                chunk += 1
            if not ws.closed:
                await ws.send_str(
                    json.dumps({"event": "stop", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                                "stop": {"accountSid": "AC", "callSid": call_sid}})
                )

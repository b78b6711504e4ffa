"""Simulated calls for ``live demo``: a real Twilio Media Streams client of the server.

Each simulated call is one WebSocket to the Twilio ingest URL carrying what a
``<Start><Stream track="both_tracks">`` fork sends (PROTOCOLS.md, Twilio Media Streams):
``connected``; ``start`` with ``callSid``, ``tracks``, ``mediaFormat`` and
``customParameters {agent, consent, queue}``; every 20 ms one ``media`` message per track
(``outbound`` = the agent clip, ``inbound`` = the caller clip, numbers as JSON strings, as
Twilio sends them); and ``stop``. When a call has run its length, the next call with a new
``callSid`` follows on the same line after a short pause.

Pacing follows an absolute schedule on the loop clock (frame *n* is due at start + n × 20 ms),
so the stream does not drift; a late wake-up sends the frames that fell due meanwhile. A
connection that fails or is closed by the server is logged and retried with backoff; the
simulator never ends on its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp

from .voices import DemoCall, demo_calls, load_clip

log = logging.getLogger(__name__)

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law, what Twilio sends per media message
FRAME_SECONDS = 0.020
FRAME_MS = 20
MULAW_SILENCE = 0xFF
# A loop stalled for longer than this skips ahead rather than bursting: the timestamps then
# show the gap to the server, as they would after real network loss.
MAX_BACKLOG_FRAMES = 250
CLOSE_TIMEOUT = 2.0  # seconds allowed for ``stop`` and the closing handshake


def payload_frames(audio: bytes) -> tuple[str, ...]:
    """The clip as base64 20 ms payloads, padded with μ-law silence to whole frames.

    Done once per clip, so a tick only formats a string.
    """
    padding = -len(audio) % FRAME_BYTES
    audio = audio + bytes([MULAW_SILENCE]) * padding
    return tuple(
        base64.b64encode(audio[i : i + FRAME_BYTES]).decode("ascii")
        for i in range(0, len(audio), FRAME_BYTES)
    )


def connected_message() -> str:
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(
    *, account_sid: str, call_sid: str, stream_sid: str, custom_parameters: Mapping[str, str]
) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound", "outbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": dict(custom_parameters),
            },
        }
    )


def media_message(stream_sid: str, sequence: int, track: str, frame: int, payload: str) -> str:
    """One ``media`` message for 0-based ``frame``: Twilio numbers chunks from 1 and stamps
    milliseconds since the stream started, all as strings. ``payload`` is already base64."""
    return (
        f'{{"event":"media","sequenceNumber":"{sequence}","streamSid":"{stream_sid}",'
        f'"media":{{"track":"{track}","chunk":"{frame + 1}","timestamp":"{frame * FRAME_MS}",'
        f'"payload":"{payload}"}}}}'
    )


def stop_message(*, account_sid: str, call_sid: str, stream_sid: str, sequence: int) -> str:
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": str(sequence),
            "streamSid": stream_sid,
            "stop": {"accountSid": account_sid, "callSid": call_sid},
        }
    )


@dataclass(frozen=True, slots=True)
class _Line:
    """One simulated agent line: its calls follow each other, each with a new callSid."""

    agent_id: str
    queue: str
    consent: str
    agent_frames: tuple[str, ...]
    caller_frames: tuple[str, ...]


@dataclass(slots=True)
class _Call:
    """One call in progress: its ids and the next ``sequenceNumber`` (``start`` is 1)."""

    call_sid: str
    stream_sid: str
    frames: int
    sequence: int = 2


class _ServerClosed(Exception):
    """The server ended a call before the simulator did."""

    def __init__(self, close_code: int | None) -> None:
        super().__init__(f"server closed the socket (code {close_code})")
        self.close_code = close_code


class CallSimulator:
    """Keeps ``calls`` simulated calls streaming to ``url`` until ``aclose()``.

    Line *i* plays demo call ``i % 3`` (see ``demo_calls()``); lines beyond the three demo
    agents use ``agent-<i+1>``. ``headers`` go on every WebSocket handshake (e.g. an ingest
    secret). Call lengths are uniform in ``[min_length_s, max_length_s]``; ``pause_s`` passes
    between the calls of a line. ``start()`` raises ``ConfigError`` if the clips are missing;
    after that, connection problems are logged and retried, never raised.
    """

    def __init__(
        self,
        url: str,
        *,
        calls: int = 3,
        headers: Mapping[str, str] | None = None,
        min_length_s: float = 90.0,
        max_length_s: float = 240.0,
        pause_s: float = 2.0,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if calls < 0:
            raise ValueError("calls must be >= 0")
        if not 0 < min_length_s <= max_length_s:
            raise ValueError("need 0 < min_length_s <= max_length_s")
        self.url = url
        self.calls = calls
        self.headers = dict(headers or {})
        self.min_length_s = min_length_s
        self.max_length_s = max_length_s
        self.pause_s = pause_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.account_sid = "AC" + secrets.token_hex(16)
        self.calls_started = 0
        self.calls_completed = 0
        self.failures = 0
        self.frames_skipped = 0
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _lines(self) -> list[_Line]:
        templates = demo_calls()
        frames: dict[str, tuple[str, ...]] = {}

        def clip(name: str) -> tuple[str, ...]:
            if name not in frames:
                frames[name] = payload_frames(load_clip(name))
            return frames[name]

        lines = []
        for index in range(self.calls):
            call: DemoCall = templates[index % len(templates)]
            agent_id = call.agent_id if index < len(templates) else f"agent-{index + 1}"
            lines.append(
                _Line(
                    agent_id,
                    call.queue,
                    call.consent.value,
                    clip(call.agent_clip),
                    clip(call.caller_clip),
                )
            )
        return lines

    async def start(self) -> None:
        """Load the clips and start one task per line. Raises ``ConfigError`` on bad clips."""
        if self._session is not None:
            raise RuntimeError("CallSimulator already started")
        lines = self._lines()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=10.0, sock_connect=5.0)
        )
        for line in lines:
            self._tasks.append(
                asyncio.create_task(self._keep_line(line), name=f"demo-call-{line.agent_id}")
            )

    async def aclose(self) -> None:
        """Send ``stop`` on every open call, close the sockets and the session. Idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _keep_line(self, line: _Line) -> None:
        backoff = self.retry_initial_s
        while True:
            try:
                await self._one_call(line)
            except (aiohttp.ClientError, OSError, _ServerClosed) as exc:
                self.failures += 1
                log.warning(
                    "demo call for %s to %s failed: %s; retrying in %.1f s",
                    line.agent_id,
                    self.url,
                    exc,
                    backoff,
                )
            except Exception:  # task boundary: the demo keeps going whatever happened
                self.failures += 1
                log.exception("demo call for %s failed; retrying in %.1f s", line.agent_id, backoff)
            else:
                backoff = self.retry_initial_s
                await asyncio.sleep(self.pause_s)
                continue
            await asyncio.sleep(backoff * self._rng.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.retry_max_s)

    async def _one_call(self, line: _Line) -> None:
        assert self._session is not None
        length_s = self._rng.uniform(self.min_length_s, self.max_length_s)
        call = _Call(
            "CA" + secrets.token_hex(16),
            "MZ" + secrets.token_hex(16),
            round(length_s / FRAME_SECONDS),
        )
        ws = await self._session.ws_connect(
            self.url, headers=self.headers, autoclose=True, autoping=True
        )
        # Reading is what notices a close frame from the server; the simulator expects no data.
        reader = asyncio.create_task(self._drain(ws), name=f"demo-call-{line.agent_id}-reader")
        try:
            await ws.send_str(connected_message())
            await ws.send_str(
                start_message(
                    account_sid=self.account_sid,
                    call_sid=call.call_sid,
                    stream_sid=call.stream_sid,
                    custom_parameters={
                        "agent": line.agent_id,
                        "consent": line.consent,
                        "queue": line.queue,
                    },
                )
            )
            self.calls_started += 1
            log.info("demo call %s started for %s (%.0f s)", call.call_sid, line.agent_id, length_s)
            await self._stream(ws, reader, line, call)
        finally:
            await self._hang_up(ws, reader, call)
        self.calls_completed += 1
        log.info("demo call %s ended for %s", call.call_sid, line.agent_id)

    async def _stream(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        reader: asyncio.Task[None],
        line: _Line,
        call: _Call,
    ) -> None:
        """Send ``call.frames`` 20 ms ticks, one message per track, on an absolute schedule."""
        loop = asyncio.get_running_loop()
        agent, caller = line.agent_frames, line.caller_frames
        stream_sid, frames = call.stream_sid, call.frames
        sent = 0
        started = loop.time()
        while sent < frames:
            if reader.done() or ws.closed:
                raise _ServerClosed(ws.close_code)
            due = min(int((loop.time() - started) / FRAME_SECONDS) + 1, frames)
            if due - sent > MAX_BACKLOG_FRAMES:
                self.frames_skipped += due - MAX_BACKLOG_FRAMES - sent
                sent = due - MAX_BACKLOG_FRAMES
            while sent < due:
                payload = agent[sent % len(agent)]
                await ws.send_str(
                    media_message(stream_sid, call.sequence, "outbound", sent, payload)
                )
                call.sequence += 1
                payload = caller[sent % len(caller)]
                await ws.send_str(
                    media_message(stream_sid, call.sequence, "inbound", sent, payload)
                )
                call.sequence += 1
                sent += 1
            await asyncio.sleep(max(started + sent * FRAME_SECONDS - loop.time(), 0))

    async def _hang_up(
        self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None], call: _Call
    ) -> None:
        """``stop`` (if the socket is still open) and close, bounded; also on cancellation."""
        try:
            if not ws.closed and not reader.done():
                stop = stop_message(
                    account_sid=self.account_sid,
                    call_sid=call.call_sid,
                    stream_sid=call.stream_sid,
                    sequence=call.sequence,
                )
                await asyncio.wait_for(ws.send_str(stop), CLOSE_TIMEOUT)
            await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT)
        except (aiohttp.ClientError, OSError):
            pass  # the socket is gone either way
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    @staticmethod
    async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _message in ws:
            pass

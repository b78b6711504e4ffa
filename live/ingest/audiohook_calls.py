"""The calls behind AudioHook sessions: one per conversation, whichever socket carries it.

Genesys may move a conversation to a new AudioHook session: after our ``reconnect``, after a
dropped connection, or when a new ``open`` names the old session in ``continuedSessions``.
A new session for a conversation that is live here therefore *continues* its call (the same
``CallMedia``, the same pacers, timestamps running on) instead of announcing a duplicate;
the newest session is the one whose audio is forwarded. A call ends when its last session
closes (``close``, or our ``disconnect``); a session that vanished without closing, or closed
with reason ``reconnect``, leaves its call waiting ``linger_s`` for a successor first.

Gating: the policy gates legs on the ``LegSource`` (``set_audible``: payment pause, caller
consent). When no leg a session sends may be heard, the session asks the client to
``pause`` (the telephony stops sending what no one may hear) and to ``resume`` when one may
again. The registry learns of gate changes from the call bus (``gate_changed`` on
``call.updated``, deferred with ``call_soon`` so the call registry has applied the gates first) and
re-checks on every audio frame.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from ..errors import Conflict
from ..media.hub import CallMedia
from ..media.pacer import Pacer, PlayoutClock
from ..types import LEGS, CallId, LegName
from .sink import CallAnnouncement, CallSink

log = logging.getLogger(__name__)


class FlowControl(Protocol):
    """What a call needs of the session feeding it."""

    session_id: str

    def set_flow(self, audible: bool) -> None:
        """Ask the client to pause (nothing may be heard) or to resume."""


@dataclass(slots=True)
class AudioHookCounters:
    """Counted over every AudioHook session of this node, for ``/metrics``."""

    sessions: int = 0
    probes: int = 0
    calls_started: int = 0
    calls_continued: int = 0
    protocol_errors: int = 0
    rejected_frames: int = 0
    ignored_messages: int = 0
    ignored_audio: int = 0
    client_errors: int = 0
    pauses_sent: int = 0
    resumes_sent: int = 0
    reconnects_sent: int = 0
    position_mismatches: int = 0


class AudioHookCall:
    """One conversation's legs: a pacer per leg on one shared timer, the sessions feeding it."""

    def __init__(self, call_id: CallId, organization_id: str, media: CallMedia, legs: tuple[LegName, ...]) -> None:
        self.call_id = call_id
        self.organization_id = organization_id
        self.media = media
        self.legs = legs
        self.clock = PlayoutClock()
        self.pacers: dict[LegName, Pacer] = {leg: Pacer(media.leg(leg), clock=self.clock) for leg in LEGS}
        self.sessions: list[FlowControl] = []  # in order of arrival: the last one is forwarded
        self.known_sessions: set[str] = set()
        self.linger: asyncio.TimerHandle | None = None

    @property
    def active(self) -> FlowControl | None:
        return self.sessions[-1] if self.sessions else None

    def forwards(self, session: FlowControl) -> bool:
        return bool(self.sessions) and self.sessions[-1] is session

    def push(self, leg: LegName, payload: bytes, arrived_ns: int) -> None:
        self.pacers[leg].push(payload, arrived_ns)

    def gap(self, samples: int) -> None:
        """The client discarded ``samples`` (8 kHz) of every channel."""
        for pacer in self.pacers.values():
            pacer.gap(samples)

    def audible(self) -> bool:
        """Whether anything this call sends may be heard now."""
        return any(self.media.leg(leg).audible for leg in self.legs)

    def sync_gate(self) -> None:
        session = self.active
        if session is not None:
            session.set_flow(self.audible())

    @property
    def dropped(self) -> int:
        return sum(p.dropped for p in self.pacers.values())

    def close(self) -> None:
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        self.clock.close()


class AudioHookCalls:
    """Every AudioHook call on this node, by conversation id."""

    def __init__(self, sink: CallSink, *, linger_s: float) -> None:
        self.sink = sink
        self.linger_s = linger_s
        self.calls: dict[CallId, AudioHookCall] = {}
        self.counters = AudioHookCounters()
        self.pacer_dropped = 0  # packets dropped by pacers of calls that have ended
        self._tasks: set[asyncio.Task[None]] = set()

    async def attach(
        self,
        session: FlowControl,
        announcement: CallAnnouncement,
        organization_id: str,
        continued: tuple[str, ...] = (),
    ) -> AudioHookCall:
        """The call ``session`` feeds: a continued one, or a new one announced to the sink."""
        call = self.calls.get(announcement.call_id)
        if call is not None:
            if call.organization_id != organization_id:
                raise Conflict("this conversation is live here for another organisation", code="duplicate_call")
            if call.linger is not None:
                call.linger.cancel()
                call.linger = None
            named = bool(set(continued) & call.known_sessions)
            log.info(
                "audiohook session %s continues call %s (%s)",
                session.session_id, call.call_id, "named in continuedSessions" if named else "same conversation",
            )
            call.sessions.append(session)
            call.known_sessions.add(session.session_id.lower())
            if announcement.legs != call.legs:
                call.legs = announcement.legs
                await self.sink.legs_reported(call.call_id, announcement.legs)
            self.counters.calls_continued += 1
            return call
        # A second session opening the same new conversation while this one is announced gets
        # the sink's Conflict (duplicate_call), and its client retries.
        media = await self.sink.call_started(announcement)
        call = AudioHookCall(announcement.call_id, organization_id, media, announcement.legs)
        call.sessions.append(session)
        call.known_sessions.add(session.session_id.lower())
        self.calls[call.call_id] = call
        self.counters.calls_started += 1
        return call

    async def detach(self, session: FlowControl, call: AudioHookCall, *, linger: bool) -> None:
        """``session`` no longer feeds ``call``; end the call when nothing else does."""
        if session in call.sessions:
            call.sessions.remove(session)
        if call.sessions or self.calls.get(call.call_id) is not call:
            call.sync_gate()  # the session now forwarded learns whether to pause
            return
        if linger and self.linger_s > 0:
            if call.linger is None:
                call.linger = asyncio.get_running_loop().call_later(self.linger_s, self._expire, call)
            return
        await self._end(call)

    def _expire(self, call: AudioHookCall) -> None:
        call.linger = None
        if call.sessions or self.calls.get(call.call_id) is not call:
            return
        task = asyncio.get_running_loop().create_task(self._end(call), name=f"audiohook-end-{call.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, call: AudioHookCall) -> None:
        if self.calls.get(call.call_id) is not call:
            return
        del self.calls[call.call_id]
        self.pacer_dropped += call.dropped
        call.close()
        await self.sink.call_ended(call.call_id)

    def gate_changed(self, call_id: str) -> None:
        """The call's state changed (bus ``call.updated``): re-check its gate soon."""
        call = self.calls.get(CallId(call_id))
        if call is not None:
            asyncio.get_running_loop().call_soon(call.sync_gate)

    @property
    def dropped(self) -> int:
        return self.pacer_dropped + sum(c.dropped for c in self.calls.values())

    async def aclose(self) -> None:
        """End every call (shutdown): nothing lingers past the server."""
        for call in list(self.calls.values()):
            call.sessions.clear()
            await self._end(call)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

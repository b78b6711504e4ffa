"""The use cases: calls arriving and leaving, supervisors starting and stopping listens.

``Monitor`` wires the bus, the ledger, the media hub and WebRTC peers. It is the only place
that decides the order of things for a listen session (architecture decision 4):

1. authorise (role, purpose, call known and alive) and parse the browser's offer;
2. append ``listen.started`` to the ledger, durably; if that fails, refuse (503);
3. only then attach the listener's queues to the leg sources, so no packet can leave before
   the session is on record;
   and only once a signed checkpoint covers ``listen.started`` (decision 10; concurrent
   starts share one signature);
4. a session whose browser has not connected (ICE and DTLS done) within ``SETUP_S`` of the
   answer ends as ``setup-failed``: it frees its slot and counts against no quota;
5. every way the session ends goes through ``_finish``, which appends ``listen.ended`` with
   when the first and last packet were handed to the listener (what was heard); if the
   ledger cannot take it, the local spool keeps it until it can, with its true time, and a
   crash is closed at the next start with the bounds the node knows: ``node-lost`` between
   the session's last proof of life (kept every second) and the restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Callable, NamedTuple

from .audit import Ledger
from .audit.spool import SPOOL_FILE, LedgerSpool
from .auth import Identity
from .bus import CallBus
from .bus.memory import Roster
from .codec import decode_media, encode_media
from .config import Settings
from .errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    LedgerUnavailable,
    LiveError,
    NotFound,
)
from .ingest.sink import CallAnnouncement
from .media.hub import CallMedia, EncodedPacket, ListenerQueue
from .model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenerInfo,
    ListenStarted,
)
from .notices import NoticeBoard, NoticeStore
from .policy import (
    Listen,
    Policy,
    PolicyError,
    SetConsent,
    SetPci,
    StartedListen,
    SupervisorGrant,
    ViewRosterCall,
    decide,
    leg_audibility,
    listener_label,
    month_bounds,
    quota_state,
    read_policy_file,
    shown_listener,
)
from .policy.decide import Action, Decision
from .policy.quota import QuotaState
from .rtc import ListenPeer, PacketTrack
from .types import LEGS, CallId, Consent, EndReason, LegName, NodeId, Role, SessionId, new_id

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # the ledger heartbeat, also the probe behind /readyz
PROBE_SLOW_S = 5.0  # a heartbeat still waiting this long means the ledger does not answer
PROOF_OF_LIFE_S = 0.5  # each running session's proof of life: at least every second
RETENTION_EVERY_S = 3600.0
RETENTION_FIRST_S = 60.0
MEDIA_DEMAND_S = 2.0
SETUP_S = 10.0  # from the answer to a connected peer (ICE and DTLS), else setup-failed
ENDED_CALLS_KEPT = 1000  # recently ended calls remembered, so a late listen is refused on record


NOT_SENT = "not_sent"  # the reason for a leg the source does not send (CallInfo.legs)


class ListenLeg(NamedTuple):
    """One leg as a listen answer reports it: whether the policy lets it be heard, whether
    the source sends it at all, and why it is not heard (``None`` when it is)."""

    audible: bool
    available: bool
    reason: str | None

    @property
    def heard(self) -> bool:
        return self.audible and self.available


def legs_state(call: CallInfo, policy: Policy) -> dict[LegName, tuple[bool, str | None]]:
    """Which legs of ``call`` are heard under ``policy``, and why not (``None`` when heard).

    A leg the source does not send is not heard (``not_sent``): when it starts to arrive
    during a listen (a second Twilio stream), the session's ledger gets ``leg.unmuted``."""
    return {
        leg: (
            (state.audible, None if state.audible else state.reason)
            if leg in call.legs
            else (False, NOT_SENT)
        )
        for leg, state in leg_audibility(call, policy).items()
    }


def _open_scope(policy: Policy, actor: Identity, call: CallInfo | None) -> Policy:
    """The built-in default policy names no teams: there, every agent is in scope of every
    supervisor (documented in ``live/policy/default.toml`` and the README)."""
    if call is None or actor.role is not Role.SUPERVISOR:
        return policy
    grant = SupervisorGrant(actor.user_id, frozenset(), frozenset({call.agent_id}))
    return dataclasses.replace(
        policy,
        supervisors={**policy.supervisors, actor.user_id: grant},
        supervisors_listen_to=policy.supervisors_listen_to | {"assigned"},
    )


@dataclass(eq=False)
class ListenSession:
    session_id: SessionId
    call_id: CallId
    agent_id: str
    actor: Identity
    purpose: str
    started_at: float
    queues: dict[LegName, ListenerQueue]
    media: CallMedia
    peer: ListenPeer = field(init=False)
    ended: bool = False
    notice_mode: str | None = None
    label: str = ""
    policy_version: str = ""
    call_started_at: float = 0.0
    setup_timer: asyncio.TimerHandle | None = None


def heard_fields(queues: dict[LegName, ListenerQueue]) -> dict[str, float | None]:
    """What a listener was sent, for ``listen.ended``: the first and last packet handed out
    on any leg (``None`` when none was) and the time between them (``heard_s``)."""
    first = min((q.first_at for q in queues.values() if q.delivered), default=None)
    last = max((q.last_at for q in queues.values() if q.delivered), default=None)
    heard = round(last - first, 3) if first is not None and last is not None else 0.0
    return {"first_packet_at": first, "last_packet_at": last, "heard_s": heard}


class RemoteFeed:
    """Packets of a call ingested on another node, relayed through the bus, as local legs."""

    def __init__(self, call: CallInfo) -> None:
        self.media = CallMedia(call.codec)
        self.unsubscribe: Callable[[], object] | None = None
        self.renew_task: asyncio.Task[None] | None = None

    def on_packet(self, data: bytes) -> None:
        try:
            leg, pts, payload = decode_media(data)
        except LiveError:
            log.warning("dropped an undecodable relayed packet")
            return
        self.media.leg("agent" if leg == "agent" else "caller").publish(payload, pts)


class Monitor:
    """Owns every call ingested here and every listen session served here."""

    def __init__(self, settings: Settings, bus: CallBus, ledger: Ledger) -> None:
        self.settings = settings
        self.bus = bus
        self.ledger = ledger
        self.node_id = NodeId(settings.effective_node_id)
        self.roster = Roster()
        self.local: dict[CallId, CallMedia] = {}
        # What this node says about its own calls, current even before the bus echoes it back
        # (a Redis roster lags): changes to a local call start from here.
        self.local_info: dict[CallId, CallInfo] = {}
        self.remote: dict[CallId, RemoteFeed] = {}
        self.sessions: dict[SessionId, ListenSession] = {}
        # The last calls that ended (oldest first): a listen asked for one of them is a
        # refusal of a known call, on record, not an unknown call.
        self.ended_calls: dict[CallId, CallInfo] = {}
        self.refused = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = 0  # listen sessions between "ended" and fully recorded
        self._heartbeat: asyncio.Task[None] | None = None
        self._proof_of_life: asyncio.Task[None] | None = None
        self._relay_checked: dict[CallId, bool] = {}
        self.policy: Policy | None = None
        self._policy_lock = asyncio.Lock()
        self.spool = LedgerSpool(settings.data_dir / SPOOL_FILE, ledger)
        self._probe_since: float | None = None  # monotonic start of the heartbeat in flight
        self.notices = NoticeBoard(
            NoticeStore(settings.data_dir / "notices.sqlite3"), self.spool, self.current_policy
        )

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.ledger.open()
        try:
            await self.spool.open()
            await self.reload_policy(actor="system")
        except BadRequest as exc:  # a server must not start without a valid policy
            await self.spool.aclose()
            await self.ledger.aclose()
            raise ConfigError(exc.message, problems=exc.fields.get("problems", [])) from exc
        except BaseException:
            await self.spool.aclose()
            await self.ledger.aclose()
            raise
        await self.notices.start()
        try:
            await self._recover(time.time())
        except BaseException:
            await self.notices.aclose()
            await self.spool.aclose()
            await self.ledger.aclose()
            raise
        self.spool.start()
        self._proof_of_life = asyncio.create_task(self._keep_alive(), name="proof-of-life")
        await self.bus.start()
        self._unsubscribe = self.bus.subscribe(self._on_event)
        for call in await self.bus.snapshot():
            self.roster.calls[call.call_id] = call
        self._heartbeat = asyncio.create_task(self._beat(), name="monitor-heartbeat")

    async def end_listens(self, reason: EndReason) -> None:
        """End every listen served here. At shutdown this comes first, before the ingest
        connections close and end their calls: the ledger says ``shutdown``, not ``call-ended``."""
        for session in list(self.sessions.values()):
            await self._finish(session, reason)

    async def stop(self) -> None:
        await self.end_listens(EndReason.SHUTDOWN)
        for call_id in list(self.local):
            await self.call_ended(call_id)
        for feed in list(self.remote.values()):
            await self._drop_feed(feed)
        for task in (self._heartbeat, self._proof_of_life):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # A session may be ending on another path right now (an ingest socket closed by the
        # shutdown ends its call): its notice and ledger entry must land before both close.
        for _ in range(500):
            if not self._ending:
                break
            await asyncio.sleep(0.01)
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.bus.aclose()
        await self.spool.aclose()  # what is still spooled is written at the next start
        await self.notices.aclose()
        await self.ledger.aclose()

    async def _recover(self, now: float) -> None:
        """At start: write what the spool kept (true ends win over ``node-lost``), then close
        every session a crash left open, between its last proof of life and ``now``, and
        give the agent the notice of each."""
        try:
            replayed = await self.spool.replay()
        except LedgerUnavailable as exc:
            replayed = []
            log.error("spooled ledger entries still wait: %s", exc.message)
        if replayed:
            log.warning("wrote %d ledger entries kept in the spool", len(replayed))
        alive = await self.spool.last_alive(self.node_id)
        recovered = await self.ledger.recover(
            self.node_id, now, alive=alive, skip=await self.spool.pending_sessions()
        )
        if recovered:
            log.warning("closed %d listen sessions left open by a crash", len(recovered))
        for session_id in recovered:
            await self._notice_recovered(session_id)
        for session_id in alive:
            # Ended before the crash but possibly without its notice (the proof of life is
            # cleared only once both the end and the notice are kept): give it now, once.
            if session_id in recovered:
                continue
            try:
                owed = not await self.notices.store.has_session(session_id)
            except LiveError as exc:
                log.error("could not look up the notice of listen %s: %s", session_id, exc.message)
                continue
            if owed:
                await self._notice_recovered(session_id)
        for session_id in alive:
            await self.spool.gone(session_id)

    async def _notice_recovered(self, session_id: str) -> None:
        """The agent's notice of a session closed by ``recover``, from what the ledger knows."""
        entries = await self.ledger.entries(session_id=session_id)
        started = next((e for e in entries if e.kind == "listen.started"), None)
        ended = next((e for e in entries if e.kind == "listen.ended"), None)
        if started is None or ended is None:
            return
        f, e = started.fields, ended.fields
        policy = self.current_policy()
        label = shown_listener(
            names=policy.listener_names,
            display_name=str(f.get("display_name") or "") or None,
            user_id=str(f.get("user_id") or "") or None,
            role=str(f.get("role") or "") or None,
        ).text
        started_at = float(f.get("started_at") or started.at)
        mode = f.get("notice_mode")
        try:
            await self.notices.listen_ended(
                agent_id=str(f.get("agent_id") or ""),
                session_id=session_id,
                call_id=str(f.get("call_id") or ""),
                mode=mode if isinstance(mode, str) else None,
                item={
                    "purpose": f.get("purpose"),
                    "listener": label,
                    "started_at": started_at,
                    "ended_at": e.get("ended_at"),
                    "ended_after": e.get("ended_after"),
                    "ended_before": e.get("ended_before"),
                    "call_started_at": started_at,  # the ledger does not keep the call's start
                    "duration_s": e.get("duration_s"),
                    "policy_version": f.get("policy_version"),
                    "reason": e.get("reason"),
                },
            )
        except LiveError as exc:
            log.error("could not give notice of listen %s: %s", session_id, exc.message)

    def unready_reason(self) -> str | None:
        """Why this node cannot serve listens right now (``/readyz``), or ``None``."""
        if self.spool.problem is not None:
            return f"the ledger cannot be written: {self.spool.problem}"
        probing = self._probe_since
        if probing is not None and time.monotonic() - probing > PROBE_SLOW_S:
            # A frozen database fails a write only after its timeouts (a minute): not ready now.
            return f"the ledger does not answer: a write has waited {time.monotonic() - probing:.0f} s"
        if self.bus.problem is not None:
            return f"the bus cannot be used: {self.bus.problem}"
        return None

    async def _keep_alive(self) -> None:
        """Proof of life of every running session, kept locally (decision 10)."""
        failing = False
        while True:
            running = [s.session_id for s in self.sessions.values() if not s.ended]
            try:
                await self.spool.alive(self.node_id, time.time(), running)
                failing = False
            except LiveError as exc:
                if not failing:
                    log.error("could not keep the sessions' proof of life: %s", exc.message)
                failing = True
            await asyncio.sleep(PROOF_OF_LIFE_S)

    async def _beat(self) -> None:
        # First purge a minute after start (not during start-up), then hourly.
        next_retention = time.time() + RETENTION_FIRST_S
        while True:
            now = time.time()
            self._probe_since = time.monotonic()
            try:
                await self.ledger.heartbeat(self.node_id, now)
            except LiveError as exc:
                if self.spool.problem is None:
                    log.error("ledger heartbeat failed: %s", exc.message)
                self.spool.failed(exc.message)
            else:
                self.spool.succeeded()
            finally:
                self._probe_since = None
            if now >= next_retention:
                next_retention = now + RETENTION_EVERY_S
                await self.apply_retention(now)
            await asyncio.sleep(HEARTBEAT_S)

    async def apply_retention(self, now: float) -> int:
        """Erase personal details older than the policy's retention period (a ``purge.done``
        entry records it; leaves and checkpoints stay valid). Returns how many were erased."""
        if self.policy is None:
            return 0
        days = self.policy.retention_days
        try:
            erased = await self.ledger.erase_details(now - days * 86400.0, retention_days=days)
        except LiveError as exc:
            log.error("retention purge failed: %s", exc.message)
            return 0
        if erased:
            log.info("retention: erased the personal details of %d ledger entries", erased)
        return erased

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- bus ---------------------------------------------------------------------------

    def _on_event(self, event: BusEvent) -> None:
        before = self.roster.calls.get(event.call.call_id) if isinstance(event, CallUpdated) else None
        if isinstance(event, CallEnded) and (ended := self.roster.calls.get(event.call_id)) is not None:
            self.ended_calls[event.call_id] = ended
            while len(self.ended_calls) > ENDED_CALLS_KEPT:
                del self.ended_calls[next(iter(self.ended_calls))]
        elif isinstance(event, CallStarted):
            self.ended_calls.pop(event.call.call_id, None)
        self.roster.apply(event)
        if before is not None and isinstance(event, CallUpdated):
            self._record_gate_changes(before, event.call)
        if isinstance(event, CallEnded):
            for session in list(self.sessions.values()):
                if session.call_id == event.call_id and not session.ended:
                    self._spawn(self._finish(session, EndReason.CALL_ENDED), "end-on-hangup")
            feed = self.remote.pop(event.call_id, None)
            if feed is not None:
                self._spawn(self._drop_feed(feed), "drop-feed")
        elif isinstance(event, CallUpdated):
            media = self.local.get(event.call.call_id) or (
                self.remote[event.call.call_id].media if event.call.call_id in self.remote else None
            )
            if media is not None:
                self._apply_gates(event.call, media)

    def _record_gate_changes(self, before: CallInfo, after: CallInfo) -> None:
        """Write ``leg.muted`` / ``leg.unmuted`` for each session served here whose leg changed."""
        if self.policy is None:
            return
        old, new = legs_state(before, self.policy), legs_state(after, self.policy)
        changed = [leg for leg in LEGS if old[leg][0] != new[leg][0]]
        if not changed:
            return
        sessions = [s for s in self.sessions.values() if s.call_id == after.call_id and not s.ended]
        for session in sessions:
            for leg in changed:
                audible, reason = new[leg]
                self._record_leg(session, leg, audible, reason or old[leg][1] or "")

    def _record_leg(self, session: ListenSession, leg: LegName, audible: bool, reason: str) -> None:
        self._spawn(
            self._record(
                "leg.unmuted" if audible else "leg.muted",
                actor="system",
                session_id=session.session_id,
                call_id=session.call_id,
                agent_id=session.agent_id,
                leg=leg,
                reason=reason,
            ),
            "record-gate",
        )

    async def _record(self, kind: str, *, actor: str, **fields: object) -> None:
        """A ledger entry for things that happen to a session already on record; spooled
        (and written later, with this time) if the ledger cannot take it now."""
        try:
            await self.spool.append(kind, actor=actor, at=time.time(), **fields)
        except LiveError as exc:
            log.error("could not record %s: %s", kind, exc.message)

    async def _refuse(
        self,
        error: LiveError,
        actor: Identity,
        call: CallInfo | None,
        purpose: object,
        decision: Decision | None = None,
    ) -> LiveError:
        """Count a refused listen and put it on record (for the works-council report)."""
        self.refused += 1
        await self._record(
            "listen.refused",
            actor=actor.user_id,
            call_id=call.call_id if call else None,
            agent_id=call.agent_id if call else None,
            purpose=purpose if isinstance(purpose, str) else None,
            reason=error.message,
            code=error.code,
            policy_version=decision.policy_version if decision else None,
            role=actor.role.value,
            user_id=actor.user_id,
        )
        return error

    async def refuse_listen(self, actor: Identity, call_id: str, error: LiveError) -> None:
        """A listen refused before it reached ``start_listen`` (the role may never listen):
        on record and counted like every other refusal."""
        await self._refuse(error, actor, self.roster.calls.get(CallId(call_id)), None)

    # --- policy --------------------------------------------------------------------------

    @property
    def open_scope(self) -> bool:
        """Whether the built-in default policy is in force (every agent in every scope)."""
        return not self.settings.policy_file

    def current_policy(self) -> Policy:
        if self.policy is None:
            raise LedgerUnavailable("the monitoring policy is not loaded yet")
        return self.policy

    async def reload_policy(self, *, actor: str = "system") -> Policy:
        """Read the policy file again; keep the last good policy when it is invalid.

        A policy whose content hash differs from the last one on record appends
        ``policy.changed`` (also at start, comparing with the ledger's last such entry).
        Raises ``BadRequest`` listing the problems of an invalid file.
        """
        async with self._policy_lock:
            path = self.settings.policy_path
            try:
                policy = await asyncio.to_thread(read_policy_file, path)
            except PolicyError as exc:
                raise BadRequest(
                    f"the policy file {path} is invalid; the previous policy stays in force",
                    code="bad_policy",
                    problems=exc.formatted(),
                ) from exc
            previous_version: str | None = None
            previous_sha: str | None = None
            if self.policy is not None:
                previous_version, previous_sha = self.policy.version, self.policy.sha256
            else:
                changes = await self.ledger.entries(kind="policy.changed")
                if changes:
                    previous_version = changes[-1].fields.get("version")
                    previous_sha = changes[-1].fields.get("sha256")
            if policy.sha256 != previous_sha:
                await self.ledger.append(
                    "policy.changed",
                    actor=actor,
                    at=time.time(),
                    version=policy.version,
                    previous_version=previous_version,
                    sha256=policy.sha256,
                )
                log.info("monitoring policy %s in force (%s)", policy.version, path)
            self.policy = policy
            return policy

    async def _started_listens(self, now: datetime) -> list[StartedListen]:
        start, _end = month_bounds(now, self.current_policy())
        # A local day may begin before the local month in UTC terms: read from a day early.
        # The store reads only this window (index on kind, at), not the whole history.
        since = start.timestamp() - 86400
        entries = await self.ledger.entries(kind="listen.started", since=since)
        # A session that never connected was an attempt, not a listen: it counts against no
        # quota. Its end follows its start, so the same window holds it.
        failed = {
            e.fields.get("session_id")
            for e in await self.ledger.entries(kind="listen.ended", since=since)
            if e.fields.get("reason") == EndReason.SETUP_FAILED.value
        }
        return [
            StartedListen(
                str(e.fields.get("agent_id", "")),
                str(e.fields.get("user_id") or e.actor),
                float(e.fields.get("started_at", e.at)),
            )
            for e in entries
            if e.fields.get("session_id") not in failed
        ]

    async def decide(self, actor: Identity, action: Action, call: CallInfo | None) -> Decision:
        """The policy's answer for ``action`` on ``call`` now (quotas read from the ledger)."""
        policy = self.current_policy()
        if self.open_scope:
            policy = _open_scope(policy, actor, call)
        now = datetime.now(UTC)
        state = QuotaState()
        if isinstance(action, Listen) and call is not None:
            state = quota_state(
                await self._started_listens(now),
                agent_id=call.agent_id,
                listener_id=actor.user_id,
                policy=policy,
                now=now,
            )
        return decide(actor, action, call, state, policy, now)

    def may_view(self, actor: Identity, call: CallInfo) -> bool:
        """Whether ``actor`` sees ``call`` in the roster (no quota reads: synchronous)."""
        policy = self.current_policy()
        if self.open_scope:
            policy = _open_scope(policy, actor, call)
        return decide(actor, ViewRosterCall(), call, QuotaState(), policy, datetime.now(UTC)).allowed

    async def change_call(self, actor: Identity, call_id: str, action: SetConsent | SetPci) -> CallInfo:
        """Consent and payment pause changes, as the policy allows them to ``actor``."""
        call = self.call(call_id)
        decision = await self.decide(actor, action, call)
        decision.raise_if_refused()
        if isinstance(action, SetConsent):
            return await self.update_call(call.call_id, consent=action.consent)
        return await self.update_call(call.call_id, pci_paused=action.paused)

    def calls(self) -> list[CallInfo]:
        return sorted(self.roster.calls.values(), key=lambda c: c.started_at)

    def call(self, call_id: str) -> CallInfo:
        call = self.roster.calls.get(CallId(call_id))
        if call is None:
            raise NotFound(f"no live call {call_id!r}", code="unknown_call")
        return call

    # --- ingest (CallSink) -------------------------------------------------------------

    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        known = self.roster.calls.get(announcement.call_id)
        if known is not None and known.node_id != self.node_id and announcement.call_id not in self.local:
            # Split streams (one connection per leg) join on the node that has the call; a
            # leg sent to another node of the cluster cannot be joined there (documented).
            raise Conflict(
                f"call {announcement.call_id!r} is live on node {known.node_id}: "
                "send every stream of a call to the same node",
                code="call_on_other_node",
            )
        if known is not None or announcement.call_id in self.local:
            raise Conflict(f"call {announcement.call_id!r} is already live", code="duplicate_call")
        media = CallMedia(announcement.codec)
        info = CallInfo(
            call_id=announcement.call_id,
            source=announcement.source,
            agent_id=announcement.agent_id,
            started_at=time.time(),
            node_id=self.node_id,
            consent=announcement.consent,
            codec=announcement.codec,
            queue=announcement.queue,
            private=announcement.private,
            attributes=dict(announcement.attributes),
            legs=announcement.legs,
        )
        self._apply_gates(info, media)
        self.local[info.call_id] = media
        self.local_info[info.call_id] = info
        for leg in LEGS:
            media.leg(leg).taps.append(self._relay_tap(info.call_id))
        await self.bus.publish(CallStarted(info))
        return media

    async def call_ended(self, call_id: CallId) -> None:
        media = self.local.pop(call_id, None)
        self.local_info.pop(call_id, None)
        if media is None:
            return
        for session in list(self.sessions.values()):
            if session.call_id == call_id:
                await self._finish(session, EndReason.CALL_ENDED)
        media.close()
        self._relay_checked.pop(call_id, None)
        try:
            await self.bus.publish(CallEnded(call_id, time.time()))
        except LiveError:
            log.error("could not announce the end of call %s", call_id)

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        await self.update_call(call_id, consent=consent)

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        if call_id in self.local_info:
            await self.update_call(call_id, legs=tuple(leg for leg in LEGS if leg in legs))

    async def update_call(self, call_id: CallId, **changes: object) -> CallInfo:
        """Change a call's state (consent, payment pause, legs) and gate its legs at once."""
        call = self._current(CallId(call_id))
        updated = dataclasses.replace(call, **changes)  # type: ignore[arg-type]
        media = self.local.get(call_id)
        if media is not None:
            self.local_info[call.call_id] = updated
            self._apply_gates(updated, media)
        await self.bus.publish(CallUpdated(updated))
        return updated

    def _current(self, call_id: CallId) -> CallInfo:
        """The newest state of a call: the roster's, except that a call ingested here is
        known before a Redis roster echoes it and keeps the legs this node reported."""
        own = self.local_info.get(call_id)
        known = self.roster.calls.get(call_id)
        if own is None:
            return self.call(call_id)
        if known is None:
            return own
        return dataclasses.replace(known, legs=own.legs)

    def _apply_gates(self, call: CallInfo, media: CallMedia) -> None:
        # Before the policy is loaded nothing is heard (fail closed).
        if self.policy is None:
            for leg in LEGS:
                media.leg(leg).set_audible(False)
            return
        for leg, (audible, _reason) in legs_state(call, self.policy).items():
            media.leg(leg).set_audible(audible)

    def _relay_tap(self, call_id: CallId) -> Callable[[LegName, EncodedPacket], None]:
        """Publish a local call's packets for other nodes, only while one asks for them."""
        bus = self.bus

        def tap(leg: LegName, packet: EncodedPacket) -> None:
            if bus.media_wanted(call_id):  # the bus queues it; no task per packet
                bus.publish_media(call_id, encode_media(leg, packet.pts, packet.payload))

        return tap

    # --- listening ---------------------------------------------------------------------

    async def start_listen(
        self,
        actor: Identity,
        call_id: str,
        offer_sdp: object,
        purpose: object,
        *,
        resumes: str | None = None,
    ) -> tuple[str, ListenSession, dict[LegName, ListenLeg]]:
        """Decide, record, connect. ``resumes`` names the actor's own earlier listen to this
        call that a restart or a lost connection interrupted; the new session says so."""
        known = self.roster.calls.get(CallId(call_id))
        gone = self.ended_calls.get(CallId(call_id)) if known is None else None
        if gone is not None and self.may_view(actor, gone):
            raise await self._refuse(
                Gone("the call ended before listening could start", code="call_ended"), actor, gone, purpose
            )
        decision = await self.decide(
            actor, Listen(purpose if isinstance(purpose, str) else None), known
        )
        if not decision.allowed:
            if known is None and decision.reason.value == "call_unknown":
                self.call(call_id)  # raises NotFound(unknown_call), as before the policy
            raise await self._refuse(decision.refusal(), actor, known, purpose, decision)
        call = self._current(self.call(call_id).call_id)  # a local call's legs as reported here
        assert isinstance(purpose, str)
        if not isinstance(offer_sdp, str):
            raise BadRequest("sdp must be a string", code="bad_sdp")
        if resumes is not None:
            await self._check_resumes(actor, call, resumes)

        media = self.local.get(call.call_id)
        if media is None:
            media = (await self._remote_feed(call)).media
        session_id = SessionId(new_id("ls"))
        queues = {leg: ListenerQueue(self.settings.listener_queue_packets) for leg in LEGS}
        tracks = {leg: PacketTrack(queue) for leg, queue in queues.items()}
        session = ListenSession(
            session_id, call.call_id, call.agent_id, actor, purpose, time.time(), queues, media
        )
        session.notice_mode = decision.notice_mode
        session.label = listener_label(actor, self.current_policy())
        session.policy_version = decision.policy_version
        session.call_started_at = call.started_at
        session.peer = ListenPeer(self.settings.ice_servers, lambda reason: self._finish(session, reason))
        try:
            answer = await session.peer.answer(offer_sdp, tracks, call.codec)
        except BaseException:
            session.ended = True
            await session.peer.pc.close()
            raise
        legs = {
            leg: ListenLeg(
                state.audible,
                leg in call.legs,
                NOT_SENT if leg not in call.legs else None if state.audible else state.reason,
            )
            for leg, state in decision.legs.items()
        }
        heard = [leg for leg in LEGS if legs[leg].heard]  # on record: audible and really sent
        try:
            seq = await self.ledger.append(
                "listen.started",
                actor=actor.user_id,
                at=session.started_at,
                session_id=session_id,
                call_id=call.call_id,
                agent_id=call.agent_id,
                user_id=actor.user_id,
                display_name=actor.display_name,
                purpose=purpose,
                legs=heard,
                node_id=self.node_id,
                started_at=session.started_at,
                policy_version=decision.policy_version,
                team=decision.team,
                notice_mode=decision.notice_mode,
                role=actor.role.value,  # public: what agents see once names are erased
                **({"resumes": resumes} if resumes is not None else {}),
            )
        except LiveError as exc:
            session.ended = True
            await session.peer.pc.close()
            self.refused += 1  # not on record: the ledger is what failed
            raise LedgerUnavailable(
                "the listen could not be recorded, so it is refused", detail=exc.message
            ) from exc
        if call.call_id not in self.roster.calls:  # hung up while we were setting up
            await self._finish(session, EndReason.CALL_ENDED)
            raise Gone("the call ended", code="call_ended")
        try:
            # Signed before heard (decision 10): no packet may leave before a signed
            # checkpoint covers the start; listens starting together share one signature.
            await self.ledger.checkpoint_covering(seq)
        except LiveError as exc:
            await self._finish(session, EndReason.SETUP_FAILED)
            self.refused += 1
            raise LedgerUnavailable(
                "the listen could not be put under a signed checkpoint, so it is refused",
                detail=exc.message,
            ) from exc
        if call.call_id not in self.roster.calls:  # hung up while the checkpoint was signed
            await self._finish(session, EndReason.CALL_ENDED)
            raise Gone("the call ended", code="call_ended")
        self.sessions[session_id] = session
        if self.policy is not None:
            # A leg that began or stopped arriving (a second stream) while the start was
            # being recorded: the ledger says so, as it would a moment later.
            for leg, (audible, reason) in legs_state(self._current(call.call_id), self.policy).items():
                if audible != (leg in heard):
                    self._record_leg(session, leg, audible, reason or legs[leg].reason or "")
        self.notices.listen_started(
            agent_id=call.agent_id,
            session_id=session_id,
            label=session.label,
            mode=session.notice_mode,
            purpose=purpose,
        )
        for leg in LEGS:  # only now, with the start on record, may packets flow
            media.leg(leg).attach(queues[leg])
        listener = ListenerInfo(
            session_id, actor.user_id, actor.display_name, purpose, session.started_at, self.node_id
        )
        try:
            await self.bus.publish(ListenStarted(call.call_id, listener, tuple(heard)))
        except LiveError:
            log.error("could not announce listen %s on the bus", session_id)
        if not session.peer.connected.is_set():
            session.setup_timer = asyncio.get_running_loop().call_later(
                SETUP_S, self._setup_expired, session
            )
        return answer, session, legs

    async def _check_resumes(self, actor: Identity, call: CallInfo, resumes: str) -> None:
        """A listen may resume only an earlier listen of the same person to the same call."""
        entries = await self.ledger.entries(session_id=resumes)
        started = next((e for e in entries if e.kind == "listen.started"), None)
        if (
            started is None
            or str(started.fields.get("user_id") or started.actor) != actor.user_id
            or started.fields.get("call_id") != call.call_id
        ):
            raise BadRequest(
                "resumes must name an earlier listen of yours to this call", code="bad_resumes"
            )

    def _setup_expired(self, session: ListenSession) -> None:
        """The browser had ``SETUP_S`` to connect and did not (it never applied our answer,
        or ICE/DTLS failed slowly): nothing was heard, so the session ends as setup-failed."""
        session.setup_timer = None
        if not session.ended and not session.peer.connected.is_set():
            self._spawn(self._finish(session, EndReason.SETUP_FAILED), "end-setup-failed")

    async def stop_listen(self, actor: Identity, session_id: str) -> ListenSession:
        session = self.sessions.get(SessionId(session_id))
        if session is None:
            raise NotFound(f"no listen session {session_id!r} on this node", code="unknown_session")
        if session.actor.user_id != actor.user_id and actor.role is not Role.ADMIN:
            raise Forbidden("only the listener may stop this session", code="not_your_session")
        await self._finish(session, EndReason.STOPPED)
        return session

    def sessions_of(self, actor: Identity) -> list[ListenSession]:
        return [s for s in self.sessions.values() if s.actor.user_id == actor.user_id]

    async def _finish(self, session: ListenSession, reason: EndReason) -> None:
        """The single end path of a listen session: detach, record, announce, close."""
        if session.ended:
            return
        session.ended = True
        if session.setup_timer is not None:
            session.setup_timer.cancel()
            session.setup_timer = None
        self._ending += 1
        try:
            await self._finish_ended(session, reason)
        finally:
            self._ending -= 1

    async def _finish_ended(self, session: ListenSession, reason: EndReason) -> None:
        for leg, queue in session.queues.items():
            session.media.leg(leg).detach(queue)
        ended_at = time.time()
        try:  # a session ended before its first proof of life: the row that owes the notice
            await self.spool.alive(self.node_id, ended_at, [session.session_id])
        except LiveError as exc:
            log.warning("could not keep the proof of life of %s: %s", session.session_id, exc.message)
        try:
            await self.spool.append(
                "listen.ended",
                actor=session.actor.user_id if reason is EndReason.STOPPED else "system",
                at=ended_at,
                session_id=session.session_id,
                call_id=session.call_id,
                agent_id=session.agent_id,
                reason=reason.value,
                ended_at=ended_at,
                duration_s=round(ended_at - session.started_at, 3),
                dropped_packets=sum(q.dropped for q in session.queues.values()),
                **heard_fields(session.queues),
            )
        except LiveError as exc:
            # Neither the ledger nor the spool took it: the start is on record, and the next
            # start closes it as node-lost, between its last proof of life and the restart.
            log.error("could not record the end of listen %s: %s", session.session_id, exc.message)
            recorded = False
        else:
            recorded = True
        # Served here until its end is kept (ledger or spool): whoever sees the session gone
        # finds the end on record.
        self.sessions.pop(session.session_id, None)
        noticed = False
        try:
            await self.notices.listen_ended(
                agent_id=session.agent_id,
                session_id=session.session_id,
                call_id=session.call_id,
                mode=session.notice_mode,
                item={
                    "purpose": session.purpose,
                    "listener": session.label,
                    "started_at": session.started_at,
                    "ended_at": ended_at,
                    "call_started_at": session.call_started_at,
                    "duration_s": round(ended_at - session.started_at, 3),
                    "policy_version": session.policy_version,
                    "reason": reason.value,
                    "heard_s": heard_fields(session.queues)["heard_s"],
                },
            )
            noticed = True
        except LiveError as exc:
            log.error("could not give notice of listen %s: %s", session.session_id, exc.message)
        if recorded and noticed:
            # Only now: a crash between the end and its notice leaves the proof of life, and
            # the next start gives the notice of the ended session (``_recover``).
            try:
                await self.spool.gone(session.session_id)
            except LiveError as exc:
                log.warning("could not clear the proof of life of %s: %s", session.session_id, exc.message)
        try:
            await self.bus.publish(
                ListenEnded(session.call_id, session.session_id, reason.value, ended_at)
            )
        except LiveError:
            log.error("could not announce the end of listen %s", session.session_id)
        await session.peer.close(reason)
        feed = self.remote.get(session.call_id)
        if feed is not None and feed.media.listener_count == 0:
            self.remote.pop(session.call_id, None)
            await self._drop_feed(feed)

    # --- calls on other nodes ------------------------------------------------------------

    async def _remote_feed(self, call: CallInfo) -> RemoteFeed:
        feed = self.remote.get(call.call_id)
        if feed is not None:
            return feed
        feed = RemoteFeed(call)
        self._apply_gates(call, feed.media)
        self.remote[call.call_id] = feed
        feed.unsubscribe = await self.bus.subscribe_media(call.call_id, feed.on_packet)
        await self.bus.want_media(call.call_id)
        feed.renew_task = asyncio.create_task(self._renew_demand(call.call_id), name="media-demand")
        return feed

    async def _renew_demand(self, call_id: CallId) -> None:
        while True:
            await asyncio.sleep(MEDIA_DEMAND_S)
            try:
                await self.bus.want_media(call_id)
            except LiveError:
                log.warning("could not renew the media relay for %s", call_id)

    async def _drop_feed(self, feed: RemoteFeed) -> None:
        if feed.renew_task is not None:
            # Cancel until it really stops: on Python 3.11 a cancel that lands just as a
            # redis-py write finishes can be lost inside asyncio.wait_for (bpo-42130).
            while not feed.renew_task.done():
                feed.renew_task.cancel()
                await asyncio.wait({feed.renew_task}, timeout=0.5)
        if feed.unsubscribe is not None:
            result = feed.unsubscribe()
            if asyncio.iscoroutine(result):
                await result
        feed.media.close()

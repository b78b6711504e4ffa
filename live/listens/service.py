"""The listen service: the only place that decides the order of things for a listen session
(architecture decision 4):

1. authorise (role, purpose, call known and alive; quotas read from the ledger) and answer
   the browser's offer;
2. append ``listen.started`` to the ledger, durably; if that fails, refuse (503);
3. only then attach the listener's queues to the leg sources, so no packet can leave before
   the session is on record, and only once a signed checkpoint covers ``listen.started``
   (decision 10; concurrent starts share one signature);
4. a session whose browser has not connected (ICE and DTLS done) within ``SETUP_S`` of the
   answer ends as ``setup-failed``: it frees its slot and counts against no quota;
5. every way the session ends goes through ``_finish``, which appends ``listen.ended`` with
   when the first and last packet were handed to the listener (what was heard); if the
   ledger cannot take it, the local spool keeps it until it can, with its true time, and a
   crash is closed at the next start (``recovery``) with the bounds the node knows:
   ``node-lost`` between the session's last proof of life (kept by housekeeping) and the
   restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..audit import Ledger
from ..audit.spool import LedgerSpool
from ..auth import Identity
from ..bus import CallBus
from ..calls import NOT_SENT, CallRegistry, legs_state
from ..config import IceServer
from ..errors import Forbidden, Gone, LedgerUnavailable, LiveError, NotFound
from ..media.hub import ListenerQueue
from ..model import CallInfo, ListenerInfo, ListenStarted
from ..notices import NoticeBoard
from ..policy import Listen, decide, listener_label, quota_state
from ..policy.decide import Decision
from ..policy.quota import QuotaState
from ..policy_holder import PolicyHolder
from ..rtc import ListenPeer, PacketTrack
from ..types import LEGS, CallId, EndReason, LegName, NodeId, Role, SessionId, new_id
from .ending import record_end
from .quotas import check_resumes, started_listens
from .recovery import recover
from .session import ListenLeg, ListenSession

log = logging.getLogger(__name__)

SETUP_S = 10.0  # from the answer to a connected peer (ICE and DTLS), else setup-failed
SETTLE_S = 5.0  # at shutdown, how long ends under way on other paths may take to land


@dataclass(frozen=True, slots=True)
class ListenStats:
    """What ``/metrics`` shows of the listen sessions served here."""

    sessions: int
    packets_delivered: int
    packets_dropped: int
    refused: int


class ListenService:
    """Owns every listen session served here. Watches the call registry (``CallWatcher``)
    to end sessions with their call and to record leg gates that change under them."""

    def __init__(
        self,
        *,
        node_id: NodeId,
        ledger: Ledger,
        spool: LedgerSpool,
        bus: CallBus,
        calls: CallRegistry,
        policy: PolicyHolder,
        notices: NoticeBoard,
        ice_servers: Sequence[IceServer],
        queue_packets: int,
    ) -> None:
        self.node_id = node_id
        self._ledger = ledger
        self._spool = spool
        self._bus = bus
        self._calls = calls
        self._policy = policy
        self._notices = notices
        self._ice_servers = tuple(ice_servers)
        self._queue_packets = queue_packets
        self.sessions: dict[SessionId, ListenSession] = {}
        self._refused = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = 0  # sessions between "ended" and fully recorded
        self._settled = asyncio.Event()  # set while no session is ending
        self._settled.set()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Close what a crash left open (spool, ledger and notices must be open)."""
        await recover(
            node_id=self.node_id,
            now=time.time(),
            ledger=self._ledger,
            spool=self._spool,
            notices=self._notices,
            policy=self._policy.current(),
        )

    async def end_all(self, reason: EndReason) -> None:
        """End every session served here. At shutdown this comes first, before the ingest
        connections close and end their calls: the ledger says ``shutdown``, not ``call-ended``."""
        for session in list(self.sessions.values()):
            await self._finish(session, reason)

    async def stop(self) -> None:
        """End every session served here as ``shutdown``, then wait for ends under way."""
        await self.end_all(EndReason.SHUTDOWN)
        await self.settled()

    async def settled(self) -> None:
        """Wait until no session is ending on any path (an ingest socket closed by the
        shutdown ends its call): its notice and ledger entry land before the stores close."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._settled.wait(), SETTLE_S)
        except TimeoutError:
            log.error("%d listen sessions were still ending at shutdown", self._ending)

    # --- what the server asks ------------------------------------------------------------

    def sessions_of(self, actor: Identity) -> list[ListenSession]:
        return [s for s in self.sessions.values() if s.actor.user_id == actor.user_id]

    def running(self) -> list[SessionId]:
        """The sessions whose proof of life is due."""
        return [s.session_id for s in self.sessions.values() if not s.ended]

    def stats(self) -> ListenStats:
        queues = [q for s in self.sessions.values() for q in s.queues.values()]
        return ListenStats(
            sessions=len(self.sessions),
            packets_delivered=sum(q.delivered for q in queues),
            packets_dropped=sum(q.dropped for q in queues),
            refused=self._refused,
        )

    async def begin(
        self,
        actor: Identity,
        call_id: str,
        offer_sdp: str,
        purpose: str | None,
        *,
        resumes: str | None = None,
    ) -> tuple[str, ListenSession, dict[LegName, ListenLeg]]:
        """Start listening to ``call_id``: the answer SDP, the session and its legs.

        ``offer_sdp`` and ``purpose`` come checked for type and size (the HTTP handler);
        whether the purpose is allowed is the policy's decision, refused on record.
        ``resumes`` names the actor's own earlier listen to this call that a restart or a
        lost connection interrupted; the new session says so."""
        known = self._calls.known(call_id)
        gone = self._calls.recently_ended(call_id) if known is None else None
        if gone is not None and self._policy.may_view(actor, gone):
            raise await self._refuse(
                Gone("the call ended before listening could start", code="call_ended"), actor, gone, purpose
            )
        decision = await self._decide_listen(actor, purpose, known)
        if not decision.allowed:
            if known is None and decision.reason.value == "call_unknown":
                self._calls.call(call_id)  # raises NotFound(unknown_call), as before the policy
            raise await self._refuse(decision.refusal(), actor, known, purpose, decision)
        assert purpose is not None  # an allowed listen names one of the policy's purposes
        call = self._calls.current(self._calls.call(call_id).call_id)  # legs as reported here
        if resumes is not None:
            await check_resumes(self._ledger, actor, call, resumes)
        media = await self._calls.media_for(call)
        session_id = SessionId(new_id("ls"))
        queues = {leg: ListenerQueue(self._queue_packets) for leg in LEGS}
        tracks = {leg: PacketTrack(queue) for leg, queue in queues.items()}
        session = ListenSession(
            session_id, call.call_id, call.agent_id, actor, purpose, time.time(), queues, media
        )
        session.notice_mode = decision.notice_mode
        session.label = listener_label(actor, self._policy.current())
        session.policy_version = decision.policy_version
        session.call_started_at = call.started_at
        session.peer = ListenPeer(self._ice_servers, lambda reason: self._finish(session, reason))
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
            seq = await self._ledger.append(
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
            self._refused += 1  # not on record: the ledger is what failed
            raise LedgerUnavailable(
                "the listen could not be recorded, so it is refused", detail=exc.message
            ) from exc
        if self._calls.known(call.call_id) is None:  # hung up while we were setting up
            await self._finish(session, EndReason.CALL_ENDED)
            raise Gone("the call ended", code="call_ended")
        try:
            # Signed before heard (decision 10): no packet may leave before a signed
            # checkpoint covers the start; listens starting together share one signature.
            await self._ledger.checkpoint_covering(seq)
        except LiveError as exc:
            await self._finish(session, EndReason.SETUP_FAILED)
            self._refused += 1
            raise LedgerUnavailable(
                "the listen could not be put under a signed checkpoint, so it is refused",
                detail=exc.message,
            ) from exc
        if self._calls.known(call.call_id) is None:  # hung up while the checkpoint was signed
            await self._finish(session, EndReason.CALL_ENDED)
            raise Gone("the call ended", code="call_ended")
        self.sessions[session_id] = session
        policy = self._policy.loaded
        if policy is not None:
            # A leg that began or stopped arriving (a second stream) while the start was
            # being recorded: the ledger says so, as it would a moment later.
            for leg, (audible, reason) in legs_state(self._calls.current(call.call_id), policy).items():
                if audible != (leg in heard):
                    self._record_leg(session, leg, audible, reason or legs[leg].reason or "")
        self._notices.listen_started(
            agent_id=call.agent_id,
            session_id=session_id,
            label=session.label,
            mode=session.notice_mode,
            purpose=purpose,
        )
        for leg in LEGS:  # only now, with the start on record, may packets flow
            media.leg(leg).attach(queues[leg])
        listener = ListenerInfo(
            session_id,
            actor.user_id,
            actor.display_name,
            purpose,
            session.started_at,
            self.node_id,
            label=session.label,
            notice_mode=session.notice_mode,
        )
        try:
            await self._bus.publish(
                ListenStarted(
                    call.call_id,
                    listener,
                    tuple(heard),
                    agent_id=call.agent_id,
                    label=session.label,
                    notice_mode=session.notice_mode,
                )
            )
        except LiveError:
            log.error("could not announce listen %s on the bus", session_id)
        if not session.peer.connected.is_set():
            session.setup_timer = asyncio.get_running_loop().call_later(
                SETUP_S, self._setup_expired, session
            )
        return answer, session, legs

    async def end(self, actor: Identity, session_id: str) -> ListenSession:
        """Stop a session: its listener, or an admin."""
        session = self.sessions.get(SessionId(session_id))
        if session is None:
            raise NotFound(f"no listen session {session_id!r} on this node", code="unknown_session")
        if session.actor.user_id != actor.user_id and actor.role is not Role.ADMIN:
            raise Forbidden("only the listener may stop this session", code="not_your_session")
        await self._finish(session, EndReason.STOPPED)
        return session

    async def refuse(self, actor: Identity, call_id: str, error: LiveError) -> None:
        """A listen refused before it reached ``begin`` (the role may never listen): on
        record and counted like every other refusal."""
        await self._refuse(error, actor, self._calls.known(call_id), None)

    # --- the call registry's news (CallWatcher) ------------------------------------------

    async def local_call_ending(self, call_id: CallId) -> None:
        for session in list(self.sessions.values()):
            if session.call_id == call_id:
                await self._finish(session, EndReason.CALL_ENDED)

    def call_gone(self, call_id: CallId, reason: EndReason) -> None:
        """End the sessions on a call that ended (``call-ended``) or whose node was lost
        (``node-lost``)."""
        for session in list(self.sessions.values()):
            if session.call_id == call_id and not session.ended:
                self._spawn(self._finish(session, reason), "end-on-hangup")

    def call_changed(self, before: CallInfo, after: CallInfo) -> None:
        """Write ``leg.muted`` / ``leg.unmuted`` for each session served here whose leg changed."""
        policy = self._policy.loaded
        if policy is None:
            return
        old, new = legs_state(before, policy), legs_state(after, policy)
        changed = [leg for leg in LEGS if old[leg][0] != new[leg][0]]
        if not changed:
            return
        sessions = [s for s in self.sessions.values() if s.call_id == after.call_id and not s.ended]
        for session in sessions:
            for leg in changed:
                audible, reason = new[leg]
                self._record_leg(session, leg, audible, reason or old[leg][1] or "")

    # --- inside --------------------------------------------------------------------------

    async def _decide_listen(
        self, actor: Identity, purpose: str | None, call: CallInfo | None
    ) -> Decision:
        """The policy's answer to a listen now, with the quotas read from the ledger."""
        policy = self._policy.current()
        now = datetime.now(UTC)
        state = QuotaState()
        if call is not None:
            state = quota_state(
                await started_listens(self._ledger, policy, now),
                agent_id=call.agent_id,
                listener_id=actor.user_id,
                policy=policy,
                now=now,
            )
        return decide(actor, Listen(purpose), call, state, policy, now)

    def _setup_expired(self, session: ListenSession) -> None:
        """The browser had ``SETUP_S`` to connect and did not (it never applied our answer,
        or ICE/DTLS failed slowly): nothing was heard, so the session ends as setup-failed."""
        session.setup_timer = None
        if not session.ended and not session.peer.connected.is_set():
            self._spawn(self._finish(session, EndReason.SETUP_FAILED), "end-setup-failed")

    async def _finish(self, session: ListenSession, reason: EndReason) -> None:
        """The single end path of a listen session: detach, record, announce, close."""
        if session.ended:
            return
        session.ended = True
        if session.setup_timer is not None:
            session.setup_timer.cancel()
            session.setup_timer = None
        self._ending += 1
        self._settled.clear()
        try:
            await record_end(
                session,
                reason,
                node_id=self.node_id,
                spool=self._spool,
                notices=self._notices,
                bus=self._bus,
                kept=lambda: self.sessions.pop(session.session_id, None),
            )
            await self._calls.release(session.call_id)
        finally:
            self._ending -= 1
            if not self._ending:
                self._settled.set()

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
            await self._spool.append(kind, actor=actor, at=time.time(), **fields)
        except LiveError as exc:
            log.error("could not record %s: %s", kind, exc.message)

    async def _refuse(
        self,
        error: LiveError,
        actor: Identity,
        call: CallInfo | None,
        purpose: str | None,
        decision: Decision | None = None,
    ) -> LiveError:
        """Count a refused listen and put it on record (for the works-council report)."""
        self._refused += 1
        await self._record(
            "listen.refused",
            actor=actor.user_id,
            call_id=call.call_id if call else None,
            agent_id=call.agent_id if call else None,
            purpose=purpose,
            reason=error.message,
            code=error.code,
            policy_version=decision.policy_version if decision else None,
            role=actor.role.value,
            user_id=actor.user_id,
        )
        return error

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

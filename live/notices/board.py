"""The notice board: listen sessions in, agent notices and the live indicator out.

Per the agent's notice mode (``live.policy.notice_mode_for``):

* ``live``: while a listen runs, the agent's open pages show an indicator
  (``{"type": "monitoring", "active": true, "listeners": [label, ...],
  "listening": [{"listener": label, "purpose": purpose}, ...]}``);
* ``after_call``: when the listen ends, a notice "your call at 10:42 was listened to for
  3 min 12 s — purpose: Training — by Sam Supervisor";
* ``digest``: the ended listen waits in the store until the policy's digest schedule, then one
  summary notice per agent.

Every notice is stored with its words in English and German (``texts``); each reader gets
``text`` in their language (``localised``). A notice stays in the store until seen. ``notice.delivered`` is appended once, when a notice
first reaches the agent (pushed to an open page, or listed by ``GET /api/notices``);
``notice.seen`` when the agent acknowledges it.

In a cluster the node that makes a listen tells the board here; the boards of the other
nodes learn it from the bus (``relay.NoticeRelay``), and the store is shared, so an agent
whose page another node serves sees the same indicator and the same notices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeAlias

from ..errors import Forbidden, LiveError, NotFound
from ..policy import Policy
from .store import Notice, NoticeTable, notice_key
from .text import after_call_text, digest_text, texts_of

log = logging.getLogger(__name__)

AgentEvent: TypeAlias = dict[str, Any]
AGENT_QUEUE = 64
DIGEST_RECHECK_S = 60.0


def localised(event: AgentEvent, lang: str) -> AgentEvent:
    """An agent event for a reader of ``lang``: a notice's ``text`` in that language."""
    notice = event.get("notice")
    if event.get("type") != "notice" or not isinstance(notice, dict):
        return event
    texts = notice.get("texts")
    if isinstance(texts, dict) and isinstance(texts.get(lang), str):
        return {**event, "notice": {**notice, "text": texts[lang]}}
    return event


class EntryRecorder(Protocol):
    """Where the board records deliveries and acknowledgements: the ledger, or the spool in
    front of it (``live.audit.spool.LedgerSpool``: kept and written later if it is down)."""

    async def append(self, kind: str, *, actor: str, at: float, **fields: Any) -> int | None: ...


@dataclass(frozen=True, slots=True)
class RunningListen:
    """A listen running somewhere in the cluster, as the agent's indicator shows it."""

    agent_id: str
    label: str
    purpose: str | None
    mode: str | None


ENDED_KEPT = 10_000  # ended listens remembered so a lagging roster does not show them again
OWED_FIRST_S = 0.5
OWED_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class OwedNotice:
    """``NoticeBoard.listen_ended``'s keyword arguments, and what to do once it is kept."""

    arguments: dict[str, Any]
    then: Callable[[Notice | None], Awaitable[None]]


class NoticeBoard:
    """Owns the notice store, the agents' sockets and the digest timer."""

    def __init__(
        self,
        store: NoticeTable,
        ledger: EntryRecorder,
        policy: Callable[[], Policy],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.policy = policy
        self.clock = clock
        # agent -> session -> (listener label, purpose)
        self.watching: dict[str, dict[str, tuple[str, str | None]]] = {}
        self._subscribers: dict[str, set[asyncio.Queue[AgentEvent]]] = {}
        self._digest_task: asyncio.Task[None] | None = None
        # Notices of ended listens the store could not take yet, tried again with backoff.
        self._owed: list[OwedNotice] = []
        # Listens whose indicator was cleared (ended): a roster that still lists one for a
        # moment (its end not yet announced) does not turn it on again.
        self._ended: dict[str, None] = {}
        self._owed_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        self._digest_task = asyncio.create_task(self._digest_timer(), name="notice-digest")

    async def aclose(self) -> None:
        for task in (self._digest_task, self._owed_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.store.aclose()

    # --- agents' pages ---------------------------------------------------------------------

    def subscribe(self, agent_id: str) -> tuple[asyncio.Queue[AgentEvent], Callable[[], None]]:
        queue: asyncio.Queue[AgentEvent] = asyncio.Queue(AGENT_QUEUE)
        self._subscribers.setdefault(agent_id, set()).add(queue)

        def unsubscribe() -> None:
            queues = self._subscribers.get(agent_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[agent_id]

        return queue, unsubscribe

    def monitoring_event(self, agent_id: str) -> AgentEvent:
        watched = sorted(self.watching.get(agent_id, {}).values(), key=lambda w: (w[0], w[1] or ""))
        return {
            "type": "monitoring",
            "active": bool(watched),
            "listeners": [label for label, _ in watched],
            "listening": [{"listener": label, "purpose": purpose} for label, purpose in watched],
        }

    def _push(self, agent_id: str, event: AgentEvent) -> bool:
        """Queue ``event`` for every open page of the agent; true when one was open."""
        queues = self._subscribers.get(agent_id, set())
        for queue in queues:
            if queue.full():  # a stalled page loses the oldest event, never blocks us
                queue.get_nowait()
            queue.put_nowait(event)
        return bool(queues)

    # --- listens in ------------------------------------------------------------------------

    def listen_started(
        self, *, agent_id: str, session_id: str, label: str, mode: str | None, purpose: str | None = None
    ) -> None:
        if mode == "live":
            self.watching.setdefault(agent_id, {})[session_id] = (label, purpose)
            self._push(agent_id, self.monitoring_event(agent_id))

    async def listen_ended(
        self,
        *,
        agent_id: str,
        session_id: str,
        call_id: str,
        mode: str | None,
        item: dict[str, Any],
    ) -> Notice | None:
        """``item``: purpose, listener (label), started_at, call_started_at, duration_s,
        policy_version. Creates the notice the mode asks for (once per listen, whichever node
        asks) and returns it when there is one to show now (``after_call``)."""
        self._unwatch(agent_id, session_id)
        data = {"session_id": session_id, "call_id": call_id, **item}
        if mode == "after_call":
            zone = self.policy().hours.zone
            texts = texts_of(after_call_text, data, zone)
            notice, new = await self.store.add(
                agent_id,
                "after_call",
                texts["en"],
                {**data, "texts": texts},
                self.clock(),
                key=notice_key(session_id, "after_call"),
            )
            if new:
                await self._announce(notice)
            return notice
        if mode == "digest":
            await self.store.add_digest_item(agent_id, session_id, data, self.clock())
        return None

    def owe(self, owed: OwedNotice) -> None:
        """The notice of an ended listen that the store could not take (the shared database
        is down): tried again with backoff while the node runs, ``owed.then`` called once it
        is kept. (A restart meanwhile still owes it: the proof of life stays, ``recovery``.)"""
        self._owed.append(owed)
        if self._owed_task is None or self._owed_task.done():
            self._owed_task = asyncio.create_task(self._pay_owed(), name="notices-owed")

    async def _pay_owed(self) -> None:
        delay = OWED_FIRST_S
        while self._owed:
            await asyncio.sleep(delay)
            batch, self._owed = self._owed, []
            for n, owed in enumerate(batch):
                try:
                    notice = await self.listen_ended(**owed.arguments)
                except LiveError as exc:
                    log.warning("notice of listen %s still waits: %s", owed.arguments.get("session_id"), exc.message)
                    self._owed[:0] = batch[n:]  # in order, before any owed meanwhile
                    break
                await owed.then(notice)
            delay = min(delay * 2, OWED_MAX_S) if self._owed else OWED_FIRST_S

    def _unwatch(self, agent_id: str, session_id: str, *, ended: bool = True) -> None:
        if ended:
            self._ended[session_id] = None
            while len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
        sessions = self.watching.get(agent_id, {})
        if sessions.pop(session_id, None) is not None:
            if not sessions:
                self.watching.pop(agent_id, None)
            self._push(agent_id, self.monitoring_event(agent_id))

    def sync_watching(self, running: dict[str, RunningListen]) -> None:
        """Make the live indicators what the reconciled roster says: listens that run nowhere
        any more are cleared (their end was missed while the bus was down), listens running
        elsewhere that this board never heard of are shown (they began before this node did,
        or their start was missed)."""
        for agent_id, sessions in list(self.watching.items()):
            for session_id in [s for s in sessions if s not in running]:
                self._unwatch(agent_id, session_id, ended=False)  # shown again if listed again
        for session_id, listen in running.items():
            if session_id in self._ended:
                continue
            if listen.mode == "live" and session_id not in self.watching.get(listen.agent_id, {}):
                self.listen_started(
                    agent_id=listen.agent_id,
                    session_id=session_id,
                    label=listen.label,
                    mode=listen.mode,
                    purpose=listen.purpose,
                )

    async def listen_ended_elsewhere(self, *, agent_id: str, session_id: str, notice_id: str | None) -> None:
        """A listen made on another node ended: clear its indicator here and show the notice
        that node kept in the shared store to the agent's pages open here."""
        self._unwatch(agent_id, session_id)
        if notice_id is None or agent_id not in self._subscribers:
            return
        notice = await self.store.get(notice_id)
        if notice is not None and notice.agent_id == agent_id and notice.seen_at is None:
            await self._announce(notice)

    async def run_digest(self) -> list[Notice]:
        """Summarise every pending digest item into one notice per agent, now."""
        zone = self.policy().hours.zone
        made = []
        for agent_id, items in (await self.store.take_digest_items()).items():
            texts = texts_of(digest_text, items, zone)
            data = {
                "sessions": [i["session_id"] for i in items],
                "listens": items,
                "policy_version": self.policy().version,
                "texts": texts,
            }
            notice, _ = await self.store.add(agent_id, "digest", texts["en"], data, self.clock())
            await self._announce(notice)
            made.append(notice)
        return made

    def next_digest_at(self) -> float | None:
        """When the next digest is due (Unix time, by ``clock``), or ``None`` without a schedule."""
        policy = self.policy()
        schedule = policy.notices.digest_schedule
        if schedule is None:
            return None
        now = datetime.fromtimestamp(self.clock(), UTC)
        return schedule.next_after(now, policy.hours.zone).timestamp()

    async def _digest_timer(self) -> None:
        """Run the digest at the policy's schedule (re-read each time: the policy may change)."""
        while True:
            try:
                due = self.next_digest_at()
                if due is None:
                    await asyncio.sleep(DIGEST_RECHECK_S)
                    continue
                wait = due - self.clock()
                if wait > DIGEST_RECHECK_S:
                    await asyncio.sleep(DIGEST_RECHECK_S)
                    continue
                await asyncio.sleep(max(wait, 0.0))
                await self.run_digest()
            except asyncio.CancelledError:
                raise
            except Exception:  # task boundary: log, keep the timer alive
                log.exception("digest run failed")
                await asyncio.sleep(DIGEST_RECHECK_S)

    # --- delivery and acknowledgement -----------------------------------------------------

    async def _announce(self, notice: Notice) -> None:
        if self._push(notice.agent_id, {"type": "notice", "notice": notice.to_json()}):
            await self.delivered(notice, "socket")

    async def delivered(self, notice: Notice, channel: str) -> None:
        """Record the first time ``notice`` reached its agent (``notice.delivered``)."""
        at = self.clock()
        if not await self.store.mark_delivered(notice.notice_id, at):
            return
        try:
            await self.ledger.append(
                "notice.delivered",
                actor="system",
                at=at,
                notice_id=notice.notice_id,
                agent_id=notice.agent_id,
                session_id=notice.data.get("session_id"),
                call_id=notice.data.get("call_id"),
                mode=notice.mode,
                channel=channel,
                policy_version=notice.data.get("policy_version"),
            )
        except LiveError as exc:
            log.error("could not record delivery of notice %s: %s", notice.notice_id, exc.message)

    async def notices_for(self, agent_id: str) -> list[Notice]:
        """The agent's notices, newest last; listing them delivers the undelivered ones."""
        notices = await self.store.of_agent(agent_id)
        for notice in notices:
            if notice.delivered_at is None:
                await self.delivered(notice, "page")
        return await self.store.of_agent(agent_id)

    async def seen(self, agent_id: str, notice_id: str) -> Notice:
        notice = await self.store.get(notice_id)
        if notice is None:
            raise NotFound(f"no notice {notice_id!r}", code="unknown_notice")
        if notice.agent_id != agent_id:
            raise Forbidden("this notice is not yours", code="not_your_notice")
        if notice.delivered_at is None:
            await self.delivered(notice, "page")
        at = self.clock()
        if await self.store.mark_seen(notice_id, at):
            await self.ledger.append(
                "notice.seen",
                actor=agent_id,
                at=at,
                notice_id=notice_id,
                agent_id=agent_id,
                session_id=notice.data.get("session_id"),
                call_id=notice.data.get("call_id"),
                seen_at=at,
            )
        updated = await self.store.get(notice_id)
        assert updated is not None
        return updated

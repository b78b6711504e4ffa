"""The composition root: one node's parts, built from the settings and wired together.

Each part has ``start()`` / ``stop()``; ``Node`` starts them in dependency order and stops
them in reverse, undoing a half-done start. The embedded engines (in-process bus, SQLite
ledger) and the cluster ones (Redis, PostgreSQL) are built here alike; nothing else chooses.

Data flow (docs/ARCHITECTURE.md): ingest adapters feed the ``CallRegistry``; the
``ListenService`` decides with the ``PolicyHolder``, records in the ledger (through the
spool), connects listeners to the registry's media and tells agents through the notice
board; ``Housekeeping`` keeps the node's proof of life, heartbeat and retention.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .audit import Ledger, open_ledger
from .audit.spool import SPOOL_FILE, LedgerSpool
from .bus import CallBus, MemoryCallBus
from .calls import CallRegistry, CallStats
from .config import IceServer, Settings
from .housekeeping import Housekeeping, LedgerStats
from .listens import ListenService, ListenStats
from .notices import NoticeBoard, NoticeRelay, NoticeTable, open_notice_store
from .notices.board import RunningListen
from .policy_holder import PolicyHolder
from .types import NodeId

log = logging.getLogger(__name__)

NOTICES_FILE = "notices.sqlite3"


@dataclass(frozen=True, slots=True)
class NodeStats:
    """Everything ``/metrics`` reports of the node's parts."""

    calls: CallStats
    listens: ListenStats
    ledger: LedgerStats
    bus_connected: bool  # the bus can be used now (an in-process bus always can)


def make_bus(settings: Settings) -> CallBus:
    if settings.redis_url:
        from .bus.redis import RedisCallBus

        return RedisCallBus(
            settings.redis_url.get_secret_value(),
            settings.effective_node_id,
            heartbeat_s=heartbeat_s(settings),
            node_timeout_s=float(settings.node_timeout_s),
        )
    return MemoryCallBus()


def heartbeat_s(settings: Settings) -> float:
    """How often a node beats and resyncs its roster: four beats fit in the node timeout,
    and at most every 2 s (a dead node's calls leave within ``node_timeout_s`` + this)."""
    return min(2.0, settings.node_timeout_s / 4)


def make_ledger(settings: Settings) -> Ledger:
    return open_ledger(
        settings.ledger.url.get_secret_value(),
        settings.ledger_path,
        key_path=settings.ledger_key_path,
        origin=settings.ledger.origin or None,
        checkpoint_every=settings.ledger.checkpoint_every,
        checkpoint_interval_s=float(settings.ledger.checkpoint_interval_s),
    )


class Node:
    """One ``live`` node: the stores it opens and the parts that use them."""

    def __init__(
        self,
        *,
        node_id: NodeId,
        bus: CallBus,
        ledger: Ledger,
        spool: LedgerSpool,
        notice_store: NoticeTable,
        policy_path: Path,
        ice_servers: Sequence[IceServer] = (),
        listener_queue_packets: int = 10,
        resync_s: float | None = None,
    ) -> None:
        self.node_id = node_id
        self.bus = bus
        self.ledger = ledger
        self.spool = spool
        self.policy = PolicyHolder(policy_path, ledger)
        self.notices = NoticeBoard(notice_store, spool, self.policy.current)
        self.notice_relay = NoticeRelay(self.notices, node_id)  # listens made on other nodes
        self.calls = CallRegistry(node_id, bus, self.policy, resync_s=resync_s)
        self.listens = ListenService(
            node_id=node_id,
            ledger=ledger,
            spool=spool,
            bus=bus,
            calls=self.calls,
            policy=self.policy,
            notices=self.notices,
            ice_servers=ice_servers,
            queue_packets=listener_queue_packets,
        )
        # A listen whose end the bus lost leaves the agent's indicator on nowhere once the
        # roster is reconciled: only listens the cluster (or this node) still runs are shown.
        self.calls.after_resync(lambda: self.notices.sync_watching(self._running_listens()))
        self.calls.watch(self.listens)
        self.housekeeping = Housekeeping(
            node_id=node_id, ledger=ledger, spool=spool, policy=self.policy, running=self.listens.running
        )

    def _running_listens(self) -> dict[str, RunningListen]:
        """Every listen running in the cluster as the roster shows it, and those served here."""
        running = self.calls.listening()
        for session in self.listens.sessions.values():
            running[session.session_id] = RunningListen(
                session.agent_id, session.label, session.purpose, session.notice_mode
            )
        return running

    async def start(self) -> None:
        """Open the stores, load the policy, close what a crash left open, join the bus.

        A step that fails undoes the steps before it, then its error propagates (an invalid
        policy file is a ``ConfigError``)."""
        undo: list[Callable[[], Awaitable[None]]] = []
        try:
            await self.ledger.open()
            undo.append(self.ledger.aclose)
            await self.spool.open()
            undo.append(self.spool.aclose)  # what is still spooled is written at the next start
            await self.policy.start()
            await self.notices.start()
            undo.append(self.notices.aclose)
            self.notice_relay.start()
            undo.append(self.notice_relay.aclose)
            unfollow = self.bus.subscribe(self.notice_relay.on_event)
            undo.append(_undoing(unfollow))
            await self.listens.start()
            await self.housekeeping.start()
            undo.append(self.housekeeping.stop)
            await self.bus.start()
            undo.append(self.bus.aclose)
            await self.calls.start()
        except BaseException:
            for step in reversed(undo):
                try:
                    await step()
                except Exception:  # the start's own error is the one to report
                    log.exception("could not undo a step of a failed start")
            raise

    async def stop(self) -> None:
        """End every listen (``shutdown``) and every call ingested here, then close."""
        await self.listens.stop()
        await self.calls.stop()
        await self.housekeeping.stop()
        await self.listens.settled()
        await self.bus.aclose()
        await self.notice_relay.aclose()
        await self.spool.aclose()
        await self.notices.aclose()
        await self.ledger.aclose()

    def unready_reason(self) -> str | None:
        """Why this node cannot serve listens right now (``/readyz``), or ``None``."""
        problem = self.housekeeping.ledger_problem()
        if problem is not None:
            return problem
        if self.bus.problem is not None:
            return f"the bus cannot be used: {self.bus.problem}"
        return None

    def stats(self) -> NodeStats:
        return NodeStats(
            self.calls.stats(), self.listens.stats(), self.housekeeping.stats(), self.bus.problem is None
        )


def _undoing(step: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def undo() -> None:
        step()

    return undo


def build_node(
    settings: Settings, *, bus: CallBus | None = None, ledger: Ledger | None = None
) -> Node:
    """The node ``settings`` describe; tests may pass their own bus or ledger."""
    ledger = ledger if ledger is not None else make_ledger(settings)
    bus = bus if bus is not None else make_bus(settings)
    return Node(
        node_id=NodeId(settings.effective_node_id),
        bus=bus,
        ledger=ledger,
        spool=LedgerSpool(settings.data_dir / SPOOL_FILE, ledger),
        notice_store=open_notice_store(settings.ledger.url.get_secret_value(), settings.data_dir / NOTICES_FILE),
        policy_path=settings.policy_path,
        ice_servers=settings.ice_servers,
        listener_queue_packets=settings.listener_queue_packets,
        # A bus that can lose events (Redis) is reconciled with at every heartbeat.
        resync_s=None if isinstance(bus, MemoryCallBus) else heartbeat_s(settings),
    )

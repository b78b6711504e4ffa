"""Housekeeping: the node's proof of life, the ledger heartbeat, retention, the spool's retries.

* Proof of life (every ``PROOF_OF_LIFE_S``): each running listen session is kept alive in the
  local spool, so a crash is closed at the next start between the last proof and the restart
  (architecture decision 10).
* Heartbeat (every ``HEARTBEAT_S``): a ledger write that tells whether the ledger answers;
  it is also the probe behind ``/readyz`` and what clears or raises the spool's ``problem``.
* Retention: a minute after start, then hourly, personal details older than the policy's
  retention period are erased (``purge.done``; leaves and checkpoints stay valid).
* The spool retries pending entries in the background from ``start`` to ``stop``.

Signed checkpoints on a timer are the ledger's own (``live.audit.log``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .audit import Ledger
from .audit.spool import LedgerSpool
from .errors import LiveError
from .policy_holder import PolicyHolder
from .types import NodeId, SessionId

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # the ledger heartbeat, also the probe behind /readyz
PROBE_SLOW_S = 5.0  # a heartbeat still waiting this long means the ledger does not answer
PROOF_OF_LIFE_S = 0.5  # each running session's proof of life: at least every second
RETENTION_EVERY_S = 3600.0
RETENTION_FIRST_S = 60.0


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """What ``/metrics`` shows of the ledger's health."""

    spooled: int
    writable: bool


class Housekeeping:
    """Owns the node's periodic work; ``running`` lists the sessions that need proof of life."""

    def __init__(
        self,
        *,
        node_id: NodeId,
        ledger: Ledger,
        spool: LedgerSpool,
        policy: PolicyHolder,
        running: Callable[[], list[SessionId]],
    ) -> None:
        self._node_id = node_id
        self._ledger = ledger
        self._spool = spool
        self._policy = policy
        self._running = running
        self._probe_since: float | None = None  # monotonic start of the heartbeat in flight
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._stopping.clear()
        self._spool.start()
        self._tasks = [
            asyncio.create_task(self._keep_alive(), name="proof-of-life"),
            asyncio.create_task(self._beat(), name="ledger-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop the timers (the spool's retries stop when it closes)."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()  # a write in flight ends now; the loops also check ``_stopping``
        if tasks:
            await asyncio.wait(tasks)

    def ledger_problem(self) -> str | None:
        """Why the ledger cannot take a listen's records right now, or ``None``."""
        if self._spool.problem is not None:
            return f"the ledger cannot be written: {self._spool.problem}"
        probing = self._probe_since
        if probing is not None and time.monotonic() - probing > PROBE_SLOW_S:
            # A frozen database fails a write only after its timeouts (a minute): not ready now.
            return f"the ledger does not answer: a write has waited {time.monotonic() - probing:.0f} s"
        return None

    def stats(self) -> LedgerStats:
        return LedgerStats(spooled=self._spool.waiting, writable=self._spool.problem is None)

    async def apply_retention(self, now: float) -> int:
        """Erase personal details older than the policy's retention period (a ``purge.done``
        entry records it; leaves and checkpoints stay valid). Returns how many were erased."""
        policy = self._policy.loaded
        if policy is None:
            return 0
        days = policy.retention_days
        try:
            erased = await self._ledger.erase_details(now - days * 86400.0, retention_days=days)
        except LiveError as exc:
            log.error("retention purge failed: %s", exc.message)
            return 0
        if erased:
            log.info("retention: erased the personal details of %d ledger entries", erased)
        return erased

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until ``stop``; whether to go on."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _keep_alive(self) -> None:
        """Proof of life of every running session, kept locally (decision 10)."""
        failing = False
        while not self._stopping.is_set():
            try:
                await self._spool.alive(self._node_id, time.time(), self._running())
                failing = False
            except LiveError as exc:
                if not failing:
                    log.error("could not keep the sessions' proof of life: %s", exc.message)
                failing = True
            if not await self._pause(PROOF_OF_LIFE_S):
                return

    async def _beat(self) -> None:
        # First purge a minute after start (not during start-up), then hourly.
        next_retention = time.time() + RETENTION_FIRST_S
        while not self._stopping.is_set():
            now = time.time()
            self._probe_since = time.monotonic()
            try:
                await self._ledger.heartbeat(self._node_id, now)
            except LiveError as exc:
                if self._spool.problem is None:
                    log.error("ledger heartbeat failed: %s", exc.message)
                self._spool.failed(exc.message)
            else:
                self._spool.succeeded()
            finally:
                self._probe_since = None
            if now >= next_retention:
                next_retention = now + RETENTION_EVERY_S
                await self.apply_retention(now)
            if not await self._pause(HEARTBEAT_S):
                return

"""When the cluster-wide limits are used, and the documented fallback while Redis is down.

With ``LIVE_REDIS_URL`` set, every limit is asked of the shared ``LimitStore`` first. When
Redis does not answer (within ``store.SOCKET_TIMEOUT_S``), the node falls back to its own
in-memory limits, the ones it has always kept alongside: a cluster of N nodes then allows up
to N times the rates and listens at once until Redis is back. The fallback is logged once
per outage (WARNING, and INFO when it ends) and shown in ``/metrics``
(``live_limits_shared`` 0 or 1, ``live_limits_fallbacks_total``). While falling back, Redis
is tried again every ``retry_s`` seconds, so that requests do not each wait for it.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import BusUnavailable
from .store import LimitStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class Unshared(enum.Enum):
    """What ``SharedLimits.attempt`` returns when the node must use its own limits."""

    UNSHARED = 0


UNSHARED = Unshared.UNSHARED


class SharedLimits:
    """The shared store (or none, on a node without Redis) and whether it answers now."""

    def __init__(self, store: LimitStore | None, *, retry_s: float = 2.0) -> None:
        self.store = store
        self.retry_s = retry_s
        self.in_use = store is not None
        """False while falling back to this node's own limits."""
        self.fallbacks = 0
        """Times this node fell back to its own limits (Redis became unusable)."""
        self._retry_at = 0.0

    async def start(self) -> None:
        if self.store is not None:
            await self.store.start()

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()

    def failed(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + self.retry_s
        if self.in_use:
            self.in_use = False
            self.fallbacks += 1
            log.warning("cluster-wide limits unavailable, this node applies its own limits: %s", exc)

    def _succeeded(self) -> None:
        if not self.in_use:
            self.in_use = True
            log.info("cluster-wide limits in use again")

    async def attempt(self, operation: Callable[[LimitStore], Awaitable[T]]) -> T | Unshared:
        """``operation`` on the store, or ``UNSHARED`` when there is none or it failed (now
        or within the last ``retry_s`` seconds)."""
        if self.store is None or (not self.in_use and time.monotonic() < self._retry_at):
            return UNSHARED
        try:
            result = await operation(self.store)
        except BusUnavailable as exc:
            self.failed(exc)
            return UNSHARED
        self._succeeded()
        return result

    def metric_lines(self) -> list[str]:
        if self.store is None:
            return []
        return [
            "# TYPE live_limits_shared gauge",
            f"live_limits_shared {1 if self.in_use else 0}",
            "# TYPE live_limits_fallbacks_total counter",
            f"live_limits_fallbacks_total {self.fallbacks}",
        ]

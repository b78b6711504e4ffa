"""Named rate limits: cluster-wide when the shared store answers, else this node's own.

This node's buckets are spent alongside the shared ones, so that when Redis goes away the
per-node limits it falls back to already know the recent past.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .bucket import RateLimit
from .shared import UNSHARED, SharedLimits


class Rates:
    def __init__(self, limits: Mapping[str, RateLimit], shared: SharedLimits) -> None:
        self.limits = dict(limits)
        self.shared = shared

    def __getitem__(self, name: str) -> RateLimit:
        return self.limits[name]

    async def wait(self, name: str, key: str) -> float:
        """Seconds until ``key`` may go again under limit ``name`` (0: now)."""
        limit = self.limits[name]
        if limit.off:
            return 0.0
        now = time.monotonic()
        shared = await self.shared.attempt(lambda store: store.rate(name, key, limit, "wait"))
        return limit.wait(key, now) if shared is UNSHARED else shared

    async def spend(self, name: str, key: str) -> None:
        """Count one more (a failure that happened) against ``key``."""
        limit = self.limits[name]
        if limit.off:
            return
        limit.spend(key, time.monotonic())
        await self.shared.attempt(lambda store: store.rate(name, key, limit, "spend"))

    async def take(self, name: str, key: str) -> float:
        """Count one more against ``key`` if it may go now (returns 0), else return the wait."""
        limit = self.limits[name]
        if limit.off:
            return 0.0
        now = time.monotonic()
        shared = await self.shared.attempt(lambda store: store.rate(name, key, limit, "take"))
        if shared is UNSHARED:
            return limit.take(key, now)
        if not shared:
            limit.spend(key, now)
        return shared

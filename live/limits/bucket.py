"""Token buckets kept in memory: the per-node side of every rate limit.

A bucket per key holds up to ``burst`` tokens and refills ``per_minute`` of them a minute.
A request that needs a token waits ``(1 - tokens) * 60 / per_minute`` seconds when fewer
than one is left. ``floor`` below zero lets spending run into debt, so that a client that
keeps failing past the limit waits longer each time (the sign-in backoff per address); with
``floor = 0`` the wait never exceeds one token's refill.

The same arithmetic runs in Redis for the cluster-wide limits (``live.limits.store``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_KEYS = 50_000
"""Buckets kept per limit before the full ones (those that forgot every spend) are dropped."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class RateLimit:
    """A token bucket per key: ``per_minute`` refill, bursts up to ``burst``, debt down to
    ``floor``. ``per_minute = 0`` turns the limit off (every wait is 0)."""

    per_minute: float
    burst: float
    floor: float = 0.0
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    @property
    def off(self) -> bool:
        return self.per_minute <= 0

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_KEYS:
                self._forget_full(now)
            bucket = self.buckets[key] = _Bucket(self.burst, now)
        else:
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_minute / 60)
            bucket.stamp = now
        return bucket

    def _forget_full(self, now: float) -> None:
        rate = self.per_minute / 60
        for key in [k for k, b in self.buckets.items() if b.tokens + (now - b.stamp) * rate >= self.burst]:
            del self.buckets[key]

    def _wait(self, tokens: float) -> float:
        return 0.0 if tokens >= 1 else (1 - tokens) * 60 / self.per_minute

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token again (0: now). Spends nothing."""
        if self.off:
            return 0.0
        return self._wait(self._bucket(key, now).tokens)

    def spend(self, key: str, now: float) -> None:
        """Spend a token whether or not there is one (a failure that happened), down to ``floor``."""
        if not self.off:
            bucket = self._bucket(key, now)
            bucket.tokens = max(self.floor, bucket.tokens - 1)

    def take(self, key: str, now: float) -> float:
        """Spend a token if there is one and return 0, else return the wait and spend nothing."""
        if self.off:
            return 0.0
        bucket = self._bucket(key, now)
        wait = self._wait(bucket.tokens)
        if not wait:
            bucket.tokens -= 1
        return wait

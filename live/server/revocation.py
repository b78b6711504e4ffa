"""Session revocation for the running server: local file, and Redis when nodes share a bus.

A sign-out on one node must end that session on every node at once, or a copied cookie
would keep working elsewhere. Each revocation is written to the node's own file (kept over
restarts) and, in a cluster, to Redis, which every node reads every ``interval_s`` seconds.
A request that reaches another node within that interval is the bounded window; the cookie
has also gone from the browser that signed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..auth import Revocations
from ..bus.keys import RedisKeys

log = logging.getLogger(__name__)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RevocationService:
    def __init__(self, revocations: Revocations, redis_url: str = "", *, interval_s: float = 1.0) -> None:
        self.local = revocations
        self._redis_url = redis_url
        self._keys = RedisKeys()
        self._interval_s = interval_s
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._redis_url:
            self._client = aioredis.Redis.from_url(self._redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._task = asyncio.create_task(self._run(), name="session-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        self.local.close()

    async def revoke(self, session_id: str, expires_at: float) -> None:
        self.local.revoke(session_id, expires_at)
        if self._client is not None:
            try:
                await self._client.zadd(self._keys.revoked_sessions, {session_id: expires_at})
            except (RedisError, OSError) as exc:  # the local revocation stands; others poll again
                log.warning("could not share a session revocation through Redis: %s", exc)

    async def revoke_user(self, user_id: str, not_before: float) -> None:
        self.local.revoke_user(user_id, not_before)
        if self._client is not None:
            try:
                await self._client.hset(self._keys.revoked_users, user_id, repr(not_before))
            except (RedisError, OSError) as exc:
                log.warning("could not share a user's session revocation through Redis: %s", exc)

    async def _pull(self, client: aioredis.Redis, now: float) -> None:
        await client.zremrangebyscore(self._keys.revoked_sessions, "-inf", now)
        sessions = await client.zrangebyscore(self._keys.revoked_sessions, now, "+inf", withscores=True)
        users = await client.hgetall(self._keys.revoked_users)
        self.local.merge(
            {_text(entry[0]): float(entry[1]) for entry in sessions if isinstance(entry, (tuple, list))},
            {_text(uid): float(_text(value)) for uid, value in users.items()},
        )

    async def _run(self) -> None:
        last_purge = 0.0
        while True:
            now = time.time()
            try:
                self.local.refresh()
                if now - last_purge > 3600:
                    self.local.purge(now)
                    last_purge = now
                if self._client is not None:
                    await self._pull(self._client, now)
            except (RedisError, OSError, ValueError) as exc:
                log.warning("session revocations not refreshed: %s", exc)
            except Exception:  # task boundary: keep refreshing
                log.exception("session revocation refresh failed")
            await asyncio.sleep(self._interval_s)

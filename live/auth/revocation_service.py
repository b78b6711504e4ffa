"""What one node knows of revoked sessions and tokens, kept current and failing closed.

The durable copy is the shared store (``revocation_store``): a sign-out is written there
before it is announced. Every node reads what was added since its last read every
``poll_s`` seconds, so it learns every revocation even when Redis lost it (an outage, a
restart with an empty memory). Redis pub/sub (``RedisKeys.revocations``) only makes it
faster: a revocation is announced there too and applied on arrival, and a node that
(re)subscribes reads the store at once.

The bound (``bound_s``): a node whose last successful read of the store *started* more than
``bound_s`` seconds ago refuses every cookie session and API token with 503
``revocations_unavailable`` until a read succeeds again. So a revocation committed at time T
is honoured by every node from T + ``bound_s`` on at the latest (within ``poll_s`` while the
store answers), or the node accepts no credential at all.

A revocation the store could not take is kept in memory (it holds on this node at once),
announced through Redis, and written again at every poll until the store takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus.keys import RedisKeys
from ..errors import LiveError, RevocationsUnavailable
from .revocation_store import RevocationStore
from .revocations import Revocation, RevocationKind, RevokedSet, token_revoked, user_revoked
from .sessions import BrowserSession

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0


class RevocationService:
    """The node's revocations: the store, the set it has learnt, and how fresh that is."""

    def __init__(
        self,
        store: RevocationStore,
        *,
        session_ttl_s: float,
        redis_url: str = "",
        poll_s: float = 1.0,
        bound_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < poll_s < bound_s:
            raise ValueError("the revocation poll interval must be positive and below the bound")
        self.store = store
        self.known = RevokedSet()
        self._ttl_s = session_ttl_s
        self._redis_url = redis_url
        self._keys = RedisKeys()
        self._poll_s = poll_s
        self._bound_s = bound_s
        self._clock = clock
        self._monotonic = monotonic
        self._cursor = 0
        self._fresh_at: float | None = None
        self._pending: list[Revocation] = []
        self._flushing = asyncio.Lock()  # one write at a time: a batch leaves _pending once
        self._wake = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle

    async def start(self) -> None:
        """Open the store and read it once (a failure is the start's error), then keep
        reading it and, in a cluster, listen to Redis."""
        await self.store.open()
        try:
            await self._read()
        except BaseException:
            await self.store.aclose()
            raise
        self._tasks.append(asyncio.create_task(self._poll(), name="revocations-poll"))
        if self._redis_url:
            self._client = aioredis.Redis.from_url(self._redis_url, socket_connect_timeout=2, socket_timeout=5)
            self._tasks.append(asyncio.create_task(self._listen(self._client), name="revocations-redis"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._pending:
            with contextlib.suppress(RevocationsUnavailable, TimeoutError):
                await self._flush()
            if self._pending:
                log.error("%d revocation(s) could not be stored before stopping", len(self._pending))
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.store.aclose()

    # -- checking credentials

    def stale_for(self) -> float | None:
        """Seconds beyond the bound since the last successful read started (else ``None``)."""
        if self._fresh_at is None:
            return float("inf")
        late = self._monotonic() - self._fresh_at - self._bound_s
        return late if late > 0 else None

    def check_fresh(self) -> None:
        """Raise ``RevocationsUnavailable`` (503) while this node may not know every revocation."""
        if self.stale_for() is not None:
            raise RevocationsUnavailable(
                "this node cannot currently learn which sessions are signed out, so it accepts none; try again shortly",
                retry_after_s=self._poll_s,
            )

    def session_revoked(self, session: BrowserSession) -> bool:
        """Whether ``session`` is revoked; ``RevocationsUnavailable`` when this node cannot know."""
        self.check_fresh()
        return self.known.session_revoked(session)

    def token_revoked(self, digest: str) -> bool:
        """Whether the API token with SHA-256 ``digest`` is withdrawn (fails closed alike)."""
        self.check_fresh()
        return self.known.token_revoked(digest)

    # -- revoking

    async def revoke(self, session_id: str, expires_at: float) -> None:
        """Sign out one session on every node."""
        await self.record([Revocation(RevocationKind.SESSION, session_id, self._clock(), expires_at)])

    async def revoke_user(self, user_id: str, not_before: float) -> None:
        """Sign out every session of ``user_id`` issued until ``not_before``, on every node."""
        await self.record([user_revoked(user_id, not_before, self._ttl_s)])

    async def revoke_tokens(self, digests: Sequence[str]) -> None:
        """Withdraw API tokens (by their SHA-256) on every node."""
        now = self._clock()
        await self.record([token_revoked(digest, now) for digest in digests])

    async def record(self, revocations: Sequence[Revocation]) -> None:
        """Hold ``revocations`` here at once, store them, announce them through Redis.

        If the store cannot take them now they are written at the next poll that can."""
        for revocation in revocations:
            self.known.add(revocation)
        self._pending.extend(revocations)
        try:
            await self._flush()
        except (RevocationsUnavailable, TimeoutError) as exc:
            log.warning("revocation kept on this node until the store takes it: %s", exc)
        await self._announce(revocations)

    async def _flush(self) -> None:
        async with self._flushing:
            if not self._pending:
                return
            batch = list(self._pending)
            async with asyncio.timeout(self._bound_s):
                await self.store.add(batch)
            del self._pending[: len(batch)]

    async def _announce(self, revocations: Sequence[Revocation]) -> None:
        if self._client is not None:
            await announce(self._client, revocations)

    # -- learning

    async def _read(self) -> None:
        started = self._monotonic()
        async with asyncio.timeout(self._bound_s):
            found, self._cursor = await self.store.read_after(self._cursor, self._clock())
        for revocation in found:
            self.known.add(revocation)
        self._fresh_at = started

    async def _poll(self) -> None:
        last_purge = self._monotonic()
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
                await self._read()
                if self._monotonic() - last_purge > PURGE_EVERY_S:
                    last_purge = self._monotonic()
                    now = self._clock()
                    await self.store.purge(now)
                    self.known.purge(now)
                if failing:
                    log.info("revocations read from %s again", self.store.description)
                failing = False
            except (LiveError, TimeoutError) as exc:
                if not failing:
                    log.warning("revocations could not be read from %s: %s", self.store.description, exc)
                failing = True
            except Exception:  # task boundary: keep reading
                log.exception("revocation poll failed")

    def _learn(self, data: bytes | str) -> None:
        try:
            self.known.add(Revocation.from_json(data))
        except LiveError as exc:  # one bad message must not stop the others
            log.warning("ignored a revocation announcement: %s", exc)

    async def _listen(self, client: aioredis.Redis) -> None:
        backoff = _BACKOFF_FIRST_S
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.revocations)
                backoff = _BACKOFF_FIRST_S
                self._wake.set()  # what was announced while unsubscribed is in the store
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._learn(message["data"])
            except (RedisError, OSError) as exc:
                level = logging.WARNING if backoff == _BACKOFF_FIRST_S else logging.DEBUG
                log.log(level, "revocation announcements lost (%s); the store is still read", exc)
            except Exception:  # task boundary: never let the listener die
                log.exception("revocation announcements failed")
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)


async def announce(client: aioredis.Redis, revocations: Sequence[Revocation]) -> None:
    """Tell every subscribed node at once; best effort (the store is the durable copy)."""
    try:
        for revocation in revocations:
            await client.publish(RedisKeys().revocations, revocation.to_json())
    except (RedisError, OSError) as exc:  # the store has it (or will): others poll it
        log.info("revocation not announced through Redis: %s", exc)


async def revoke_from_outside(store: RevocationStore, redis_url: str, revocations: Sequence[Revocation]) -> None:
    """Store ``revocations`` from a process that serves nothing (``live users``), then
    announce them. ``RevocationsUnavailable`` when the store cannot take them."""
    await store.open()
    try:
        await store.add(revocations)
    finally:
        await store.aclose()
    if redis_url:
        client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await announce(client, revocations)
        finally:
            await client.aclose()

"""The cluster bus: Redis pub/sub for events and media relay, hashes for the shared roster.

* Every event is applied to Redis state and published in one MULTI transaction; every node,
  the publisher included, receives it from the subscription, so all nodes see one order.
* A node's calls and listeners count only while its heartbeat (sorted set) is fresh, so a
  crashed node's calls leave every roster after ``node_timeout_s``.
* Media crosses nodes only on demand (architecture decision 7): a listening node publishes
  ``want:<call_id>`` every couple of seconds, and the ingesting node relays that call's
  packets on ``media:<call_id>`` while the request is fresh.
* Redis down: ``publish`` raises ``BusUnavailable``; the reader reconnects with backoff and
  resubscribes; nothing else on the node stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any, Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..codec import decode_event, encode_event
from ..errors import BusUnavailable, LiveError
from ..model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenStarted,
)
from ..types import CallId
from .base import EventHandler, MediaHandler, Unsubscribe
from .keys import RedisKeys

log = logging.getLogger(__name__)

WANT_TTL_S = 6.0
CLOSE_TIMEOUT_S = 2.0


class RedisCallBus:
    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        prefix: str = "live:",
        heartbeat_s: float = 2.0,
        node_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.keys = RedisKeys(prefix)
        self.heartbeat_s = heartbeat_s
        self.node_timeout_s = node_timeout_s
        self._redis: aioredis.Redis | None = None
        self._handlers: list[EventHandler] = []
        self._media_handlers: dict[str, list[MediaHandler]] = {}
        self._wanted: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._media_pubsub: Any = None
        self._media_task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        try:
            await self._redis.ping()
            await self._beat_once()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            self._redis = None
            raise BusUnavailable(f"cannot reach Redis: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._read_events(), name="redis-events"),
            asyncio.create_task(self._heartbeat(), name="redis-heartbeat"),
        ]
        try:
            await asyncio.wait_for(self._subscribed.wait(), 5)
        except asyncio.TimeoutError as exc:
            await self.aclose()
            raise BusUnavailable("could not subscribe to the events channel") from exc

    async def aclose(self) -> None:
        tasks = self._tasks + ([self._media_task] if self._media_task else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._media_task = [], None
        self._handlers.clear()
        redis = self._redis
        self._redis = None
        if redis is None:
            return
        # Shutdown must finish even when Redis is gone or a connection is wedged.
        try:
            await asyncio.wait_for(self._withdraw(redis), CLOSE_TIMEOUT_S)
        except (RedisError, OSError, asyncio.TimeoutError):
            log.warning("could not withdraw this node's calls from Redis")
        for pubsub in (self._pubsub, self._media_pubsub):
            if pubsub is not None:
                try:
                    await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_S)
                except (RedisError, OSError, asyncio.TimeoutError):
                    pass
        self._pubsub = self._media_pubsub = None
        try:
            await asyncio.wait_for(redis.aclose(), CLOSE_TIMEOUT_S)
        except (RedisError, OSError, asyncio.TimeoutError):
            pass

    async def _withdraw(self, redis: aioredis.Redis) -> None:
        """Remove this node's calls, listeners and heartbeat (best effort at shutdown)."""
        calls = await redis.hgetall(self.keys.calls)
        listens = await redis.hgetall(self.keys.listens)
        mine_calls = [
            k for k, v in calls.items() if (call := _decode_call(v)) is not None and call.node_id == self.node_id
        ]
        mine_listens = [
            k for k, v in listens.items() if (ev := _decode_listen(v)) is not None and ev.listener.node_id == self.node_id
        ]
        async with redis.pipeline(transaction=True) as pipe:
            if mine_calls:
                pipe.hdel(self.keys.calls, *mine_calls)
            if mine_listens:
                pipe.hdel(self.keys.listens, *mine_listens)
            pipe.zrem(self.keys.nodes, self.node_id)
            await pipe.execute()

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise BusUnavailable("the bus is not started")
        return self._redis

    async def _beat_once(self) -> None:
        await self._client().zadd(self.keys.nodes, {self.node_id: time.time()})

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._beat_once()
            except (RedisError, OSError) as exc:
                log.warning("redis heartbeat failed: %s", exc)

    async def _read_events(self) -> None:
        backoff = 0.2
        while True:
            try:
                self._pubsub = self._client().pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.keys.events, self.keys.control)
                self._subscribed.set()
                backoff = 0.2
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"].decode()
                    if channel == self.keys.control:
                        self._on_control(message["data"])
                    else:
                        self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("redis event subscription lost (%s); retrying in %.1fs", exc, backoff)
            try:
                if self._pubsub is not None:
                    await self._pubsub.aclose()
            except (RedisError, OSError):
                pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _deliver(self, data: bytes) -> None:
        try:
            event = decode_event(data)
        except LiveError as exc:
            log.warning("skipped an undecodable bus message: %s", exc.message)
            return
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not stop delivery to the others
                log.exception("bus subscriber failed on %s", event.kind)

    def _on_control(self, data: bytes) -> None:
        text = data.decode(errors="replace")
        if text.startswith("want:"):
            self._wanted[text[5:]] = time.monotonic() + WANT_TTL_S

    # --- events ------------------------------------------------------------------------

    async def publish(self, event: BusEvent) -> None:
        redis = self._client()
        data = encode_event(event)
        try:
            async with redis.pipeline(transaction=True) as pipe:
                if isinstance(event, (CallStarted, CallUpdated)):
                    bare = CallStarted(_without_listeners(event.call))
                    pipe.hset(self.keys.calls, event.call.call_id, encode_event(bare))
                elif isinstance(event, CallEnded):
                    pipe.hdel(self.keys.calls, event.call_id)
                elif isinstance(event, ListenStarted):
                    pipe.hset(self.keys.listens, event.listener.session_id, data)
                elif isinstance(event, ListenEnded):
                    pipe.hdel(self.keys.listens, event.session_id)
                pipe.publish(self.keys.events, data)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis publish failed: {exc}") from exc
        if isinstance(event, CallEnded):
            await self._forget_listens_of(event.call_id)

    async def _forget_listens_of(self, call_id: CallId) -> None:
        try:
            listens = await self._client().hgetall(self.keys.listens)
            stale = [k for k, v in listens.items() if (ev := _decode_listen(v)) is not None and ev.call_id == call_id]
            if stale:
                await self._client().hdel(self.keys.listens, *stale)
        except (RedisError, OSError) as exc:
            log.warning("could not clear listeners of ended call %s: %s", call_id, exc)

    async def snapshot(self) -> list[CallInfo]:
        redis = self._client()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.calls)
                pipe.hgetall(self.keys.listens)
                pipe.zrangebyscore(self.keys.nodes, time.time() - self.node_timeout_s, "+inf")
                raw_calls, raw_listens, alive_nodes = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis snapshot failed: {exc}") from exc
        alive = {n.decode() for n in alive_nodes}
        calls: dict[str, CallInfo] = {}
        for value in raw_calls.values():
            call = _decode_call(value)
            if call is not None and call.node_id in alive:
                calls[call.call_id] = call
        for value in raw_listens.values():
            listen = _decode_listen(value)
            if listen is not None and listen.call_id in calls and listen.listener.node_id in alive:
                calls[listen.call_id] = calls[listen.call_id].with_listener(listen.listener)
        return list(calls.values())

    def subscribe(self, handler: EventHandler) -> Unsubscribe:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    # --- media relay -------------------------------------------------------------------

    async def want_media(self, call_id: CallId) -> None:
        try:
            await self._client().publish(self.keys.control, f"want:{call_id}")
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis publish failed: {exc}") from exc

    def media_wanted(self, call_id: CallId) -> bool:
        until = self._wanted.get(call_id)
        if until is None:
            return False
        if until < time.monotonic():
            del self._wanted[call_id]
            return False
        return True

    async def publish_media(self, call_id: CallId, data: bytes) -> None:
        try:
            await self._client().publish(self.keys.media(call_id), data)
        except (RedisError, OSError) as exc:
            log.warning("media relay publish failed: %s", exc)

    async def subscribe_media(
        self, call_id: CallId, handler: MediaHandler
    ) -> Callable[[], Awaitable[None]]:
        channel = self.keys.media(call_id)
        if self._media_pubsub is None:
            self._media_pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        handlers = self._media_handlers.setdefault(channel, [])
        handlers.append(handler)
        try:
            if len(handlers) == 1:
                await self._media_pubsub.subscribe(channel)
        except (RedisError, OSError) as exc:
            handlers.remove(handler)
            raise BusUnavailable(f"Redis subscribe failed: {exc}") from exc
        if self._media_task is None or self._media_task.done():
            self._media_task = asyncio.create_task(self._read_media(), name="redis-media")

        async def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)
            if not handlers:
                self._media_handlers.pop(channel, None)
                try:
                    if self._media_pubsub is not None:
                        await self._media_pubsub.unsubscribe(channel)
                except (RedisError, OSError):
                    pass

        return unsubscribe

    async def _read_media(self) -> None:
        while True:
            try:
                pubsub = self._media_pubsub
                if pubsub is None or not self._media_handlers:
                    await asyncio.sleep(0.05)
                    continue
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                for handler in self._media_handlers.get(message["channel"].decode(), ()):
                    handler(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("media relay subscription failed: %s", exc)
                await asyncio.sleep(0.5)


def _without_listeners(call: CallInfo) -> CallInfo:
    return dataclasses.replace(call, listeners=())


def _decode_call(value: bytes | str) -> CallInfo | None:
    try:
        event = decode_event(value if isinstance(value, bytes) else value.encode())
    except LiveError:
        return None
    return event.call if isinstance(event, (CallStarted, CallUpdated)) else None


def _decode_listen(value: bytes | str) -> ListenStarted | None:
    try:
        event = decode_event(value if isinstance(value, bytes) else value.encode())
    except LiveError:
        return None
    return event if isinstance(event, ListenStarted) else None

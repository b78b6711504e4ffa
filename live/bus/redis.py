"""The cluster bus: Redis pub/sub for events and media relay, hashes for the shared roster.

* Every event is applied to the shared roster and published in one MULTI transaction; every
  node, the publisher included, receives it from its subscription, so all nodes see one order.
  Delivery is at most once: events published while a node's subscription is down are not
  replayed to it (``snapshot`` is the way to catch up).
* A node's calls and listeners count only while its heartbeat (sorted set, Redis server time,
  so clock skew between nodes does not matter) is fresh: a hung node's calls leave
  ``snapshot`` after ``node_timeout_s``. A node that starts again under the same id first
  withdraws what its previous life left behind.
* Repair: a node that finds its heartbeat gone (Redis restarted empty), or whose publish
  failed, makes Redis say what it asserts at its next heartbeat: its calls and listens are
  written back, its entries it no longer has are removed, and the ends it could not publish
  are published then.
* Media crosses nodes only on demand (architecture decision 7): a listening node publishes
  ``want:<call_id>`` every couple of seconds, and the ingesting node relays that call's packets
  on ``media:<call_id>`` while the request is fresh. Relayed packets go through a bounded
  queue and a single writer that pipelines them, so the media path never waits for Redis and
  never reorders packets; when the queue is full the oldest packet is dropped and counted.
* Redis down: ``publish``, ``snapshot`` and ``want_media`` raise ``BusUnavailable`` (a failed
  publish is repaired as above); the subscriptions reconnect with backoff and resubscribe; nothing else on the node stops.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
import typing
from collections.abc import Awaitable, Callable, Mapping

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, WatchError
from redis.typing import EncodableT

from ..codec import decode_event, encode_event
from ..errors import BadRequest, BusUnavailable
from ..model import (
    BusEvent,
    CallEnded,
    CallInfo,
    CallStarted,
    CallUpdated,
    ListenEnded,
    ListenStarted,
)
from ..types import CallId, EndReason
from .base import ClusterView, EventHandler, MediaHandler, Unsubscribe
from .keys import RedisKeys

log = logging.getLogger(__name__)

WANT_TTL_S = 6.0
"""How long one ``want_media`` request keeps a call relayed (listeners renew every ~2 s)."""
CLOSE_TIMEOUT_S = 2.0
"""Shutdown finishes within this even when Redis is gone or a connection is wedged."""
SUBSCRIBE_TIMEOUT_S = 5.0
MEDIA_QUEUE_PACKETS = 500
"""Relayed packets waiting for Redis, all calls together (~2.5 s of five listened calls)."""
MEDIA_BATCH_PACKETS = 128
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_WATCH_ATTEMPTS = 5

# ZADD this node with the Redis server's clock; returns 1 when the node was not there.
_HEARTBEAT_LUA = """
local now = redis.call('TIME')
local score = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
return redis.call('ZADD', KEYS[1], score, ARGV[1])
"""

ChannelHandler = Callable[[bytes, bytes], None]

# ``decode_event`` should refuse bad input with BadRequest only, but some malformed input
# still escapes as TypeError/ValueError (see the xfail cases in tests/unit/test_codec.py).
_UNDECODABLE = (BadRequest, TypeError, ValueError)


class RedisCallBus:
    """``CallBus`` over Redis (see ``live.bus.base`` for the contract, ``keys`` for the data).

    Handlers run in the reader task, one message at a time, in the order Redis delivered
    them; a handler that raises is logged and the others still run.
    """

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
        self.media_dropped = 0
        """Relayed packets dropped because Redis was slow or down (queue full, write failed)."""
        self._redis: aioredis.Redis | None = None
        self._events: _Subscription | None = None
        self._media: _Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: list[EventHandler] = []
        self._media_handlers: dict[bytes, tuple[MediaHandler, ...]] = {}
        self._wanted: dict[str, float] = {}
        self._media_queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._media_ready = asyncio.Event()
        # Concurrent publishes from this node would race on separate pooled connections;
        # the (FIFO) lock keeps them in the order publish() was called.
        self._publish_lock = asyncio.Lock()
        self._control_channel = self.keys.control.encode()
        # What this node asserts in the shared roster, to write back if Redis loses it:
        # call_id -> stored call, session_id -> (call_id, stored listen).
        self._own_calls: dict[EncodableT, EncodableT] = {}
        self._own_listens: dict[str, tuple[str, bytes]] = {}
        self._heartbeat_failure: str | None = None
        # A publish failed since the last repair; the ends it could not publish, in order.
        self._dirty = False
        self._unsent_ends: list[bytes] = []

    @property
    def problem(self) -> str | None:
        """Why this node cannot use Redis right now (its heartbeat failed, the event
        subscription is down), or ``None``."""
        if self._redis is None:
            return "the bus is not started"
        if self._heartbeat_failure is not None:
            return f"Redis heartbeat failed: {self._heartbeat_failure}"
        if self._events is not None and not self._events.connected:
            return "the Redis event subscription is reconnecting"
        return None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, withdraw leftovers of this node id, heartbeat, subscribe to the events.

        Once this returns every event published anywhere is delivered to the subscribers.
        """
        if self._redis is not None:
            raise RuntimeError("RedisCallBus already started")
        # One immediate retry on a fresh connection: after Redis restarts, the pool's older
        # connections are dead, and the first command on each would fail though Redis is up.
        client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10,
            retry=Retry(NoBackoff(), 1),
        )
        events = _Subscription(client, "events", self._on_message)
        try:
            await client.ping()
            await self._withdraw(client, EndReason.NODE_LOST)
            await self._beat(client)
            await events.add(self.keys.events, self.keys.control)
        except (RedisError, OSError, BusUnavailable) as exc:
            await events.aclose()
            await _quietly(client.aclose())
            if isinstance(exc, BusUnavailable):
                raise
            raise BusUnavailable(f"cannot reach Redis: {exc}") from exc
        self._redis, self._events = client, events
        self._media = _Subscription(client, "media", self._on_media)
        self._tasks = [
            asyncio.create_task(self._heartbeat(client), name="redis-heartbeat"),
            asyncio.create_task(self._write_media(client), name="redis-media-writer"),
        ]

    async def aclose(self) -> None:
        """Stop delivering, withdraw this node's calls and listens (announcing their end),
        drop the heartbeat and close every connection; bounded by ``CLOSE_TIMEOUT_S`` steps."""
        await _cancel_and_wait(self._tasks)
        self._tasks = []
        for subscription in (self._events, self._media):
            if subscription is not None:
                await subscription.aclose()
        self._events = self._media = None
        self._handlers.clear()
        self._media_handlers.clear()
        self._media_queue.clear()
        self._wanted.clear()
        client, self._redis = self._redis, None
        if client is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._withdraw(client, EndReason.SHUTDOWN)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            log.warning("could not withdraw this node's calls from Redis: %s", exc)
        self._own_calls.clear()
        self._own_listens.clear()
        await _quietly(client.aclose())

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise BusUnavailable("the bus is not started")
        return self._redis

    async def _withdraw(self, client: aioredis.Redis, reason: EndReason) -> None:
        """Remove this node's calls, listens and heartbeat, and announce their end.

        Run at start (what a crashed earlier life of this node id left) and at close.
        """
        async with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.calls)
            pipe.hgetall(self.keys.listens)
            raw_calls, raw_listens = await pipe.execute()
        calls = {
            key: call
            for key, value in raw_calls.items()
            if (call := _decode_call(value)) is not None and call.node_id == self.node_id
        }
        mine = {call.call_id for call in calls.values()}
        listens = {
            key: listen
            for key, value in raw_listens.items()
            if (listen := _decode_listen(value)) is not None
            and (listen.listener.node_id == self.node_id or listen.call_id in mine)
        }
        now = time.time()
        async with client.pipeline(transaction=True) as pipe:
            if calls:
                pipe.hdel(self.keys.calls, *calls)
            if listens:
                pipe.hdel(self.keys.listens, *listens)
            pipe.zrem(self.keys.nodes, self.node_id)
            for listen in listens.values():
                if listen.listener.node_id == self.node_id:
                    session_id = listen.listener.session_id
                    ended = ListenEnded(
                        listen.call_id, session_id, reason.value, now,
                        agent_id=listen.agent_id, node_id=self.node_id,
                    )
                    pipe.publish(self.keys.events, encode_event(ended))
            for call in calls.values():
                pipe.publish(self.keys.events, encode_event(CallEnded(call.call_id, now)))
            await pipe.execute()
        if calls or listens:
            log.warning("withdrew %d calls and %d listens of node %s (%s)",
                        len(calls), len(listens), self.node_id, reason.value)

    # --- heartbeat ---------------------------------------------------------------------

    async def _beat(self, client: aioredis.Redis) -> None:
        # Calls and listens first, then the heartbeat that makes them count: no reader sees
        # this node alive in a Redis that forgot its calls (and takes them for ended).
        known = await client.zscore(self.keys.nodes, self.node_id) is not None
        if not known or self._dirty:
            await self._repair(client, lost=not known)
        added = await client.eval(_HEARTBEAT_LUA, 1, self.keys.nodes, self.node_id)
        if added and known:  # forgotten in between
            await self._repair(client, lost=True)

    async def _repair(self, client: aioredis.Redis, *, lost: bool) -> None:
        """Make the shared roster say what this node asserts, and publish the ends it could
        not publish. ``lost``: Redis had forgotten this node (restarted empty, flushed)."""
        async with self._publish_lock:
            unsent = list(self._unsent_ends)
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.calls)
                pipe.hgetall(self.keys.listens)
                raw_calls, raw_listens = await pipe.execute()
            stale_calls = [
                key
                for key, value in raw_calls.items()
                if (call := _decode_call(value)) is not None
                and call.node_id == self.node_id
                and call.call_id not in self._own_calls
            ]
            gone = {key.decode() for key in stale_calls}
            stale_listens = [
                key
                for key, value in raw_listens.items()
                if (listen := _decode_listen(value)) is not None
                and (
                    (listen.listener.node_id == self.node_id
                     and listen.listener.session_id not in self._own_listens)
                    or listen.call_id in gone
                )
            ]
            async with client.pipeline(transaction=True) as pipe:
                if stale_calls:
                    pipe.hdel(self.keys.calls, *stale_calls)
                if stale_listens:
                    pipe.hdel(self.keys.listens, *stale_listens)
                if self._own_calls:
                    pipe.hset(self.keys.calls, mapping=dict(self._own_calls))
                if self._own_listens:
                    listens: Mapping[EncodableT, EncodableT] = {
                        sid: value for sid, (_, value) in self._own_listens.items()
                    }
                    pipe.hset(self.keys.listens, mapping=listens)
                for data in unsent:
                    pipe.publish(self.keys.events, data)
                await pipe.execute()
            del self._unsent_ends[: len(unsent)]
            self._dirty = False
        if lost or stale_calls or stale_listens or unsent:
            log.warning(
                "repaired this node's state in Redis: %d calls and %d listens asserted, "
                "%d stale entries removed, %d ends published late",
                len(self._own_calls), len(self._own_listens),
                len(stale_calls) + len(stale_listens), len(unsent),
            )

    async def _heartbeat(self, client: aioredis.Redis) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._beat(client)
                if failing:
                    log.info("redis heartbeat recovered")
                failing = False
                self._heartbeat_failure = None
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("redis heartbeat failed: %s", exc)
                failing = True
                self._heartbeat_failure = str(exc) or type(exc).__name__
            except Exception:  # task boundary: keep beating
                log.exception("redis heartbeat failed")
            now = time.monotonic()
            for call_id in [c for c, until in self._wanted.items() if until < now]:
                del self._wanted[call_id]

    # --- events ------------------------------------------------------------------------

    async def publish(self, event: BusEvent) -> None:
        client = self._client()
        data = encode_event(event)
        self._remember(event, data)
        try:
            async with self._publish_lock:
                await self._write_event(client, event, data)
        except (RedisError, OSError) as exc:
            # Repaired at the next heartbeat: what this node asserts is written back, and
            # an end is published then (the others would otherwise keep the call or listen).
            self._dirty = True
            if isinstance(event, (CallEnded, ListenEnded)):
                self._unsent_ends.append(data)
            raise BusUnavailable(f"Redis publish failed: {exc}") from exc

    async def _write_event(self, client: aioredis.Redis, event: BusEvent, data: bytes) -> None:
        if isinstance(event, CallEnded):
            await self._publish_call_ended(client, event, data)
            return
        async with client.pipeline(transaction=True) as pipe:
            if isinstance(event, (CallStarted, CallUpdated)):
                pipe.hset(self.keys.calls, event.call.call_id, _stored_call(event.call))
            elif isinstance(event, ListenStarted):
                pipe.hset(self.keys.listens, event.listener.session_id, data)
            elif isinstance(event, ListenEnded):
                pipe.hdel(self.keys.listens, event.session_id)
            pipe.publish(self.keys.events, data)
            await pipe.execute()

    async def _publish_call_ended(
        self, client: aioredis.Redis, event: CallEnded, data: bytes
    ) -> None:
        """Remove the call and its listens and publish, in one transaction.

        The call's listens are found by reading the listens hash under WATCH, so a listen
        recorded meanwhile makes the transaction run again instead of outliving its call.
        """
        async with client.pipeline(transaction=True) as pipe:
            for attempt in range(_WATCH_ATTEMPTS):
                if attempt < _WATCH_ATTEMPTS - 1:
                    await pipe.watch(self.keys.listens)
                    raw = await pipe.hgetall(self.keys.listens)
                else:  # contended every time: end the call anyway, a stray listen is inert
                    raw = await client.hgetall(self.keys.listens)
                stale = [
                    key
                    for key, value in typing.cast(dict[bytes, bytes], raw).items()
                    if (listen := _decode_listen(value)) is not None
                    and listen.call_id == event.call_id
                ]
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.hdel(self.keys.calls, event.call_id)
                if stale:
                    pipe.hdel(self.keys.listens, *stale)
                pipe.publish(self.keys.events, data)
                try:
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    def _remember(self, event: BusEvent, data: bytes) -> None:
        """Track what this node asserts, whether or not Redis takes it right now."""
        if isinstance(event, (CallStarted, CallUpdated)):
            if event.call.node_id == self.node_id:
                self._own_calls[event.call.call_id] = _stored_call(event.call)
        elif isinstance(event, ListenStarted):
            if event.listener.node_id == self.node_id:
                self._own_listens[event.listener.session_id] = (event.call_id, data)
        else:
            self._forget(event)

    def _forget(self, event: CallEnded | ListenEnded) -> None:
        if isinstance(event, CallEnded):
            self._own_calls.pop(event.call_id, None)
            for session_id, (call_id, _) in list(self._own_listens.items()):
                if call_id == event.call_id:
                    del self._own_listens[session_id]
        else:
            self._own_listens.pop(event.session_id, None)

    async def snapshot(self) -> list[CallInfo]:
        """Calls of live nodes, oldest first, each with the listeners of live nodes."""
        return list((await self.view()).calls)

    async def view(self) -> ClusterView:
        """Calls of live nodes (as ``snapshot``) and the live nodes, read in one transaction."""
        try:
            async with self._client().pipeline(transaction=True) as pipe:
                pipe.time()
                pipe.zrange(self.keys.nodes, 0, -1, withscores=True)
                pipe.hgetall(self.keys.calls)
                pipe.hgetall(self.keys.listens)
                (seconds, micros), beats, raw_calls, raw_listens = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis snapshot failed: {exc}") from exc
        oldest_alive = seconds + micros / 1e6 - self.node_timeout_s
        alive = {node.decode() for node, beat in beats if beat >= oldest_alive}
        calls: dict[str, CallInfo] = {}
        for value in raw_calls.values():
            call = _decode_call(value)
            if call is not None and call.node_id in alive:
                calls[call.call_id] = call
        listens = [x for v in raw_listens.values() if (x := _decode_listen(v)) is not None]
        for listen in sorted(listens, key=lambda x: x.listener.started_at):
            if listen.call_id in calls and listen.listener.node_id in alive:
                calls[listen.call_id] = calls[listen.call_id].with_listener(listen.listener)
        ordered = sorted(calls.values(), key=lambda c: (c.started_at, c.call_id))
        heard = frozenset(node.decode() for node, _beat in beats)
        return ClusterView(tuple(ordered), frozenset(alive), heard, self.node_timeout_s)

    def subscribe(self, handler: EventHandler) -> Unsubscribe:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self._control_channel:
            self._on_control(data)
            return
        try:
            event = decode_event(data)
        except _UNDECODABLE as exc:  # one bad message must not stop the node's events
            log.warning("skipped an undecodable bus message: %s", exc)
            return
        if isinstance(event, (CallEnded, ListenEnded)):
            self._forget(event)
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not stop delivery to the others
                log.exception("bus subscriber failed on %s", event.kind)

    def _on_control(self, data: bytes) -> None:
        text = data.decode(errors="replace")
        if text.startswith("want:"):
            self._wanted[text[5:]] = time.monotonic() + WANT_TTL_S

    # --- media relay -------------------------------------------------------------------

    async def want_media(self, call_id: CallId) -> None:
        try:
            await self._client().publish(self.keys.control, f"want:{call_id}")
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis publish failed: {exc}") from exc

    def media_wanted(self, call_id: CallId) -> bool:
        until = self._wanted.get(call_id)
        return until is not None and until >= time.monotonic()

    def publish_media(self, call_id: CallId, data: bytes) -> None:
        """Queue one packet for relay and return at once (never waits for Redis).

        Packets leave in the order queued; when ``MEDIA_QUEUE_PACKETS`` are waiting the
        oldest is dropped, and while the bus is not running packets are dropped; both are
        counted in ``media_dropped``.
        """
        if self._redis is None:
            self.media_dropped += 1
            return
        if len(self._media_queue) >= MEDIA_QUEUE_PACKETS:
            self._media_queue.popleft()
            self.media_dropped += 1
        self._media_queue.append((self.keys.media(call_id), data))
        self._media_ready.set()

    async def _write_media(self, client: aioredis.Redis) -> None:
        queue, backoff, failing = self._media_queue, _BACKOFF_FIRST_S, False
        while True:
            await self._media_ready.wait()
            self._media_ready.clear()
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), MEDIA_BATCH_PACKETS))]
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, data in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                    backoff, failing = _BACKOFF_FIRST_S, False
                except Exception as exc:  # task boundary: drop, count, back off, carry on
                    # Late audio is worthless: drop what waits instead of replaying it.
                    self.media_dropped += len(batch) + len(queue)
                    queue.clear()
                    if not failing:
                        log.warning("media relay to Redis failed: %s", exc)
                    failing = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def subscribe_media(
        self, call_id: CallId, handler: MediaHandler
    ) -> Callable[[], Awaitable[None]]:
        """Deliver this call's relayed packets to ``handler`` until unsubscribed.

        Once this returns the channel is subscribed; it stays subscribed across Redis
        outages. Raises ``BusUnavailable`` if Redis cannot be reached now.
        """
        media = self._media
        if media is None:
            raise BusUnavailable("the bus is not started")
        channel = self.keys.media(call_id)
        key = channel.encode()
        handlers = self._media_handlers.get(key, ())
        self._media_handlers[key] = handlers + (handler,)
        if not handlers:
            try:
                await media.add(channel)
            except BusUnavailable:
                self._drop_media_handler(key, handler)
                raise

        async def unsubscribe() -> None:
            if self._drop_media_handler(key, handler) and self._media is media:
                await media.remove(channel)

        return unsubscribe

    def _drop_media_handler(self, key: bytes, handler: MediaHandler) -> bool:
        """Remove ``handler``; True when the channel has no handler left."""
        handlers = self._media_handlers.get(key, ())
        if handler not in handlers:
            return False
        rest = tuple(h for h in handlers if h is not handler)
        if rest:
            self._media_handlers[key] = rest
            return False
        del self._media_handlers[key]
        return True

    def _on_media(self, channel: bytes, data: bytes) -> None:
        for handler in self._media_handlers.get(channel, ()):
            try:
                handler(data)
            except Exception:  # one broken feed must not starve the others
                log.exception("media relay handler failed")


class _Subscription:
    """One pub/sub connection kept subscribed to a set of channels across Redis outages.

    A reader task hands every message to ``dispatch(channel, data)`` in arrival order;
    when the connection fails it reconnects with exponential backoff and subscribes to
    every channel again.
    """

    def __init__(self, client: aioredis.Redis, name: str, dispatch: ChannelHandler) -> None:
        self._client = client
        self._name = name
        self._dispatch = dispatch
        self._channels: set[str] = set()
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # orders (re)subscribing against add/remove
        self._connected = asyncio.Event()
        self._has_channels = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def add(self, *channels: str) -> None:
        """Subscribe; on return messages on ``channels`` are delivered. ``BusUnavailable``
        (and nothing added) if Redis cannot be reached within ``SUBSCRIBE_TIMEOUT_S``."""
        new = [c for c in channels if c not in self._channels]
        self._channels.update(new)
        self._has_channels.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"redis-{self._name}")
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await self._connected.wait()
            async with self._lock:
                if self._pubsub is not None and new:
                    await self._pubsub.subscribe(*new)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._channels.difference_update(new)
            if not self._channels:
                self._has_channels.clear()
            raise BusUnavailable(f"cannot subscribe to Redis {self._name}: {exc!r}") from exc

    @property
    def connected(self) -> bool:
        """Whether the subscription is live (messages on its channels are delivered)."""
        return self._connected.is_set()

    async def remove(self, channel: str) -> None:
        self._channels.discard(channel)
        if not self._channels:
            self._has_channels.clear()
        async with self._lock:
            if self._pubsub is not None:
                await _quietly(self._pubsub.unsubscribe(channel))

    async def aclose(self) -> None:
        if self._task is not None:
            await _cancel_and_wait([self._task])
            self._task = None
        if self._pubsub is not None:
            await _quietly(self._pubsub.aclose())  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._connected.clear()

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST_S
        while True:
            await self._has_channels.wait()
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                async with self._lock:
                    channels = list(self._channels)
                    if channels:
                        self._pubsub = pubsub
                        await pubsub.subscribe(*channels)
                if not channels:  # the last one was removed meanwhile: nothing to read
                    self._has_channels.clear()
                    continue
                self._connected.set()
                if backoff > _BACKOFF_FIRST_S:
                    log.info("redis %s subscription restored", self._name)
                backoff = _BACKOFF_FIRST_S
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message["type"] == "message":
                        self._dispatch(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                # Loud once per outage, quiet while retrying.
                level = logging.WARNING if backoff == _BACKOFF_FIRST_S else logging.DEBUG
                log.log(level, "redis %s subscription lost (%s); retrying in %.1fs",
                        self._name, exc, backoff)
            except Exception:  # task boundary: never let the reader die
                log.exception("redis %s reader failed; retrying in %.1fs", self._name, backoff)
            self._connected.clear()
            async with self._lock:
                self._pubsub = None
            await _quietly(pubsub.aclose())  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and return once all are done, cancelling again while they run.

    One ``cancel()`` is not enough: on Python 3.11 ``asyncio.wait_for`` (which redis-py
    wraps around every socket write when a socket timeout is set) loses a cancellation that
    arrives just as the write completes (bpo-42130, fixed in 3.12), and the task would carry
    on with its loop.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)
    await asyncio.gather(*tasks, return_exceptions=True)  # retrieve every outcome


async def _quietly(closing: Awaitable[object]) -> None:
    """Await a close/unsubscribe that may fail or hang on a dead connection; ignore both."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await closing
    except (RedisError, OSError):  # TimeoutError is an OSError
        pass


def _stored_call(call: CallInfo) -> bytes:
    """A call as kept in the calls hash: its state without listeners (those are listens)."""
    return encode_event(CallUpdated(dataclasses.replace(call, listeners=())))


def _decode_call(value: bytes) -> CallInfo | None:
    try:
        event = decode_event(value)
    except _UNDECODABLE:  # a stored value we cannot read counts as absent
        log.warning("ignored an unreadable call in Redis")
        return None
    return event.call if isinstance(event, (CallStarted, CallUpdated)) else None


def _decode_listen(value: bytes) -> ListenStarted | None:
    try:
        event = decode_event(value)
    except _UNDECODABLE:  # a stored value we cannot read counts as absent
        log.warning("ignored an unreadable listen in Redis")
        return None
    return event if isinstance(event, ListenStarted) else None

"""The cluster-wide side of the limits, in Redis (keys: ``live.bus.keys``).

* Rate limits are the token buckets of ``live.limits.bucket`` kept in one hash per bucket
  and updated by one Lua script, with Redis's clock, so every node spends from the same
  bucket whatever its own clock says. A bucket expires once it would be full again.
* Listens at once: a sorted set per person whose members are leases. Each node writes the
  sessions it runs (``s:<node>:<session>``, lease ``slot_lease_s``, renewed by
  ``live.limits.slots``) and a hold per listen request being set up (``p:<node>:<id>``,
  lease ``hold_lease_s``). Taking a hold counts the live members and refuses at the cap in
  the same script, so parallel requests on different nodes cannot slip past; the sessions
  of a node that died leave the count when their lease runs out.

Every method raises ``BusUnavailable`` when Redis cannot be used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..bus.keys import RedisKeys
from ..errors import BusUnavailable
from .bucket import RateLimit

Mode = Literal["wait", "spend", "take"]

SOCKET_TIMEOUT_S = 0.5
"""A request waits at most this for Redis before the node falls back to its own limits."""

# ARGV: per_minute, burst, floor, mode. Returns the wait in seconds as a string (Redis turns
# Lua numbers into integers). Same arithmetic as RateLimit.wait / spend / take.
_RATE_LUA = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local floor = tonumber(ARGV[3])
local mode = ARGV[4]
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if mode == 'wait' then return tostring(wait) end
if mode == 'spend' then
  tokens = math.max(floor, tokens - 1)
elseif wait == 0 then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return tostring(wait)
"""

# ARGV: slot lease ms, hold lease ms, cap, this node's session prefix, hold to take ('' for
# none), hold to drop ('' for none), then this node's running sessions of the person.
# Returns -1, or the number of listens at once when the hold is refused at the cap.
_SLOTS_LUA = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
local slot_lease = tonumber(ARGV[1])
local hold_lease = tonumber(ARGV[2])
local prefix = ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if ARGV[6] ~= '' then redis.call('ZREM', key, ARGV[6]) end
local mine = {}
for i = 7, #ARGV do mine[ARGV[i]] = true end
for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  if string.sub(member, 1, #prefix) == prefix and not mine[member] then
    redis.call('ZREM', key, member)
  end
end
for i = 7, #ARGV do redis.call('ZADD', key, now + slot_lease, ARGV[i]) end
local result = -1
if ARGV[5] ~= '' then
  local running = redis.call('ZCARD', key)
  if running >= tonumber(ARGV[3]) then
    result = running
  else
    redis.call('ZADD', key, now + hold_lease, ARGV[5])
  end
end
if redis.call('ZCARD', key) > 0 then
  redis.call('PEXPIRE', key, math.max(slot_lease, hold_lease))
end
return result
"""


class LimitStore:
    """Rate buckets and listen leases in Redis, shared by every node of a cluster."""

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        prefix: str = "live:",
        slot_lease_s: float = 15.0,
        hold_lease_s: float = 30.0,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.keys = RedisKeys(prefix)
        self.slot_lease_s = slot_lease_s
        self.hold_lease_s = hold_lease_s
        self._client: aioredis.Redis | None = None

    async def start(self) -> None:
        """Make the client (it connects on first use: Redis may be down at start)."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S
            )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BusUnavailable("the limit store is not started")
        return self._client

    def session_member(self, session_id: str) -> str:
        return f"s:{self.node_id}:{session_id}"

    def hold_member(self, request_id: str) -> str:
        return f"p:{self.node_id}:{request_id}"

    async def rate(self, name: str, key: str, limit: RateLimit, mode: Mode) -> float:
        """``limit``'s ``wait``, ``spend`` or ``take`` on the cluster's bucket ``name``/``key``."""
        try:
            raw = await self._redis().eval(
                _RATE_LUA, 1, self.keys.limit(name, key), limit.per_minute, limit.burst, limit.floor, mode
            )
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis limits failed: {exc}") from exc
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    def _slots_args(self, cap: int, take: str, drop: str, sessions: Sequence[str]) -> list[str | int]:
        return [
            int(self.slot_lease_s * 1000),
            int(self.hold_lease_s * 1000),
            cap,
            f"s:{self.node_id}:",
            take,
            drop,
            *(self.session_member(s) for s in sessions),
        ]

    async def take_hold(self, user_id: str, hold: str, sessions: Sequence[str], cap: int) -> int | None:
        """Take ``hold`` for a listen being set up unless the person has ``cap`` listens at
        once in the cluster (then return how many); ``sessions`` are this node's running ones."""
        try:
            running = await self._redis().eval(
                _SLOTS_LUA, 1, self.keys.listening(user_id), *self._slots_args(cap, hold, "", sessions)
            )
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis limits failed: {exc}") from exc
        return None if int(running) < 0 else int(running)

    async def drop_hold(self, user_id: str, hold: str, sessions: Sequence[str]) -> None:
        """The listen request is answered: its hold goes, the sessions it made stay."""
        try:
            await self._redis().eval(
                _SLOTS_LUA, 1, self.keys.listening(user_id), *self._slots_args(0, "", hold, sessions)
            )
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis limits failed: {exc}") from exc

    async def write_sessions(self, by_user: Mapping[str, Sequence[str]]) -> None:
        """Renew this node's running sessions per person (an empty list withdraws them)."""
        if not by_user:
            return
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                for user_id, sessions in by_user.items():
                    pipe.eval(_SLOTS_LUA, 1, self.keys.listening(user_id), *self._slots_args(0, "", "", sessions))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"Redis limits failed: {exc}") from exc

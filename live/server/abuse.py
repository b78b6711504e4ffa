"""Abuse limits: rate limits on sign-in, bearer tokens and listening; connection limits.

All per node and in memory (a cluster multiplies the rates by its node count; the limits are
there to make guessing and flooding slow, not to meter fair use).

* Sign-in: only *failures* count, per client address and per user name, so a whole call
  centre behind one NAT address signing in at the start of a shift is never slowed, while a
  password or link-token guesser is stopped after a handful of tries.
* Bearer tokens: unknown tokens count per client address (a valid token always works).
* Listening: every listen request counts per person; at most ``listens_per_supervisor``
  sessions run at once per person.
* WebSockets: at most ``ws_per_user`` sockets per person, ``ws_total`` in all, and
  ``ingest_connections`` telephony sockets, refused before the upgrade.

Refusals are ``429`` with ``Retry-After`` (``503`` when the node is full).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web

from ..config import Settings
from ..errors import ServiceUnavailable, TooManyRequests, Unauthorized
from .errors import Handler
from .route import Route, entry_of
from .security import identify
from .state import STATE

MAX_KEYS = 50_000  # buckets kept before full ones are forgotten
INGEST = "\0ingest"  # the open_ws key of telephony sockets (no user id starts with NUL)
SIGNIN_USER: web.RequestKey[str] = web.RequestKey("live_signin_user", str)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class RateLimit:
    """A token bucket per key: ``per_minute`` refill, bursts up to ``burst``."""

    per_minute: float
    burst: float
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_KEYS:
                self._forget_full(now)
            bucket = self.buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_minute / 60)
            bucket.stamp = now
        return bucket

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self.buckets.items() if b.tokens + (now - b.stamp) * self.per_minute / 60 >= self.burst]:
            del self.buckets[key]

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may go again (0: now)."""
        if self.per_minute <= 0:
            return 0.0
        bucket = self._bucket(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) * 60 / self.per_minute

    def spend(self, key: str, now: float) -> None:
        if self.per_minute > 0:
            bucket = self._bucket(key, now)
            bucket.tokens = max(0.0, bucket.tokens - 1)


@dataclass(slots=True)
class AbuseLimits:
    signin: RateLimit
    bad_token: RateLimit
    listen: RateLimit
    ws_per_user: int
    ws_total: int
    ingest_connections: int
    listens_per_supervisor: int
    trusted_proxies: frozenset[str]
    open_ws: Counter[str] = field(default_factory=Counter)  # per person, and INGEST
    listens_starting: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings) -> AbuseLimits:
        return cls(
            signin=RateLimit(settings.limits.signin_failures_per_minute, settings.limits.signin_failures_per_minute),
            bad_token=RateLimit(settings.limits.bad_tokens_per_minute, settings.limits.bad_tokens_per_minute),
            listen=RateLimit(settings.limits.listens_per_minute, settings.limits.listens_per_minute),
            ws_per_user=settings.limits.ws_per_user,
            ws_total=settings.limits.ws_total,
            ingest_connections=settings.limits.ingest_connections,
            listens_per_supervisor=settings.limits.listens_per_supervisor,
            trusted_proxies=frozenset(settings.limits.trusted_proxies),
        )

    def client_address(self, request: web.Request) -> str:
        """The peer, or behind a trusted proxy the last address it did not add itself."""
        peer = request.remote or ""
        if peer not in self.trusted_proxies:
            return peer
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in self.trusted_proxies:
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # a forged, malformed header: count it against the proxy
        return peer

    def refuse(self, what: str, seconds: float, message: str) -> TooManyRequests:
        self.refused[what] += 1
        return TooManyRequests(message, code="rate_limited", retry_after_s=max(1, math.ceil(seconds)))

    @property
    def open_ws_total(self) -> int:
        """Browser WebSockets open on this node (telephony sockets are counted apart)."""
        return sum(n for key, n in self.open_ws.items() if key != INGEST)


def _failed_signin(request: web.Request, response: web.StreamResponse | None, error: Exception | None) -> bool:
    if request.method == "GET":  # a sign-in link answers with a redirect, to an error or home
        location = response.headers.get("Location", "") if response is not None else ""
        return "error=" in location
    status = getattr(error, "status", None) if error is not None else (response.status if response else None)
    return status == 401


@contextlib.contextmanager
def _holding(counter: Counter[str], key: str) -> Iterator[None]:
    """Count ``key`` in ``counter`` while the block runs (a socket open, a listen starting)."""
    counter[key] += 1
    try:
        yield
    finally:
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]


@web.middleware
async def abuse_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs before the access check, so that what it refuses costs the server least."""
    limits = request.app[STATE].limits
    now = time.monotonic()
    address = limits.client_address(request)
    try:
        return await _limited(request, handler, limits, address, now)
    except Unauthorized as exc:
        if exc.code != "bad_token":
            raise
        # Guessing tokens: a valid token always works (whoever shares the address), an
        # unknown one is answered 429 once this address has sent too many.
        if wait := limits.bad_token.retry_after(address, now):
            raise limits.refuse("bad_token", wait, "too many unknown tokens from this address; wait and try again") from None
        limits.bad_token.spend(address, now)
        raise


async def _limited(
    request: web.Request, handler: Handler, limits: AbuseLimits, address: str, now: float
) -> web.StreamResponse:
    entry = entry_of(request)
    if not isinstance(entry, Route):
        return await handler(request)
    if entry.limit == "signin":
        return await _signin(request, handler, limits, address, now)
    if entry.limit == "listen":
        identity = identify(request)
        if identity is not None:
            if wait := limits.listen.retry_after(identity.user_id, now):
                raise limits.refuse("listen", wait, "too many listen requests; wait and try again")
            limits.listen.spend(identity.user_id, now)
            # Sessions running plus listen requests still being set up (they register their
            # session only when the answer is ready): parallel requests cannot slip past.
            key = identity.user_id
            running = len(request.app[STATE].node.listens.sessions_of(identity)) + limits.listens_starting[key]
            if running >= limits.listens_per_supervisor:
                limits.refused["listens_at_once"] += 1
                raise TooManyRequests(
                    f"you are listening to {running} calls already; stop one first",
                    code="too_many_listens",
                    retry_after_s=5,
                )
            with _holding(limits.listens_starting, key):
                return await handler(request)
    if entry.rule.websocket:
        return await _connection(request, handler, limits, entry.rule.kind == "ingest")
    return await handler(request)


async def _signin(
    request: web.Request, handler: Handler, limits: AbuseLimits, address: str, now: float
) -> web.StreamResponse:
    if wait := limits.signin.retry_after(f"ip:{address}", now):
        raise limits.refuse("signin", wait, "too many failed sign-ins from this address; wait and try again")
    response: web.StreamResponse | None = None
    error: Exception | None = None
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # /auth/link answers with a redirect
        response = exc
        raise
    except Exception as exc:
        error = exc
        raise
    finally:
        user = request.get(SIGNIN_USER, "")
        if _failed_signin(request, response, error):
            limits.signin.spend(f"ip:{address}", now)
            if user:
                limits.signin.spend(f"user:{user}", now)
    return response


def check_user_signin(request: web.Request, user: str) -> None:
    """Called by the password sign-in once it knows the user name: a user whose password is
    being guessed is refused for a while, from every address."""
    limits = request.app[STATE].limits
    request[SIGNIN_USER] = user
    if wait := limits.signin.retry_after(f"user:{user}", time.monotonic()):
        raise limits.refuse("signin", wait, "too many failed sign-ins for this user; wait and try again")


async def _connection(request: web.Request, handler: Handler, limits: AbuseLimits, ingest: bool) -> web.StreamResponse:
    if ingest:
        if limits.open_ws[INGEST] >= limits.ingest_connections:
            limits.refused["ingest_connections"] += 1
            raise ServiceUnavailable("this node takes no more telephony connections", code="too_many_connections")
        with _holding(limits.open_ws, INGEST):
            return await handler(request)
    identity = identify(request)
    key = identity.user_id if identity is not None else ""
    if limits.open_ws_total >= limits.ws_total:
        limits.refused["ws_total"] += 1
        raise ServiceUnavailable("this node takes no more connections", code="too_many_connections")
    if limits.open_ws[key] >= limits.ws_per_user:
        limits.refused["ws_per_user"] += 1
        raise TooManyRequests(
            f"{limits.ws_per_user} live connections already open; close a tab", code="too_many_connections"
        )
    with _holding(limits.open_ws, key):
        return await handler(request)

"""Abuse limits: rate limits on sign-in, bearer tokens and listening; connection limits.

The rates and listens at once are cluster-wide when ``LIVE_REDIS_URL`` is set (in Redis, see
``live.limits``), and per node while Redis cannot be reached (the documented fallback:
logged, ``live_limits_shared 0``). Sockets are counted per node. The limits are there to make
guessing and flooding slow, not to meter fair use.

* Sign-in: only *failures* count (``live.limits.signin``): refused per (address, user) and
  per user, only slowed per address, so a whole call centre behind one NAT address is never
  locked out, while a password guesser is stopped after a handful of tries.
* Bearer tokens: unknown tokens count per client address (a valid token always works).
* Listening: every listen request counts per person; at most ``listens_per_supervisor``
  sessions run at once per person.
* WebSockets: at most ``ws_per_user`` sockets per person, ``ws_total`` in all, and
  ``ingest_connections`` telephony sockets, refused before the upgrade.

Refusals are ``429`` with ``Retry-After`` (``503`` when the node is full).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from aiohttp import web

from ..config import Settings
from ..errors import ServiceUnavailable, TooManyRequests, Unauthorized
from ..limits import LimitStore, ListenSlots, RateLimit, Rates, SharedLimits, SignInThrottle
from ..limits.signin import signin_limits
from ..listens import ListenService
from ..node import Node
from .errors import Handler
from .route import Route, entry_of
from .security import identify
from .state import STATE

INGEST = "\0ingest"  # the open_ws key of telephony sockets (no user id starts with NUL)
SIGNIN_USER: web.RequestKey[str] = web.RequestKey("live_signin_user", str)
SIGNIN_ADDRESS: web.RequestKey[str] = web.RequestKey("live_signin_address", str)


def _running_by_person(listens: ListenService) -> dict[str, list[str]]:
    running: dict[str, list[str]] = {}
    for session in list(listens.sessions.values()):
        if not session.ended:
            running.setdefault(session.actor.user_id, []).append(session.session_id)
    return running


@dataclass(slots=True)
class AbuseLimits:
    rates: Rates
    signin: SignInThrottle
    slots: ListenSlots
    ws_per_user: int
    ws_total: int
    ingest_connections: int
    trusted_proxies: frozenset[str]
    open_ws: Counter[str] = field(default_factory=Counter)  # per person, and INGEST
    refused: Counter[str] = field(default_factory=Counter)
    slowed: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings) -> AbuseLimits:
        limits = settings.limits
        url = settings.redis_url.get_secret_value()
        shared = SharedLimits(LimitStore(url, settings.effective_node_id) if url else None)
        rates = Rates(
            {
                **signin_limits(
                    limits.signin_failures_per_minute,
                    limits.signin_user_failures_per_minute,
                    limits.signin_address_failures_per_minute,
                ),
                "bad_token": RateLimit(limits.bad_tokens_per_minute, limits.bad_tokens_per_minute),
                "listen": RateLimit(limits.listens_per_minute, limits.listens_per_minute),
            },
            shared,
        )
        return cls(
            rates=rates,
            signin=SignInThrottle(rates, limits.signin_backoff_max_ms / 1000),
            slots=ListenSlots(limits.listens_per_supervisor, shared),
            ws_per_user=limits.ws_per_user,
            ws_total=limits.ws_total,
            ingest_connections=limits.ingest_connections,
            trusted_proxies=frozenset(limits.trusted_proxies),
        )

    async def start(self, node: Node) -> None:
        """Use the shared store (if any) and count the node's listen sessions."""
        await self.rates.shared.start()
        self.slots.start(lambda: _running_by_person(node.listens), node.bus)

    async def aclose(self) -> None:
        await self.slots.aclose()
        await self.rates.shared.aclose()

    def metric_lines(self) -> list[str]:
        return [
            "# TYPE live_abuse_slowed_total counter",
            *(f"live_abuse_slowed_total{{limit=\"{what}\"}} {n}" for what, n in sorted(self.slowed.items())),
            *self.rates.shared.metric_lines(),
        ]

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
    address = limits.client_address(request)
    try:
        return await _limited(request, handler, limits, address)
    except Unauthorized as exc:
        if exc.code != "bad_token":
            raise
        # Guessing tokens: a valid token always works (whoever shares the address), an
        # unknown one is answered 429 once this address has sent too many.
        if wait := await limits.rates.wait("bad_token", address):
            raise limits.refuse("bad_token", wait, "too many unknown tokens from this address; wait and try again") from None
        await limits.rates.spend("bad_token", address)
        raise


async def _limited(request: web.Request, handler: Handler, limits: AbuseLimits, address: str) -> web.StreamResponse:
    entry = entry_of(request)
    if not isinstance(entry, Route):
        return await handler(request)
    if entry.limit == "signin":
        return await _signin(request, handler, limits, address)
    if entry.limit == "listen":
        identity = identify(request)
        if identity is not None:
            return await _listen(request, handler, limits, identity.user_id)
    if entry.rule.websocket:
        return await _connection(request, handler, limits, entry.rule.kind == "ingest")
    return await handler(request)


async def _listen(request: web.Request, handler: Handler, limits: AbuseLimits, user_id: str) -> web.StreamResponse:
    if wait := await limits.rates.take("listen", user_id):
        raise limits.refuse("listen", wait, "too many listen requests; wait and try again")
    hold = await limits.slots.acquire(user_id)
    if not hold.granted:
        limits.refused["listens_at_once"] += 1
        raise TooManyRequests(
            f"you are listening to {hold.running} calls already; stop one first",
            code="too_many_listens",
            retry_after_s=5,
        )
    try:
        return await handler(request)
    finally:
        await limits.slots.release(hold)


async def _signin(request: web.Request, handler: Handler, limits: AbuseLimits, address: str) -> web.StreamResponse:
    # Per address, failures only slow the answer down: never a refusal (see live.limits.signin).
    if delay := await limits.signin.backoff(address):
        limits.slowed["signin_address"] += 1
        await asyncio.sleep(delay)
    request[SIGNIN_ADDRESS] = address
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
        if _failed_signin(request, response, error):
            await limits.signin.failed(address, request.get(SIGNIN_USER, ""))
    return response


async def check_user_signin(request: web.Request, user: str) -> None:
    """Called by the password sign-in once it knows the user name: a user whose password is
    being guessed (from this address, or from anywhere) is refused for a while."""
    limits = request.app[STATE].limits
    request[SIGNIN_USER] = user
    message, wait = await limits.signin.refusal(request.get(SIGNIN_ADDRESS, ""), user)
    if wait:
        raise limits.refuse("signin", wait, f"{message}; wait and try again")


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


def setup(app: web.Application) -> None:
    """The limits start once the node runs (they count its sessions) and stop before it."""
    state = app[STATE]
    state.metric_sources.append(state.limits.metric_lines)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await state.limits.start(state.node)
        yield
        await state.limits.aclose()

    app.cleanup_ctx.append(lifecycle)

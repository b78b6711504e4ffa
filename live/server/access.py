"""Who may call which route, enforced by a middleware before any handler runs.

The rules are part of the route table (``Route.rule``, ``live.server.routes``); every route
the server mounts has one, and ``check_routes`` refuses to start a server with a route on
its router that the table does not know. The role × route matrix test is generated from the
router against the table. Handlers still ask ``require()`` for the identity (defence in
depth); the policy (``live.policy.decide``) then decides *which* calls and agents a role may
reach, the table only whether the role may do this at all.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import Forbidden, LiveError
from .errors import Handler
from .route import PUBLIC, ROUTE_TABLE, Rule, entry_of, route_key
from .security import identify, require
from .state import STATE


def rule_for(request: web.Request) -> Rule | None:
    if request.match_info.route.resource is None:  # aiohttp's own 404 / 405
        return PUBLIC
    entry = entry_of(request)
    return entry.rule if entry is not None else None


def check_routes(app: web.Application) -> None:
    """Refuse to serve a route that has no access rule."""
    table = app[ROUTE_TABLE].entries
    missing = sorted(
        {f"{m} {p}" for route in app.router.routes() for m, p in [route_key(route)] if (m, p) not in table}
    )
    if missing:
        raise RuntimeError(f"routes without an access rule in the route table: {', '.join(missing)}")


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = rule_for(request)
    if rule is None:  # unreachable after check_routes, kept as a closed default
        raise LiveError("this route has no access rule", code="no_access_rule")
    if rule.kind in ("roles", "signed_in"):
        try:
            require(request, rule.roles if rule.kind == "roles" else None)
        except Forbidden as exc:
            identity = identify(request) if rule.listen and exc.code == "role_forbidden" else None
            if identity is not None:
                await request.app[STATE].node.listens.refuse(identity, request.match_info.get("call_id", ""), exc)
            raise
    return await handler(request)

"""Who may call which route: one table, enforced by a middleware before any handler runs.

Every route the server mounts must have a rule here; ``check_routes`` refuses to start a
server with a route that has none, and the role × route matrix test is generated from the
router against this table. Handlers still ask ``require()`` for the identity (defence in
depth); the policy (``live.policy.decide``) then decides *which* calls and agents a role may
reach, the table only whether the role may do this at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from ..errors import Forbidden, LiveError
from ..types import Role
from .errors import Handler
from .security import identify, require
from .state import STATE

Kind = Literal["public", "page", "signed_in", "roles", "ingest"]


@dataclass(frozen=True, slots=True)
class Rule:
    """``public``: anyone (sign-in, health, static files); ``page``: anyone, the page sends a
    signed-out browser to sign-in; ``signed_in``: any role; ``roles``: only ``roles``;
    ``ingest``: telephony, authenticated by the ingest secret or the provider's signature."""

    kind: Kind
    roles: tuple[Role, ...] = ()
    websocket: bool = False
    listen: bool = False  # a refusal is a refused listen: on record for the works council

    def allows(self, role: Role | None) -> bool:
        if self.kind in ("public", "page", "ingest"):
            return True
        if role is None:
            return False
        return self.kind == "signed_in" or role in self.roles


SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)
AUDITORS = (Role.AUDITOR, Role.ADMIN)
PUBLIC = Rule("public")
PAGE = Rule("page")


def roles(*allowed: Role, websocket: bool = False, listen: bool = False) -> Rule:
    return Rule("roles", tuple(allowed), websocket, listen)


# (method, route path as registered) -> rule. Static folders are keyed by their prefix.
ACCESS: dict[tuple[str, str], Rule] = {
    # Operations
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # counters only: no call ids, people or numbers
    ("GET", "/api/openapi.json"): PUBLIC,
    # Sign-in
    ("GET", "/auth/link"): PUBLIC,
    ("POST", "/auth/signin"): PUBLIC,
    ("GET", "/auth/methods"): PUBLIC,
    ("POST", "/auth/signout"): Rule("signed_in"),
    ("GET", "/auth/oidc/login"): PUBLIC,
    ("GET", "/auth/oidc/callback"): PUBLIC,
    # Pages and their files
    ("GET", "/"): PAGE,
    ("GET", "/signin/"): PUBLIC,
    ("GET", "/console/"): PAGE,
    ("GET", "/agent/"): PAGE,
    ("GET", "/audit/"): PAGE,
    ("GET", "/console"): PUBLIC,
    ("GET", "/signin"): PUBLIC,
    ("GET", "/shared"): PUBLIC,
    ("GET", "/agent"): PUBLIC,
    ("GET", "/audit"): PUBLIC,
    # Supervisors
    ("GET", "/api/me"): Rule("signed_in"),
    ("GET", "/api/calls"): roles(*SUPERVISORS),
    ("GET", "/api/events"): roles(*SUPERVISORS, websocket=True),
    ("POST", "/api/calls/{call_id}/listen"): roles(Role.SUPERVISOR, listen=True),  # admins administer
    ("DELETE", "/api/listens/{session_id}"): roles(*SUPERVISORS),
    ("GET", "/api/listens"): roles(*SUPERVISORS),
    # Call state: CTI integrations (admin tokens), the call's agent, supervisors (the policy
    # narrows what each may change).
    ("POST", "/api/calls/{call_id}/consent"): roles(Role.ADMIN, Role.AGENT, Role.SUPERVISOR),
    ("POST", "/api/calls/{call_id}/pci"): roles(Role.ADMIN, Role.AGENT, Role.SUPERVISOR),
    ("POST", "/api/admin/policy/reload"): roles(Role.ADMIN),
    # Agents
    ("GET", "/api/agent/events"): roles(Role.AGENT, websocket=True),
    ("GET", "/api/agent/history"): roles(Role.AGENT),
    ("GET", "/api/notices"): roles(Role.AGENT),
    ("POST", "/api/notices/{notice_id}/seen"): roles(Role.AGENT),
    # The ledger: auditors; agents only their own (the handlers narrow it)
    ("GET", "/api/audit/checkpoint"): roles(*AUDITORS, Role.AGENT),
    ("GET", "/api/audit/proof/inclusion"): roles(*AUDITORS, Role.AGENT),
    ("GET", "/api/audit/proof/consistency"): roles(*AUDITORS, Role.AGENT),
    ("POST", "/api/audit/inconsistency"): roles(Role.AGENT),  # what the agent's page found
    ("GET", "/api/audit/sessions"): roles(*AUDITORS),
    ("GET", "/api/audit/verify"): roles(*AUDITORS),
    ("GET", "/api/audit/export"): roles(*AUDITORS, Role.AGENT),
    ("GET", "/api/audit/report"): roles(*AUDITORS),
    ("POST", "/api/audit/cosignatures"): roles(*AUDITORS),
    # Telephony (SIPREC and AudioSocket listen on their own ports, outside this router)
    ("GET", "/ingest/twilio"): Rule("ingest", websocket=True),
    ("GET", "/ingest/audiohook"): Rule("ingest", websocket=True),
    ("GET", "/ingest/fork/{kind}"): Rule("ingest", websocket=True),
    ("POST", "/api/ingest/rtp/calls"): Rule("ingest"),
    ("DELETE", "/api/ingest/rtp/calls/{call_id}"): Rule("ingest"),
}

# What a browser may send on each WebSocket, and who (the socket's role is checked again,
# with the session, before every message is acted on).
WS_MESSAGES: dict[str, dict[str, tuple[Role, ...]]] = {
    "/api/events": {"ping": SUPERVISORS},
    "/api/agent/events": {"ping": (Role.AGENT,)},
}


def route_key(route: web.AbstractRoute) -> tuple[str, str]:
    method = "GET" if route.method == "HEAD" else route.method
    return method, route.resource.canonical if route.resource is not None else ""


def rule_for(request: web.Request) -> Rule | None:
    route = request.match_info.route
    if route.resource is None:  # aiohttp's own 404 / 405
        return PUBLIC
    return ACCESS.get(route_key(route))


def check_routes(app: web.Application) -> None:
    """Refuse to serve a route that has no access rule."""
    missing = sorted(
        {f"{m} {p}" for route in app.router.routes() for m, p in [route_key(route)] if (m, p) not in ACCESS}
    )
    if missing:
        raise RuntimeError(f"routes without an access rule in live/server/access.py: {', '.join(missing)}")


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

"""What one route is, as data: the record every part of the server reads its routes from.

A ``Route`` names its method, path and handler, who may call it (``Rule``), the abuse limit
it counts against, and what the OpenAPI document says of it: operation id, summary,
parameters, request body type and response types. A ``Static`` is a folder of browser
files. ``live.server.routes`` lists them all; the router (``mount``), the access table
(``RouteTable``), the abuse limits and the OpenAPI document are generated from that list,
and nothing else lists routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel

from ..types import Role
from .bodies import read_body
from .errors import Handler

Kind = Literal["public", "page", "signed_in", "roles", "ingest"]
Limit = Literal["signin", "listen"]
"""``signin``: failed sign-ins count per address and user; ``listen``: listen requests per
person, and sessions at once (``live.server.abuse``). WebSockets are limited by their rule."""
Schema = Mapping[str, Any]
B = TypeVar("B", bound=BaseModel)


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
SIGNED_IN = Rule("signed_in")
INGEST = Rule("ingest")
INGEST_SOCKET = Rule("ingest", websocket=True)


def roles(*allowed: Role, websocket: bool = False, listen: bool = False) -> Rule:
    return Rule("roles", tuple(allowed), websocket, listen)


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter, as the OpenAPI document describes it."""

    name: str
    description: str
    schema: Schema = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    where: Literal["query", "path"] = "query"


def path_param(name: str, description: str, schema: Schema | None = None) -> Param:
    return Param(name, description, schema or {"type": "string"}, True, "path")


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented answer: a JSON ``model`` the handler builds its body from, or other
    ``media`` (media type -> schema), or neither (a redirect, 204, 101)."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Schema] = field(default_factory=dict)


class JsonBody(Generic[B]):
    """A handler that takes a JSON body: decoded and validated through ``model`` (400 with
    the field and a code on bad input) before ``handler`` sees it."""

    __slots__ = ("handler", "model")

    def __init__(self, model: type[B], handler: Callable[[web.Request, B], Awaitable[web.StreamResponse]]) -> None:
        self.model = model
        self.handler = handler

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        return await self.handler(request, await read_body(request, self.model))


def takes(model: type[B], handler: Callable[[web.Request, B], Awaitable[web.StreamResponse]]) -> JsonBody[B]:
    return JsonBody(model, handler)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    method: str
    path: str
    handler: Handler
    rule: Rule
    operation_id: str | None = None  # None: a page, not part of the OpenAPI document
    summary: str = ""
    description: str = ""
    tag: str = ""
    params: tuple[Param, ...] = ()
    replies: tuple[Reply, ...] = ()
    errors: tuple[int, ...] = ()  # documented error statuses beyond those the rule implies
    limit: Limit | None = None
    # Run in order before the handler reads anything: a browser's Origin (``check_origin``),
    # a telephony sender's credentials (``authenticate_ingest``).
    checks: tuple[Callable[[web.Request], object], ...] = ()
    messages: Mapping[str, tuple[Role, ...]] = field(default_factory=dict)  # a WebSocket's client messages
    optional: str | None = None  # documented, but mounted only when this feature is configured
    when: Callable[[web.Application], bool] | None = None  # mounted only when this holds

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def body(self) -> type[BaseModel] | None:
        return self.handler.model if isinstance(self.handler, JsonBody) else None


@dataclass(frozen=True, slots=True)
class Static:
    """A folder of browser files under ``prefix`` (no trailing slash), mounted if it exists."""

    prefix: str
    folder: Path
    rule: Rule = PUBLIC

    @property
    def key(self) -> tuple[str, str]:
        return "GET", self.prefix


Entry = Route | Static


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every route by (method, path as registered): what the middlewares look up."""

    entries: Mapping[tuple[str, str], Entry] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> RouteTable:
        table: dict[tuple[str, str], Entry] = {}
        for entry in entries:
            if entry.key in table:
                raise ValueError(f"route listed twice: {' '.join(entry.key)}")
            table[entry.key] = entry
        return cls(MappingProxyType(table))

    @property
    def access(self) -> Mapping[tuple[str, str], Rule]:
        return MappingProxyType({key: entry.rule for key, entry in self.entries.items()})

    @property
    def ws_messages(self) -> Mapping[str, Mapping[str, tuple[Role, ...]]]:
        """What a browser may send on each WebSocket, and who."""
        return MappingProxyType(
            {
                entry.path: entry.messages
                for entry in self.entries.values()
                if isinstance(entry, Route) and entry.rule.websocket and entry.rule.kind != "ingest"
            }
        )


ROUTE_TABLE: web.AppKey[RouteTable] = web.AppKey("live_routes", RouteTable)


def route_key(route: web.AbstractRoute) -> tuple[str, str]:
    method = "GET" if route.method == "HEAD" else route.method
    return method, route.resource.canonical if route.resource is not None else ""


def entry_of(request: web.Request) -> Entry | None:
    """The table's record of the route ``request`` matched (``None``: not in the table)."""
    route = request.match_info.route
    table = request.app.get(ROUTE_TABLE)
    if route.resource is None or table is None:
        return None
    return table.entries.get(route_key(route))


def _checked(handler: Handler, checks: tuple[Callable[[web.Request], object], ...]) -> Handler:
    async def checked(request: web.Request) -> web.StreamResponse:
        for check in checks:
            check(request)
        return await handler(request)

    return checked


def mount(app: web.Application, entries: Iterable[Entry]) -> None:
    """Add ``entries`` to ``app``'s router: static folders that exist, routes whose ``when``
    holds (GET routes answer HEAD too)."""
    for entry in entries:
        if isinstance(entry, Static):
            if entry.folder.is_dir():
                app.router.add_static(entry.prefix + "/", entry.folder, show_index=False, follow_symlinks=False)
            continue
        if entry.when is not None and not entry.when(app):
            continue
        handler = _checked(entry.handler, entry.checks) if entry.checks else entry.handler
        if entry.method == "GET":
            app.router.add_get(entry.path, handler)
        else:
            app.router.add_route(entry.method, entry.path, handler)

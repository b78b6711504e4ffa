"""The server's one route table, and the one place that mounts it.

Every HTTP route, WebSocket and static folder is listed here, by module; the router, the
access table (``live.server.access``), the abuse limits (``live.server.abuse``) and the
OpenAPI document (``live.server.openapi``) are all generated from ``ROUTES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from aiohttp import web

from ..types import Role
from . import (
    agent,
    api,
    audit_entries,
    audit_routes,
    health,
    ingest,
    ingest_audiohook,
    ingest_fork,
    ingest_rtp,
    oidc_routes,
    pages,
)
from .access import check_routes
from .openapi import OPENAPI_PATH, build_document
from .route import PUBLIC, ROUTE_TABLE, Entry, Reply, Route, RouteTable, Rule, mount


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_document_text(), content_type="application/json")


OPENAPI = Route(
    method="GET",
    path=OPENAPI_PATH,
    handler=openapi_json,
    rule=PUBLIC,
    operation_id="openapi",
    summary="This document.",
    tag="operations",
    replies=(Reply(200, "The OpenAPI 3.1 document.", media={"application/json": {"type": "object"}}),),
)

# SIPREC and AudioSocket listen on their own ports, outside this router.
ROUTES: tuple[Entry, ...] = (
    *health.ROUTES,
    OPENAPI,
    *pages.ROUTES,
    *oidc_routes.ROUTES,
    *api.ROUTES,
    *agent.ROUTES,
    *audit_routes.ROUTES,
    *audit_entries.ROUTES,
    *ingest.ROUTES,
    *ingest_audiohook.ROUTES,
    *ingest_fork.ROUTES,
    *ingest_rtp.ROUTES,
)
TABLE = RouteTable.of(ROUTES)
ACCESS: Mapping[tuple[str, str], Rule] = TABLE.access
"""(method, route path as registered) -> who may call it. Static folders by their prefix."""
WS_MESSAGES: Mapping[str, Mapping[str, tuple[Role, ...]]] = TABLE.ws_messages
"""What a browser may send on each WebSocket, and who."""


@cache
def _document_text() -> str:
    return json.dumps(build_document(ROUTES))


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ROUTES`` (generated once: the table does not change)."""
    result: dict[str, Any] = json.loads(_document_text())
    return result


def mount_all(app: web.Application) -> None:
    """Mount every route of the table whose condition holds, and refuse to serve a route
    that is on the router but not in the table."""
    app[ROUTE_TABLE] = TABLE
    mount(app, ROUTES)
    check_routes(app)

"""The OpenAPI document against the router, the access table and the OpenAPI 3.1 schema.

Documented, by definition: every route the router mounts under ``/api/``, ``/auth/`` or
``/ingest/``, and ``/healthz``, ``/readyz``, ``/metrics`` (HTML pages and static folders
are not). A route added without documentation, or documentation left for a route that is
gone, fails here; so does an ``x-roles`` that says something the route table does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import schemathesis
from aiohttp import web
from openapi_spec_validator import OpenAPIV31SpecValidator

from live.server.openapi import OPENAPI_PATH, OPTIONAL_OIDC
from live.server.route import route_key
from live.server.routes import ACCESS, document
from tests.support.server import running_server

OIDC = {
    "oidc_issuer": "http://127.0.0.1:9/",  # never contacted: only the router is read
    "oidc_client_id": "live",
    "oidc_client_secret": "s3cret",
}
DOCUMENTED_PREFIXES = ("/api/", "/auth/", "/ingest/")
DOCUMENTED_PATHS = ("/healthz", "/readyz", "/metrics")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def documented_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route on the router that the document must describe."""
    keys = {route_key(route) for route in app.router.routes()}
    return {(m, p) for m, p in keys if p.startswith(DOCUMENTED_PREFIXES) or p in DOCUMENTED_PATHS}


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


async def test_every_mounted_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    ops = operations(document())
    optional = {key for key, op in ops.items() if "x-live-optional" in op}
    assert {ops[key]["x-live-optional"] for key in optional} == {OPTIONAL_OIDC}
    async with running_server(tmp_path) as server:
        assert server.app is not None
        mounted = documented_routes(server.app)
    assert not mounted & optional, "a route marked optional is mounted without OIDC"
    assert sorted(mounted - ops.keys()) == [], "routes on the router but not in the OpenAPI document"
    assert sorted(ops.keys() - optional - mounted) == [], "documented routes the router does not have"


async def test_with_oidc_the_optional_routes_are_mounted(tmp_path: Path) -> None:
    ops = operations(document())
    async with running_server(tmp_path, **OIDC) as server:
        assert server.app is not None
        mounted = documented_routes(server.app)
    assert mounted == ops.keys()


def test_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []
    # The fuzzer's own loader reads every operation (it resolves every $ref).
    schema = schemathesis.openapi.from_dict(doc)
    loaded = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert loaded == operations(doc).keys()


def test_x_roles_and_security_come_from_the_access_table() -> None:
    for (method, path), op in operations(document()).items():
        rule = ACCESS[(method, path)]
        assert op["x-access"] == rule.kind, (method, path)
        assert op["x-roles"] == [role.value for role in rule.roles], (method, path)
        assert op.get("x-websocket", False) == rule.websocket, (method, path)
        if rule.kind in ("roles", "signed_in"):
            schemes = [set(requirement) for requirement in op["security"]]
            assert {"bearerToken"} in schemes, (method, path)
            assert ({"sessionCookie"} if method == "GET" else {"sessionCookie", "csrfToken"}) in schemes
            assert {"401", "403"} <= op["responses"].keys(), (method, path)
        elif rule.kind == "public":
            assert op["security"] == [], (method, path)
        if rule.websocket:
            assert method == "GET" and "101" in op["responses"], (method, path)


def test_errors_share_one_shape() -> None:
    doc = document()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = error["properties"]["error"]
    if "$ref" in detail:  # a named schema of its own
        detail = doc["components"]["schemas"][detail["$ref"].rsplit("/", 1)[1]]
    assert detail["required"] == ["code", "message"]
    for (method, path), op in operations(doc).items():
        for status, response in op["responses"].items():
            if int(status) >= 400 and path != "/readyz":  # readiness is {"status": "starting"}
                ref = response.get("$ref", "")
                assert ref.startswith("#/components/responses/"), (method, path, status)
                target = doc["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert target["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


async def test_the_server_serves_the_document_to_anyone(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server, aiohttp.ClientSession() as http:
        async with http.get(server.base_url + OPENAPI_PATH) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert response.headers["Cache-Control"] == "no-store"
            served = await response.json()
    assert served == document()

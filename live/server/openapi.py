"""The OpenAPI 3.1 document, generated from the route table (``live.server.routes``).

Documented: every route with an operation id (everything under ``/api/``, ``/auth/`` and
``/ingest/``, and ``/healthz``, ``/readyz``, ``/metrics``); HTML pages and static folders
are not. WebSocket routes appear as ``GET`` answering ``101`` with their messages in the
description. ``x-access`` and ``x-roles`` are the route's access rule, and so is the
``security`` requirement; the error answers a rule, a request body or a limit implies are
added here; request and response schemas are the routes' pydantic models. Routes mounted
only when a feature is configured carry ``x-live-optional``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from .route import Entry, Reply, Route, Rule
from .schemas import Error
from .security import CSRF_HEADER, SESSION_COOKIE

OPENAPI_PATH = "/api/openapi.json"
OPENAPI_VERSION = "3.1.0"
OPTIONAL_OIDC = "oidc"
TAGS = ("operations", "auth", "supervisors", "calls", "admin", "agents", "audit", "ingest")

Schema = dict[str, Any]
Refs = dict[tuple[Any, JsonSchemaMode], Schema]  # (model, mode) -> its $ref

_JSON = "application/json"
_ERRORS = {
    400: ("BadRequest", "Bad request (`bad_json`, a field's or a parameter's code, ...)."),
    401: ("Unauthorized", "Not signed in, or a bad token (`signed_out`, `bad_token`)."),
    403: ("Forbidden", "Not allowed (`role_forbidden`, `csrf`, a policy reason, ...)."),
    404: ("NotFound", "Not found."),
    409: ("Conflict", "Conflict (`duplicate_call`: a call with this id is live already)."),
    410: ("Gone", "Gone."),
    413: ("PayloadTooLarge", "The body is over 64 KiB (`too_large`)."),
    429: ("TooManyRequests", "Slow down (`rate_limited`, `too_many_listens`, `too_many_connections`); see `Retry-After`."),
    503: ("Unavailable", "Unavailable (`ledger_unavailable`, ...): refused, fail closed."),
}


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema (draft 2020-12, as OpenAPI 3.1 uses) without a title on every
    property."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _components(routes: list[Route]) -> tuple[Refs, Schema]:
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for route in routes:
        if route.body is not None:
            models[(route.body, "validation")] = None
        for reply in route.replies:
            if reply.model is not None:
                models[(reply.model, "serialization")] = None
    refs, defs = models_json_schema(
        list(models), ref_template="#/components/schemas/{model}", schema_generator=_Schemas
    )
    return dict(refs), dict(sorted(defs.get("$defs", {}).items()))


def _error(status: int) -> Schema:
    return {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}


def _security(rule: Rule, method: str) -> list[dict[str, list[str]]]:
    if rule.kind in ("roles", "signed_in"):
        # Browsers send cookies by themselves: a cookie-authenticated request that changes
        # something must prove it comes from our page (CSRF token); a bearer token needs none.
        cookie: dict[str, list[str]] = {"sessionCookie": []}
        if method != "GET":
            cookie["csrfToken"] = []
        return [{"bearerToken": []}, cookie]
    if rule.kind == "ingest":
        # ``{}``: loopback senders when ``ingest_loopback_trust`` is set.
        return [{"ingestSecret": []}, {"ingestBearer": []}, {"twilioSignature": []}, {}]
    return []


def _implied_errors(route: Route) -> set[int]:
    """The error answers the route's rule, body and the abuse limits imply."""
    implied = {429, *route.errors}  # unknown bearer tokens from one address; per-route limits
    if route.body is not None:
        implied |= {400, 413}
    if route.rule.kind in ("roles", "signed_in"):
        implied |= {401, 403}
    elif route.rule.kind == "ingest":
        implied |= {401, 503}
    if route.rule.websocket:
        implied.add(400)
    return implied


def _reply(reply: Reply, refs: Refs) -> Schema:
    out: Schema = {"description": reply.description}
    if reply.headers:
        out["headers"] = {name: dict(schema) for name, schema in reply.headers.items()}
    content = {media: {"schema": dict(schema)} for media, schema in reply.media.items()}
    if reply.model is not None:
        content[_JSON] = {"schema": refs[(reply.model, "serialization")]}
    if content:
        out["content"] = content
    return out


def _operation(route: Route, refs: Refs) -> Schema:
    assert route.operation_id is not None
    op: Schema = {"operationId": route.operation_id, "summary": route.summary, "tags": [route.tag]}
    description = route.description
    if route.rule.websocket:
        description = f"WebSocket (RFC 6455).\n\n{description}"
    if description:
        op["description"] = description
    if route.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in route.params
        ]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": refs[(route.body, "validation")]}}}
    responses: dict[str, Schema] = {str(status): _error(status) for status in _implied_errors(route)}
    if route.rule.websocket:
        responses["101"] = {"description": "Switching Protocols: the WebSocket is open."}
    responses.update({str(reply.status): _reply(reply, refs) for reply in route.replies})
    op["responses"] = dict(sorted(responses.items()))
    op["security"] = _security(route.rule, route.method)
    op["x-access"] = route.rule.kind
    op["x-roles"] = [role.value for role in route.rule.roles]
    if route.rule.websocket:
        op["x-websocket"] = True
    if route.optional is not None:
        op["x-live-optional"] = route.optional
    return op


def build_document(entries: Iterable[Entry]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``entries`` (those with an operation id)."""
    routes = [e for e in entries if isinstance(e, Route) and e.operation_id is not None]
    refs, schemas = _components(routes)
    paths: dict[str, dict[str, Schema]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    error_ref = refs[(Error, "serialization")]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "live",
            "version": "0.1.0",
            "summary": "Silent monitoring for contact centres, with a tamper-evident listen ledger.",
            "description": "Errors are `{\"error\": {\"code\", \"message\"}}` with the status. "
            "`x-access` and `x-roles` on each operation are the route's access rule "
            "(`live/server/routes.py`).",
        },
        "tags": [{"name": t} for t in TAGS],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {
                name: {"description": meaning, "content": {_JSON: {"schema": error_ref}}}
                for name, meaning in _ERRORS.values()
            },
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "A personal API token."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": CSRF_HEADER,
                    "description": "`csrf_token` from `GET /api/me`; with the cookie on every request but GET.",
                },
                "ingestSecret": {"type": "apiKey", "in": "header", "name": "X-Live-Ingest-Secret"},
                "ingestBearer": {"type": "http", "scheme": "bearer", "description": "The ingest secret."},
                "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"},
            },
        },
    }

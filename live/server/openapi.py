"""The OpenAPI 3.1 description of the HTTP API, built in code and served at ``GET /api/openapi.json``.

What is documented: every route under ``/api/``, ``/auth/`` and ``/ingest/``, and
``/healthz``, ``/readyz``, ``/metrics``; HTML pages and static folders are not. WebSocket
routes appear as ``GET`` answering ``101`` with their messages in the description.

Who may call an operation is never written here by hand: ``x-access`` (the rule's kind) and
``x-roles`` (its roles) are read from ``live.server.access.ACCESS``, and so is the
``security`` requirement. Routes mounted only when OpenID Connect is configured carry
``x-live-optional: oidc``. ``tests/integration/test_openapi.py`` checks the document against
the router, the table and the OpenAPI 3.1 schema; ``test_fuzz_api.py`` fuzzes the server
against it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..types import Consent, Role
from .access import ACCESS, Rule
from .security import CSRF_HEADER, SESSION_COOKIE

OPENAPI_PATH = "/api/openapi.json"
OPENAPI_VERSION = "3.1.0"
OPTIONAL_OIDC = "oidc"

Schema = dict[str, Any]
Operation = dict[str, Any]

_JSON = "application/json"
_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    503: "Unavailable",
}


# --------------------------------------------------------------------------- schema helpers


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, **extra: Any) -> Schema:
    """A JSON object with these properties; extra properties are allowed (the API may grow)."""
    schema: Schema = {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}
    schema.update(extra)
    return schema


_BOUNDS = (
    "Set when the server died during the listen (end_reason node-lost): the true end is "
    "unknowable and lies between ended_after (its last proof of life) and ended_before "
    "(the restart); ended_at is then ended_after and duration_s the shortest duration."
)


def _nullable(type_: str, **extra: Any) -> Schema:
    return {"type": [type_, "null"], **extra}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


_STR: Schema = {"type": "string"}
_NUM: Schema = {"type": "number"}
_INT: Schema = {"type": "integer", "minimum": 0}
_BOOL: Schema = {"type": "boolean"}
_B64: Schema = {"type": "string", "contentEncoding": "base64"}


def _schemas() -> dict[str, Schema]:
    listener = _obj(
        {"session_id": _STR, "user_id": _STR, "display_name": _STR, "purpose": _STR, "started_at": _NUM}
    )
    return {
        "Error": _obj(
            {
                "error": _obj(
                    {"code": _STR, "message": _STR},
                    description="Some errors carry more fields, e.g. ``policy_version`` or ``problems``.",
                )
            }
        ),
        "Listener": listener,
        "Call": _obj(
            {
                "call_id": _STR,
                "source": _STR,
                "agent_id": _STR,
                "started_at": _NUM,
                "node_id": _STR,
                "consent": {"enum": [c.value for c in Consent]},
                "pci_paused": _BOOL,
                "codec": {"enum": ["PCMU", "PCMA"]},
                "queue": _STR,
                "legs": {
                    **_array({"enum": ["agent", "caller"]}),
                    "description": "The legs the source sends; a leg left out is not sent by the telephony.",
                },
                "listeners": _array(_ref("Listener")),
            },
            {
                "agent_name": {
                    **_STR,
                    "description": "The agent's name (user store, else the call's `agent_name` "
                    "parameter); empty when unknown. Sent to consoles (`/api/calls`, `/api/events`).",
                },
                "team": {**_STR, "description": "The agent's team (policy, else user store); may be empty."},
            },
        ),
        "CallAnswer": _obj({"call": _ref("Call")}),
        "Notice": _obj(
            {
                "id": _STR,
                "mode": _STR,
                "created_at": _NUM,
                "text": _STR,
                "delivered_at": _nullable("number"),
                "seen_at": _nullable("number"),
            },
            description="A notice to an agent; kind-specific fields (call_id, session_id, ...) may follow.",
        ),
        "ListenRecord": _obj(
            {
                "session_id": _STR,
                "call_id": _nullable("string"),
                "agent_id": _nullable("string"),
                "started_seq": _INT,
                "started_at": _NUM,
                "started_local": {"type": "string", "format": "date-time"},
                "purpose": _nullable("string"),
                "legs": _array(_STR),
                "listener_id": _nullable("string", description="A personal detail: null once erased."),
                "listener_name": _nullable("string", description="A personal detail: null once erased."),
                "listener_role": _nullable("string"),
                "policy_version": _nullable("string"),
                "team": _nullable("string"),
                "node_id": _nullable("string"),
                "ended_seq": _nullable("integer"),
                "ended_at": _nullable("number"),
                "duration_s": _nullable("number"),
                "end_reason": _nullable("string"),
                "dropped_packets": _nullable("integer"),
                "first_packet_at": _nullable("number"),
                "last_packet_at": _nullable("number"),
                "heard_s": _nullable("number"),
                "ended_after": _nullable("number", description=_BOUNDS),
                "ended_before": _nullable("number", description=_BOUNDS),
            }
        ),
        "RtpCallRequest": _obj(
            {"call_id": _STR},
            {
                "agent_id": _STR,
                "queue": _STR,
                "consent": {"enum": [c.value for c in Consent]},
                "codec": {"enum": ["PCMU", "PCMA"]},
                "private": _BOOL,
            },
        ),
        "RtpCall": _obj(
            {
                "call_id": _STR,
                "codec": {"enum": ["PCMU", "PCMA"]},
                "address": _STR,
                "ports": _obj({"agent": _INT, "caller": _INT}),
            }
        ),
        "HistoryRow": _obj(
            {
                "session_id": _nullable("string"),
                "call_id": _nullable("string"),
                "started_at": _nullable("number"),
                "ended_at": _nullable("number"),
                "ended_after": _nullable("number", description=_BOUNDS),
                "ended_before": _nullable("number", description=_BOUNDS),
                "duration_s": _nullable("number"),
                "purpose": _nullable("string"),
                "legs": _nullable("array", items=_STR),
                "listener": {"type": "string", "description": "The listener's name, or only their role."},
                "policy_version": _nullable("string"),
                "end_reason": _nullable("string"),
                "heard_s": _nullable("number"),
                "attempt": {
                    "type": "boolean",
                    "description": "The listener's browser never connected (setup-failed): nothing was heard.",
                },
            }
        ),
    }


# --------------------------------------------------------------------------- operation helpers


def _json(schema: Schema, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


def _error(status: int) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{_ERROR_CODES[status]}"}


def _query(name: str, description: str, schema: Schema | None = None, *, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or _STR}


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _STR}


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


def _operation(
    method: str,
    path: str,
    op_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    description: str = "",
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    optional: str | None = None,
) -> Operation:
    rule = ACCESS[(method, path)]  # a KeyError here means a route the table does not know
    op: Operation = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
        responses = {**responses, "400": _error(400), "413": _error(413)}
    if rule.kind in ("roles", "signed_in"):
        responses = {**responses, "401": _error(401), "403": _error(403)}
    elif rule.kind == "ingest":
        responses = {**responses, "401": _error(401), "503": _error(503)}
    # Abuse limits (live/server/abuse.py): unknown bearer tokens from one address, and
    # per-route limits on sign-in, listening and WebSockets.
    responses = {**responses, "429": _error(429)}
    op["responses"] = dict(sorted(responses.items()))
    op["security"] = _security(rule, method)
    op["x-access"] = rule.kind
    op["x-roles"] = [role.value for role in rule.roles]
    if optional is not None:
        op["x-live-optional"] = optional
    return op


def _websocket(path: str, op_id: str, summary: str, tag: str, messages: str) -> Operation:
    op = _operation(
        "GET",
        path,
        op_id,
        summary,
        tag,
        {
            "101": {"description": "Switching Protocols: the WebSocket is open."},
            "400": _error(400),
        },
        description=f"WebSocket (RFC 6455).\n\n{messages}",
    )
    op["x-websocket"] = True
    return op


# --------------------------------------------------------------------------- the operations


def _operations() -> list[tuple[str, str, Operation]]:
    call_id = _path("call_id", "A live call's id, as in `GET /api/calls`.")
    period = [
        _query("from", "Start date `YYYY-MM-DD` or ISO 8601 date-time (in `tz` unless it names a zone)."),
        _query("to", "End date (inclusive) or date-time."),
        _query("tz", "IANA time zone (default UTC)."),
    ]
    lang = _query("lang", "Language of a PDF.", {"enum": ["en", "de"]})
    ok = "OK"
    attachment = {"Content-Disposition": {"schema": _STR, "description": "attachment; filename=..."}}
    oidc_redirect = {"Location": {"schema": _STR}}
    ops: list[tuple[str, str, Operation]] = [
        # ---------------------------------------------------------------- operations
        ("GET", "/healthz", _operation(
            "GET", "/healthz", "healthz", "The process is up.", "operations",
            {"200": _json(_obj({"status": {"const": "ok"}}), ok)},
        )),
        ("GET", "/readyz", _operation(
            "GET", "/readyz", "readyz", "The node is ready to serve (ledger, bus, policy loaded).", "operations",
            {
                "200": _json(_obj({"status": {"const": "ready"}, "node_id": _STR}), "Ready."),
                "503": _json(
                    _obj({"status": {"enum": ["starting", "unavailable"]}}, {"reason": _STR}),
                    "Starting or stopping, or the ledger cannot be written (reason says why).",
                ),
            },
        )),
        ("GET", "/metrics", _operation(
            "GET", "/metrics", "metrics", "Prometheus text exposition: counters only, no personal data.",
            "operations",
            {"200": {"description": ok, "content": {"text/plain": {"schema": _STR}}}},
        )),
        ("GET", OPENAPI_PATH, _operation(
            "GET", OPENAPI_PATH, "openapi", "This document.", "operations",
            {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        )),
        # ---------------------------------------------------------------- sign-in
        ("GET", "/auth/link", _operation(
            "GET", "/auth/link", "signInLink", "Personal sign-in link: a fresh session cookie.", "auth",
            {
                "302": {
                    "description": "To the role's home page with a session cookie, or to "
                    "`/signin/?error=bad_link` for an unknown token.",
                    "headers": {"Location": {"schema": _STR}},
                }
            },
            parameters=[_query("token", "The personal sign-in token.")],
        )),
        ("GET", "/auth/methods", _operation(
            "GET", "/auth/methods", "signInMethods", "What the sign-in page offers.", "auth",
            {"200": _json(_obj({"link": _BOOL, "password": _BOOL, "oidc": _BOOL}), ok)},
        )),
        ("POST", "/auth/signin", _operation(
            "POST", "/auth/signin", "signIn", "Sign in with a password: sets the session cookie.", "auth",
            {
                "200": _json(
                    _obj({"user_id": _STR, "home": _STR}),
                    "Signed in; `Set-Cookie: live_session=...` (HttpOnly, SameSite=Strict).",
                ),
                "401": _error(401),
                "403": _error(403),
            },
            description="403 `bad_origin` when a foreign page posts it (login CSRF).",
            body=_obj({"user": _STR, "password": _STR}),
        )),
        ("POST", "/auth/signout", _operation(
            "POST", "/auth/signout", "signOut", "End this browser's session on the server.", "auth",
            {"200": _json(_obj({"signed_out": _BOOL}), "The session cookie is cleared.")},
        )),
        ("GET", "/auth/oidc/login", _operation(
            "GET", "/auth/oidc/login", "oidcLogin", "Start an OpenID Connect sign-in.", "auth",
            {
                "302": {"description": "To the provider's authorization endpoint.", "headers": oidc_redirect},
                "503": _error(503),
            },
            description="Mounted only when an OIDC issuer is configured.",
            parameters=[_query("next", "A local path to land on after sign-in.")],
            optional=OPTIONAL_OIDC,
        )),
        ("GET", "/auth/oidc/callback", _operation(
            "GET", "/auth/oidc/callback", "oidcCallback", "The provider's redirect back (RFC 6749 4.1.2).",
            "auth",
            {
                "200": {
                    "description": "Signed in: a page that moves on to the landing page by itself.",
                    "content": {"text/html": {"schema": _STR}},
                },
                "400": _error(400),
                "401": _error(401),
                "403": _error(403),
                "503": _error(503),
            },
            description="Mounted only when an OIDC issuer is configured.",
            parameters=[
                _query("code", "Authorization code."),
                _query("state", "The state sent with the login."),
                _query("iss", "The issuer (RFC 9207)."),
                _query("error", "The provider's error (RFC 6749 4.1.2.1)."),
                _query("error_description", "The provider's error text."),
            ],
            optional=OPTIONAL_OIDC,
        )),
        # ---------------------------------------------------------------- supervisors
        ("GET", "/api/me", _operation(
            "GET", "/api/me", "me", "Who is signed in, and what the console needs.", "supervisors",
            {
                "200": _json(
                    _obj(
                        {
                            "user_id": _STR,
                            "display_name": _STR,
                            "role": {"enum": [r.value for r in Role]},
                            "teams": _array(_STR),
                            "purposes": _array(_STR),
                            "policy_version": _nullable("string"),
                            "ice_servers": _array(
                                _obj({"urls": _STR}, {"username": _STR, "credential": _STR})
                            ),
                            "csrf_token": _nullable(
                                "string", description="For cookie sessions: send as `X-CSRF-Token`."
                            ),
                        },
                        {"listens_at_once": {"type": "integer", "description": "Listens one person may run at once."}},
                    ),
                    ok,
                )
            },
        )),
        ("GET", "/api/calls", _operation(
            "GET", "/api/calls", "listCalls", "The live calls the policy lets the caller see.", "supervisors",
            {"200": _json(_obj({"calls": _array(_ref("Call"))}), ok)},
        )),
        ("GET", "/api/events", _websocket(
            "/api/events", "rosterEvents", "Roster changes, live.", "supervisors",
            "Server to client: `{\"type\":\"snapshot\",\"calls\":[Call]}` at once, then "
            "`call.started` / `call.updated` (`{type, call}`), `call.ended` (`{type, call_id}`), "
            "`listen.started` (`{type, call_id, legs, listener}`), `listen.ended` "
            "(`{type, call_id, session_id, reason}`), and `{\"type\":\"pong\"}` for a ping.\n\n"
            "Client to server: only `\"ping\"` or `{\"type\":\"ping\"}`; anything else closes "
            "with 4400. Closes with 4401 / 4403 when the session ends or the role no longer "
            "allows it, 4408 when the client reads too slowly, 1012 when the server restarts. A foreign `Origin` is refused (403).",
        )),
        ("POST", "/api/calls/{call_id}/listen", _operation(
            "POST", "/api/calls/{call_id}/listen", "listen", "Start listening: WebRTC offer in, answer out.",
            "supervisors",
            {
                "201": _json(
                    _obj(
                        {
                            "sdp": _STR,
                            "type": {"const": "answer"},
                            "session_id": _STR,
                            "legs": _array(
                                _obj(
                                    {
                                        "leg": {"enum": ["agent", "caller"]},
                                        "mid": _nullable("string"),
                                        "audible": _BOOL,
                                        "available": {
                                            **_BOOL,
                                            "description": "Whether the source sends this leg at all "
                                            "(false for the missing track of a one-track Twilio stream; "
                                            "reason `not_sent`).",
                                        },
                                        "reason": _nullable("string"),
                                    }
                                )
                            ),
                        }
                    ),
                    "Listening: the start is on record in the ledger.",
                ),
                "404": _error(404),
                "410": _error(410),
                "503": _error(503),
            },
            description="Refusals are put on record. 400 `bad_sdp` / `purpose_required` / "
            "`purpose_not_allowed`, 403 with the policy's reason, 404 `unknown_call`, 410 "
            "`call_ended`, 503 `ledger_unavailable` (fail closed).",
            parameters=[call_id],
            body=_obj(
                {
                    "sdp": {"type": "string", "description": "The browser's SDP offer (RFC 8866)."},
                    "purpose": {
                        "type": "string",
                        "description": "One of the purposes the policy allows (`purposes` in `GET /api/me`).",
                        "examples": ["quality", "training"],
                    },
                },
                {
                    "type": {"const": "offer", "default": "offer"},
                    "resumes": {
                        "type": "string",
                        "description": "The session id of your own earlier listen to this call that a "
                        "restart or a lost connection interrupted; recorded with the new session "
                        "(400 `bad_resumes` otherwise).",
                    },
                },
            ),
        )),
        ("DELETE", "/api/listens/{session_id}", _operation(
            "DELETE", "/api/listens/{session_id}", "stopListen", "Stop a listen session.", "supervisors",
            {
                "200": _json(_obj({"session_id": _STR, "ended": {"const": True}, "duration_s": _NUM}), ok),
                "404": _error(404),
            },
            description="The listener, or an admin. 404 `unknown_session` (not on this node).",
            parameters=[_path("session_id", "The listen session's id.")],
        )),
        ("GET", "/api/listens", _operation(
            "GET", "/api/listens", "myListens", "The caller's own running listen sessions.", "supervisors",
            {
                "200": _json(
                    _obj(
                        {
                            "listens": _array(
                                _obj(
                                    {
                                        "session_id": _STR,
                                        "call_id": _STR,
                                        "purpose": _STR,
                                        "started_at": _NUM,
                                        "dropped_packets": _INT,
                                    }
                                )
                            )
                        }
                    ),
                    ok,
                )
            },
        )),
        ("POST", "/api/calls/{call_id}/consent", _operation(
            "POST", "/api/calls/{call_id}/consent", "setConsent", "Record the caller's consent.", "calls",
            {"200": _json(_ref("CallAnswer"), "The call as it is now."), "404": _error(404)},
            description="CTI (admin) and the call's agent freely; a supervisor only `denied`.",
            parameters=[call_id],
            body=_obj({"consent": {"enum": [c.value for c in Consent]}}),
        )),
        ("POST", "/api/calls/{call_id}/pci", _operation(
            "POST", "/api/calls/{call_id}/pci", "setPci", "Enter or leave a payment (PCI) pause.", "calls",
            {"200": _json(_ref("CallAnswer"), "The call as it is now."), "404": _error(404)},
            description="CTI (admin) and the call's agent freely; a supervisor may only start one.",
            parameters=[call_id],
            body=_obj({"paused": _BOOL}),
        )),
        ("POST", "/api/admin/policy/reload", _operation(
            "POST", "/api/admin/policy/reload", "reloadPolicy", "Read the monitoring policy file again.",
            "admin",
            {
                "200": _json(_obj({"version": _STR, "sha256": _STR}), "The policy now in force."),
                "400": _error(400),
            },
            description="400 `bad_policy` with `problems`: the previous policy stays in force.",
        )),
        # ---------------------------------------------------------------- agents
        ("GET", "/api/agent/events", _websocket(
            "/api/agent/events", "agentEvents", "The agent's monitoring indicator and notices, live.", "agents",
            "Server to client: `{\"type\":\"monitoring\",\"active\":bool,\"listeners\":[string]}` at "
            "once and on every change, `{\"type\":\"notice\",\"notice\":Notice}` for each new notice "
            "(which counts as delivered), `{\"type\":\"pong\"}` for a ping.\n\n"
            "Client to server: only `\"ping\"` or `{\"type\":\"ping\"}`; anything else closes with "
            "4400. Closes with 4401 / 4403 when the session ends or the role no longer allows it.",
        )),
        ("GET", "/api/agent/history", _operation(
            "GET", "/api/agent/history", "agentHistory", "The agent's listen sessions, newest first.", "agents",
            {"200": _json(_obj({"agent_id": _STR, "listens": _array(_ref("HistoryRow"))}), ok)},
        )),
        ("GET", "/api/notices", _operation(
            "GET", "/api/notices", "listNotices", "The agent's notices (listing delivers them).", "agents",
            {"200": _json(_obj({"notices": _array(_ref("Notice"))}), ok)},
        )),
        ("POST", "/api/notices/{notice_id}/seen", _operation(
            "POST", "/api/notices/{notice_id}/seen", "noticeSeen", "Mark a notice seen.", "agents",
            {"200": _json(_obj({"notice": _ref("Notice")}), ok), "404": _error(404)},
            description="404 `unknown_notice`, 403 `not_your_notice`.",
            parameters=[_path("notice_id", "The notice's id.")],
        )),
        # ---------------------------------------------------------------- the ledger
        ("GET", "/api/audit/checkpoint", _operation(
            "GET", "/api/audit/checkpoint", "checkpoint", "The latest signed checkpoint and the verifier key.",
            "audit",
            {
                "200": _json(
                    _obj(
                        {
                            "checkpoint": {
                                "type": "string",
                                "description": "C2SP signed note, with the cosignature lines "
                                "(c2sp.org/tlog-cosignature) of witnesses that cosigned it.",
                            },
                            "verifier_key": _STR,
                            "origin": _STR,
                            "tree_size": _INT,
                            "root": _B64,
                            "witnesses": _array(
                                _obj(
                                    {
                                        "witness": _STR,
                                        "witness_key": _STR,
                                        "tree_size": _INT,
                                        "timestamp": _INT,
                                    }
                                )
                            ),
                        }
                    ),
                    ok,
                ),
                "503": _error(503),
            },
        )),
        ("POST", "/api/audit/cosignatures", _operation(
            "POST", "/api/audit/cosignatures", "addCosignature",
            "A witness's cosignature of a checkpoint (`live witness`).", "audit",
            {
                "200": _json(_obj({"witness": _STR, "tree_size": _INT, "timestamp": _INT}), ok),
                "409": _error(409),
                "503": _error(503),
            },
            description="The cosignature line must verify under `witness_key` over a checkpoint "
            "this node signed: else 400 `bad_checkpoint`. 403 `unknown_witness` when "
            "`LIVE_LEDGER_WITNESSES` is set and does not list the key; 409 `witness_rollback` "
            "when the witness had cosigned a larger tree.",
            body=_obj({"checkpoint": _STR, "cosignature": _STR, "witness_key": _STR}),
        )),
        ("GET", "/api/audit/proof/inclusion", _operation(
            "GET", "/api/audit/proof/inclusion", "inclusionProof", "RFC 9162 inclusion proof of one entry.",
            "audit",
            {
                "200": _json(
                    _obj(
                        {"seq": _INT, "tree_size": _INT, "leaf_hash": _B64, "hashes": _array(_B64), "leaf": _STR},
                        {"checkpoint": {"type": "string", "description": "Without `size`: the checkpoint used."}},
                    ),
                    ok,
                ),
                "400": _error(400),
                "404": _error(404),
                "503": _error(503),
            },
            description="An agent only for entries about themself (403 `not_your_entry`); 404 `unknown_entry`.",
            parameters=[
                _query("seq", "The entry's sequence number.", {"type": "string", "pattern": "^[0-9]{1,19}$"},
                       required=True),
                _query("size", "Tree size (default: a current checkpoint).",
                       {"type": "string", "pattern": "^[0-9]{1,19}$"}),
            ],
        )),
        ("GET", "/api/audit/proof/consistency", _operation(
            "GET", "/api/audit/proof/consistency", "consistencyProof", "RFC 9162 consistency proof.", "audit",
            {
                "200": _json(
                    _obj(
                        {"old_size": _INT, "new_size": _INT, "hashes": _array(_B64)},
                        {"checkpoint": {"type": "string", "description": "Without `to`: the checkpoint used."}},
                    ),
                    ok,
                ),
                "400": _error(400),
                "503": _error(503),
            },
            parameters=[
                _query("from", "The older tree size.", {"type": "string", "pattern": "^[0-9]{1,19}$"}, required=True),
                _query("to", "The newer tree size (default: a current checkpoint).",
                       {"type": "string", "pattern": "^[0-9]{1,19}$"}),
            ],
        )),
        ("POST", "/api/audit/inconsistency", _operation(
            "POST", "/api/audit/inconsistency", "reportInconsistency",
            "Report a log that does not extend a checkpoint the agent's page kept.", "audit",
            {
                "202": _json(_obj({"recorded": _INT}), "On record as `checkpoint.inconsistent`."),
                "400": _error(400),
                "503": _error(503),
            },
            description="The agent page's own check (ARCHITECTURE.md decision 10). 400 `bad_problem`, "
            "`bad_checkpoint` (a note that does not parse).",
            body=_obj(
                {
                    "problem": {"enum": ["key_changed", "bad_signature", "origin_changed", "shrunk", "inconsistent"]},
                    "kept": {
                        "type": ["string", "null"],
                        "description": "The C2SP signed note the page kept (null on a first visit).",
                    },
                    "served": {"type": "string", "description": "The C2SP signed note served now."},
                }
            ),
        )),
        ("GET", "/api/audit/sessions", _operation(
            "GET", "/api/audit/sessions", "auditSessions", "Listen sessions started in a period, newest first.",
            "audit",
            {
                "200": _json(
                    _obj({"sessions": _array(_ref("ListenRecord")), "count": _INT, "timezone": _STR}), ok
                ),
                "400": _error(400),
                "503": _error(503),
            },
            parameters=[
                _query("agent", "Only this agent's."),
                _query("supervisor", "Only this listener's (user id; erased details no longer match)."),
                *period,
            ],
        )),
        ("GET", "/api/audit/entries", _operation(
            "GET", "/api/audit/entries", "auditEntries", "Every ledger entry, of every kind, newest first.",
            "audit",
            {
                "200": _json(
                    _obj(
                        {
                            "entries": _array(
                                _obj(
                                    {
                                        "seq": _INT,
                                        "kind": _STR,
                                        "at": _NUM,
                                        "at_local": {"type": "string", "format": "date-time"},
                                        "actor": _STR,
                                        "agent_id": _nullable("string"),
                                        "details_erased": _BOOL,
                                        "fields": {"type": "object"},
                                    }
                                )
                            ),
                            "next_before": _nullable("integer", description="`before` of the next, older page."),
                            "tree_size": _INT,
                            "kinds": _array(_STR),
                            "timezone": _STR,
                        }
                    ),
                    ok,
                ),
                "400": _error(400),
                "503": _error(503),
            },
            description="400 `bad_kind`, `bad_limit`, `bad_seq`, `bad_date`, `bad_timezone`.",
            parameters=[
                _query("kind", "Only entries of this kind (`kinds` in the answer lists them)."),
                _query("actor", "Only this actor's (user id, or `system`; erased details no longer match)."),
                _query("agent", "Only entries about this agent."),
                *period,
                _query("limit", "Entries per page, 1-500 (default 100).", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
                _query("before", "Only entries below this sequence number (`next_before`).",
                       {"type": "string", "pattern": "^[0-9]{1,18}$"}),
            ],
        )),
        ("GET", "/api/audit/verify", _operation(
            "GET", "/api/audit/verify", "auditVerify", "The whole log rebuilt and checked now.", "audit",
            {
                "200": _json(
                    _obj(
                        {
                            "ok": _BOOL,
                            "origin": _STR,
                            "tree_size": _INT,
                            "root": {"type": "string", "description": "Hex."},
                            "entries": _INT,
                            "checkpoints": _INT,
                            "details_checked": _INT,
                            "details_erased": _INT,
                            "first_bad_seq": _nullable("integer"),
                            "keys": _array(_STR),
                            "problems": _array(
                                _obj(
                                    {
                                        "code": _STR,
                                        "message": _STR,
                                        "seq": _nullable("integer"),
                                        "checkpoint_id": _nullable("integer"),
                                    }
                                )
                            ),
                            "warnings": _array(_STR),
                            "verifier_key": _STR,
                        }
                    ),
                    ok,
                ),
                "503": _error(503),
            },
        )),
        ("GET", "/api/audit/export", _operation(
            "GET", "/api/audit/export", "auditExport", "One agent's listen sessions, verifiable or for people.",
            "audit",
            {
                "200": {
                    "description": "An attachment; the export is on record (`export.made`).",
                    "headers": attachment,
                    "content": {
                        "application/jsonl": {"schema": _STR},
                        "text/csv": {"schema": _STR},
                        "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}},
                    },
                },
                "400": _error(400),
                "503": _error(503),
            },
            description="Auditors and admins for any agent (`agent` required); an agent only for "
            "themself (403 `not_your_export`). `listener_names=true` (not for agents) shows names.",
            parameters=[
                _query("agent", "The agent (required for auditors and admins)."),
                _query("format", "Bundle (jsonl), CSV or PDF (default).", {"enum": ["jsonl", "csv", "pdf"]}),
                *period,
                lang,
                _query("listener_names", "Show listeners' names.", {"enum": ["true", "false", "1", "0", "yes", "no"]}),
            ],
        )),
        ("GET", "/api/audit/report", _operation(
            "GET", "/api/audit/report", "auditReport", "The works-council report of one month.", "audit",
            {
                "200": {
                    "description": "An attachment; the report is on record (`export.made`).",
                    "headers": attachment,
                    "content": {
                        "text/csv": {"schema": _STR},
                        "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}},
                    },
                },
                "400": _error(400),
                "503": _error(503),
            },
            parameters=[
                _query("month", "`YYYY-MM`.", {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, required=True),
                _query("format", "PDF (default) or CSV.", {"enum": ["pdf", "csv"]}),
                _query("tz", "IANA time zone (default UTC)."),
                lang,
            ],
        )),
        # ---------------------------------------------------------------- telephony
        ("GET", "/ingest/twilio", _websocket(
            "/ingest/twilio", "ingestTwilio", "Twilio Media Streams in.", "ingest",
            "Client to server: Twilio Media Streams JSON text frames (`connected`, `start`, `media`, "
            "`mark`, `stop`). Binary frames close with 4400, a protocol error with 4000 + its status. "
            "Split streams (`<Stream track=\"inbound_track\">` and `track=\"outbound_track\">` for one "
            "`callSid`) are one call with two legs on the node that has the call; a stream whose track "
            "is already sent closes with 4409 `duplicate_call`, one that reaches another node of a "
            "cluster with 4409 `call_on_other_node`. The call ends with its last stream. "
            "Authenticated by the ingest secret (`X-Live-Ingest-Secret` or a bearer token), a valid "
            "`X-Twilio-Signature`, or loopback when trusted; otherwise 401 `ingest_unauthenticated`.",
        )),
        ("GET", "/ingest/audiohook", _websocket(
            "/ingest/audiohook", "ingestAudiohook", "Genesys Cloud AudioHook (protocol version 2) in.", "ingest",
            "Client to server: AudioHook JSON text messages (`open`, `ping`, `paused`, `resumed`, "
            "`update`, `discarded`, `error`, `close`) and binary frames of interleaved PCMU or L16 "
            "audio (`external` = caller, `internal` = agent). Server to client: `opened`, `pong`, "
            "`pause`, `resume`, `updated`, `disconnect`, `reconnect`, `closed`. Authenticated at the "
            "handshake by `X-API-KEY` (`LIVE_AUDIOHOOK_API_KEYS`) and, where a client secret is "
            "configured, the HTTP message signature (`Signature-Input`, `Signature`; RFC 9421, "
            "HMAC-SHA256, 5 s clock skew, each nonce once); otherwise 401 `ingest_unauthenticated`. "
            "With `LIVE_INGEST_LOOPBACK_TRUST` a loopback sender that presents no key is let in. "
            "An all-zero `conversationId` is a connection probe (answered, no call). Audio of any "
            "frame length is paced to listeners as 20 ms packets.",
        )),
        ("GET", "/ingest/fork/{kind}", {**_websocket(
            "/ingest/fork/{kind}", "ingestFork", "L16 WebSocket forks in (FreeSWITCH, jambonz, Vonage).", "ingest",
            "`kind` is `freeswitch` (mod_audio_fork / mod_audio_stream), `jambonz` (`listen`, "
            "subprotocol `audio.jambonz.org`) or `vonage` (Voice WebSocket). The first text frame "
            "carries the call's metadata, then binary 16-bit little-endian PCM at 8 or 16 kHz: mono "
            "is one leg per socket (`leg`: `agent` or `caller`, default caller; two mono sockets with "
            "one call id are one call), stereo both legs (channel 0 caller, channel 1 agent); `mixed` "
            "closes with 4400. Call id keys: freeswitch `call_id`/`uuid` (metadata or query string), "
            "jambonz `callSid`, vonage `call_id`/`uuid`/`conversation_uuid` (from the endpoint's "
            "headers). Subprotocols `audio.jambonz.org` and `audio.drachtio.org` are accepted. "
            "Authenticated like `/ingest/twilio`, or by the ingest secret as the password of HTTP basic "
            "authentication (jambonz `wsAuth`) or as the `secret` query parameter; otherwise 401. "
            "No metadata within 10 s closes with 4408; an unknown `kind` is 404 `unknown_fork`.",
        ), "parameters": [{**_path("kind", "The fork's protocol."), "schema": {"enum": ["freeswitch", "jambonz", "vonage"]}}]}),
        ("POST", "/api/ingest/rtp/calls", _operation(
            "POST", "/api/ingest/rtp/calls", "ingestRtpAnnounce", "Announce a call sent as plain RTP.", "ingest",
            {
                "201": _json(_ref("RtpCall"), "The call is live; send each leg's RTP to its port."),
                "409": _error(409),
                "503": _error(503),
            },
            description=(
                "For senders of plain RTP (Asterisk ARI `externalMedia`, GStreamer, ffmpeg): one UDP "
                "port per leg comes back. PT 0 (PCMU) or 8 (PCMA), 20 ms. The call ends with `DELETE`, "
                "or when no RTP arrives for `LIVE_RTP_TIMEOUT_S`. 503 `rtp_ports_exhausted` when every "
                "port of `LIVE_RTP_PORTS` is in use."
            ),
            body=_ref("RtpCallRequest"),
        )),
        ("DELETE", "/api/ingest/rtp/calls/{call_id}", _operation(
            "DELETE", "/api/ingest/rtp/calls/{call_id}", "ingestRtpEnd", "End a call announced as plain RTP.", "ingest",
            {"204": {"description": "Ended: its listens end as `call-ended`."}, "404": _error(404)},
            parameters=[_path("call_id", "The id given when the call was announced.")],
        )),
    ]
    return ops


def _responses() -> dict[str, Any]:
    meaning = {
        400: "Bad request (`bad_json`, a parameter's code, ...).",
        401: "Not signed in, or a bad token (`signed_out`, `bad_token`).",
        403: "Not allowed (`role_forbidden`, `csrf`, a policy reason, ...).",
        404: "Not found.",
        409: "Conflict (`duplicate_call`: a call with this id is live already).",
        410: "Gone.",
        413: "The body is over 64 KiB (`too_large`).",
        429: "Slow down (`rate_limited`, `too_many_listens`, `too_many_connections`); see `Retry-After`.",
        503: "Unavailable (`ledger_unavailable`, ...): refused, fail closed.",
    }
    return {name: _json(_ref("Error"), meaning[status]) for status, name in _ERROR_CODES.items()}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document, built fresh on every call."""
    paths: dict[str, dict[str, Operation]] = {}
    for method, path, op in _operations():
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "live",
            "version": "0.1.0",
            "summary": "Silent monitoring for contact centres, with a tamper-evident listen ledger.",
            "description": "Errors are `{\"error\": {\"code\", \"message\"}}` with the status. "
            "`x-access` and `x-roles` on each operation are the access rule of "
            "`live/server/access.py`.",
        },
        "tags": [{"name": t} for t in ("operations", "auth", "supervisors", "calls", "admin", "agents", "audit", "ingest")],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
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


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


def setup(app: web.Application) -> None:
    app.router.add_get(OPENAPI_PATH, openapi_json)

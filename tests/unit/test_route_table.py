"""The route table as data: request bodies through their models, answers from theirs, and the
OpenAPI document, access table and WebSocket messages generated from one list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from live.errors import BadRequest
from live.server.bodies import answer, parse_object, validate
from live.server.openapi import build_document
from live.server.route import PUBLIC, Reply, Route, RouteTable, Static, roles, takes
from live.server.routes import ROUTES, TABLE, document
from live.server.schemas import ConsentChange, ListenOffer, NotReady, PciChange, RtpCallRequest
from live.server.schemas_audit import MAX_NOTE_CHARS, InconsistencyReport
from live.types import Consent, Role


def refused(model: Any, body: dict[str, Any]) -> tuple[str, str, str]:
    with pytest.raises(BadRequest) as caught:
        validate(model, body)
    return caught.value.code, str(caught.value.fields["field"]), caught.value.message


def test_bad_bodies_are_400_with_the_field_and_the_models_code() -> None:
    assert refused(ConsentChange, {"consent": "maybe"})[:2] == ("bad_consent", "consent")
    assert refused(ConsentChange, {"consent": {}})[:2] == ("bad_consent", "consent")
    assert refused(ConsentChange, {})[:2] == ("bad_consent", "consent")
    # Strict: no "true" for a boolean, no number for a string.
    assert refused(PciChange, {"paused": "true"})[:2] == ("bad_pci", "paused")
    assert refused(PciChange, {"paused": 1})[:2] == ("bad_pci", "paused")
    assert refused(ListenOffer, {"sdp": 42, "purpose": "quality"})[:2] == ("bad_sdp", "sdp")
    assert refused(ListenOffer, {"sdp": "v=0", "type": "answer"})[:2] == ("bad_sdp", "type")
    # Per-field codes; the first wrong field in the model's order is named.
    served = "x" * 10
    assert refused(InconsistencyReport, {"problem": "bored", "served": served})[0] == "bad_problem"
    assert refused(InconsistencyReport, {"problem": "shrunk"})[:2] == ("bad_checkpoint", "served")
    too_long = "x" * (MAX_NOTE_CHARS + 1)
    assert refused(InconsistencyReport, {"problem": "shrunk", "served": too_long})[0] == "bad_checkpoint"
    code, field, message = refused(RtpCallRequest, {"call_id": "CA1", "private": "yes"})
    assert (code, field) == ("bad_field", "private") and message.startswith("private: ")


def test_good_bodies_and_what_they_leave_to_the_service() -> None:
    assert validate(ConsentChange, {"consent": "denied", "extra": 1}).consent == "denied"
    assert validate(PciChange, {"paused": False}).paused is False
    # A purpose that is not a string reaches the policy as none (refused there, on record).
    offer = validate(ListenOffer, {"sdp": "v=0", "purpose": 7})
    assert (offer.sdp, offer.purpose, offer.type) == ("v=0", None, "offer")
    rtp = validate(RtpCallRequest, {"call_id": "CA1", "codec": "pcma", "consent": ""})
    assert rtp.model_dump(exclude_none=True) == {"call_id": "CA1", "codec": "PCMA", "private": False}
    report = validate(InconsistencyReport, {"problem": "shrunk", "kept": None, "served": "note"})
    assert (report.kept, report.served) == (None, "note")


def test_consent_values_are_the_models() -> None:
    schema = ConsentChange.model_json_schema()["properties"]["consent"]
    assert sorted(schema["enum"]) == sorted(c.value for c in Consent)


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'"text"', b"[" * 20000, b"\xff"])
def test_a_body_that_is_no_json_object_is_bad_json(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_object(raw)
    assert caught.value.code == "bad_json"


def test_answers_leave_out_only_what_was_never_set() -> None:
    assert json.loads(answer(NotReady(status="starting"), status=503).text or "") == {"status": "starting"}
    body = json.loads(answer(NotReady(status="unavailable", reason=None)).text or "")
    assert body == {"status": "unavailable", "reason": None}


async def hello(request: web.Request) -> web.Response:
    return web.Response()


async def change(request: web.Request, body: PciChange) -> web.Response:
    return web.Response()


def test_the_document_access_table_and_messages_come_from_the_routes() -> None:
    routes = (
        Route(
            method="POST",
            path="/api/things/{id}",
            handler=takes(PciChange, change),
            rule=roles(Role.ADMIN),
            operation_id="changeThing",
            summary="Change a thing.",
            tag="admin",
            replies=(Reply(200, "OK", NotReady),),
            errors=(404,),
        ),
        Route(method="GET", path="/ws", handler=hello, rule=roles(Role.AGENT, websocket=True),
              operation_id="ws", summary="A socket.", tag="agents", messages={"ping": (Role.AGENT,)}),
        Route(method="GET", path="/page/", handler=hello, rule=PUBLIC),  # no operation id: a page
        Static("/files", Path(".")),
    )
    doc = build_document(routes)
    assert set(doc["paths"]) == {"/api/things/{id}", "/ws"}
    op = doc["paths"]["/api/things/{id}"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PciChange"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NotReady"}
    # What the rule, the body and the limits imply, and what the route adds.
    assert set(op["responses"]) == {"200", "400", "401", "403", "404", "413", "429"}
    assert (op["x-access"], op["x-roles"]) == ("roles", ["admin"])
    assert {"sessionCookie": [], "csrfToken": []} in op["security"]
    ws = doc["paths"]["/ws"]["get"]
    assert ws["x-websocket"] is True and "101" in ws["responses"]
    table = RouteTable.of(routes)
    assert table.access[("GET", "/files")] == PUBLIC
    assert table.ws_messages == {"/ws": {"ping": (Role.AGENT,)}}
    with pytest.raises(ValueError, match="listed twice"):
        RouteTable.of((*routes, routes[0]))


def test_the_servers_table() -> None:
    documented = [r for r in ROUTES if isinstance(r, Route) and r.operation_id]
    ids = [r.operation_id for r in documented]
    assert len(ids) == len(set(ids)), "operation ids are unique"
    for route in documented:
        assert route.rule.websocket or any(200 <= r.status < 400 for r in route.replies), route.key
        if route.body is not None:
            assert route.method in ("POST", "PUT", "PATCH"), route.key
    assert TABLE.access[("POST", "/api/calls/{call_id}/listen")].listen
    limits = {r.key: r.limit for r in ROUTES if isinstance(r, Route) and r.limit}
    assert limits == {
        ("GET", "/auth/link"): "signin",
        ("POST", "/auth/signin"): "signin",
        ("POST", "/api/calls/{call_id}/listen"): "listen",
    }
    assert document() == document() and document() is not document()

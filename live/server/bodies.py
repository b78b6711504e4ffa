"""JSON bodies in and out: a request body decoded through its declared model, an answer
built from its declared model.

Request models are strict (no ``"true"`` for a boolean, no number for a string) and ignore
fields they do not know. A body that does not fit is ``400`` with the first wrong field
(``field``) and the model's code for it (``error_codes``, else ``error_code``, else
``bad_field``), in the one error shape of ``live.server.errors``.

Answers are dumped with ``exclude_unset``: a response field with a default may be left out
(and is, unless the handler sets it); a field without one is always sent.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import BadRequest, PayloadTooLarge

MAX_JSON_BODY = 64 * 1024
B = TypeVar("B", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of every request body model."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    error_code: ClassVar[str] = "bad_field"
    error_codes: ClassVar[dict[str, str]] = {}


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 413 ``too_large`` past 64 KiB, 400 ``bad_json`` otherwise."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body over {MAX_JSON_BODY} bytes")
    # read(n) returns what has arrived so far, not n bytes: read until the end of the body.
    raw = bytearray()
    while len(raw) <= MAX_JSON_BODY:
        chunk = await request.content.read(MAX_JSON_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"request body over {MAX_JSON_BODY} bytes")
    return parse_object(bytes(raw))


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise BadRequest("the body must be JSON", code="bad_json") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object", code="bad_json")
    return body


def validate(model: type[B], body: dict[str, Any]) -> B:
    """``body`` as ``model``, or ``BadRequest`` naming the first field that does not fit."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        codes: dict[str, str] = getattr(model, "error_codes", {})
        code = codes.get(name) or getattr(model, "error_code", "bad_field")
        where = ".".join(str(part) for part in first["loc"])
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        raise BadRequest(message, code=code, field=name) from None


async def read_body(request: web.Request, model: type[B]) -> B:
    return validate(model, await read_json(request))


def answer(body: BaseModel, *, status: int = 200) -> web.Response:
    """A JSON response built from its declared model."""
    return web.json_response(body.model_dump(mode="json", exclude_unset=True), status=status)

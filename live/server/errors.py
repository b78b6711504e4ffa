"""Turns every error into ``{"error": {"code", "message"}}`` with its status, in one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import LiveError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str, **fields: object) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **fields}}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except LiveError as exc:
        response = web.json_response(exc.to_json(), status=exc.status)
        if "retry_after_s" in exc.fields:
            response.headers["Retry-After"] = str(exc.fields["retry_after_s"])
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(("/api/", "/auth/", "/ingest/")):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, )
    except Exception:  # task boundary: one request's bug must not take the server down
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error")

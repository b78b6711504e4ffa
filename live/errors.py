"""One error root for the whole server.

Every error carries a machine-readable ``code``, the HTTP ``status`` it maps to and the
WebSocket ``close_code`` (4000 + status) used when it ends a socket. ``server`` turns them into
``{"error": {"code": ..., "message": ...}}`` in one place.
"""

from __future__ import annotations

from typing import Any


class LiveError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields

    @property
    def close_code(self) -> int:
        """WebSocket close code in the private 4000-4999 range: 4000 + HTTP status."""
        return 4000 + self.status

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.fields)
        return {"error": body}


class BadRequest(LiveError):
    status = 400
    code = "bad_request"


class Unauthorized(LiveError):
    status = 401
    code = "unauthorized"


class Forbidden(LiveError):
    status = 403
    code = "forbidden"


class NotFound(LiveError):
    status = 404
    code = "not_found"


class Conflict(LiveError):
    status = 409
    code = "conflict"


class Gone(LiveError):
    status = 410
    code = "gone"


class PayloadTooLarge(LiveError):
    status = 413
    code = "too_large"


class TooManyRequests(LiveError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(LiveError):
    status = 503
    code = "unavailable"


class ProtocolError(BadRequest):
    """A telephony peer sent something its protocol does not allow."""

    code = "protocol_error"


class LedgerUnavailable(ServiceUnavailable):
    """The ledger could not be written: listening is refused (fail closed)."""

    code = "ledger_unavailable"


class BusUnavailable(ServiceUnavailable):
    code = "bus_unavailable"


class RevocationsUnavailable(ServiceUnavailable):
    """Revoked sessions and tokens cannot be written or learnt: a node that has not read
    them for too long refuses cookies and API tokens (fail closed)."""

    code = "revocations_unavailable"


class ConfigError(LiveError):
    code = "config_error"

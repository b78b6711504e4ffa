"""The one SIP error: a ``ProtocolError`` that knows which SIP final response answers it.

``status`` is the SIP status code the UAS answers with (RFC 3261 §21); it doubles as the
HTTP status of ``LiveError`` (400, 413, 415 and 488 read the same in both worlds).
"""

from __future__ import annotations

from typing import Any

from ...errors import ProtocolError

# RFC 3261 §21 and RFC 3264/3329/4028 phrases for the statuses this server sends.
REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (RFC 3261 §21), or a class-generic one."""
    return REASONS.get(status) or REASONS.get(status - status % 100, "Unknown")


class SipError(ProtocolError):
    """A SIP peer sent something its protocol does not allow.

    ``status`` is the SIP final response to answer with: 400 by default, 413 for an oversized
    message, 505 for an unknown SIP version, 488 for an unusable session description.
    """

    code = "sip_error"

    def __init__(self, message: str, *, status: int = 400, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.status = status

    @property
    def reason(self) -> str:
        return reason_phrase(self.status)

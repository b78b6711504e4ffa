"""What the server writes to its log: an access log without query strings, and a last-line
filter that masks anything shaped like a secret or a phone number.

Sign-in links carry their token in the query string (``/auth/link?token=…``) and the OIDC
callback its code and state, so the access log names the path only. The filter is defence
in depth: no code path logs a token, a password, a cookie, an ingest secret or a caller's
number on purpose, and ``tests/integration/test_logs_redacted.py`` checks a real server's
output at DEBUG level.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_SECRETS = (
    (re.compile(r"\blt_[A-Za-z0-9_-]{8,}"), "lt_[redacted]"),  # API and link tokens
    (re.compile(r"(?i)\b(bearer)\s+\S+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(token|code|state|password|secret|live_session|live_oidc)=[^&\s;\"']+"), r"\1=[redacted]"),
    (re.compile(r'(?i)("(?:password|token|secret|credential)"\s*:\s*)"[^"]*"'), r'\1"[redacted]"'),
    (re.compile(r"(ice-pwd:)\S+"), r"\1[redacted]"),  # SDP logged by aiortc at DEBUG
    (re.compile(r"\+\d[\d ()-]{6,}\d"), "[number]"),  # phone numbers as telephony sends them (E.164)
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets and phone numbers in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class AccessLogger(AbstractAccessLogger):
    """``203.0.113.9 GET /console/ 200 1234 B 3.1 ms``: the path without its query string."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %s B %.1f ms",
            request.remote,
            request.method,
            request.rel_url.path,
            response.status,
            response.body_length,
            time * 1000,
        )


def install_redaction() -> None:
    """Put the filter on every handler of the root logger (call after logging is set up)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

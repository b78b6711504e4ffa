"""SIP messages (RFC 3261 §7): parse, build responses, serialise, frame a byte stream.

Strict parse, lenient accept: a start line, ``name: value`` header lines (folded
continuation lines and bare-LF line endings tolerated, §7.3.1), an empty line, then the body.
Anything else raises ``SipError`` with the status to answer, and nothing else escapes for any
input. Limits: 65535 bytes per message (the largest UDP datagram; the same bound holds on
streams), 200 header fields, 8 KiB per header line.

On UDP (``parse_message``) a body shorter than Content-Length is an error and a longer one is
cut to it (§18.3); without Content-Length the body is the rest of the datagram. On TCP/TLS
(``SipStreamFramer``) Content-Length is mandatory, since it is the only framing there is.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import REASONS, SipError, reason_phrase
from .headers import (
    TOKEN,
    Headers,
    ViaHop,
    canonical_name,
    header_params,
    host_port,
    parse_via,
    tag_of,
    uri_of,
    user_part,
)

__all__ = [
    "MAX_HEADERS", "MAX_LINE", "MAX_MESSAGE", "REASONS", "REQUIRED_HEADERS", "Headers",
    "SipError", "SipMessage", "SipRequest", "SipResponse", "SipStreamFramer", "ViaHop",
    "build_request", "build_response", "canonical_name", "cseq", "header_params", "host_port",
    "is_keepalive", "parse_message", "parse_via", "reason_phrase", "serialise", "tag_of",
    "uri_of", "user_part",
]  # fmt: skip

MAX_MESSAGE = 65535
MAX_HEADERS = 200
MAX_LINE = 8192
REQUIRED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")  # RFC 3261 §8.1.1

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VERSION = re.compile(r"SIP/([0-9]{1,3})\.([0-9]{1,3})", re.IGNORECASE)
_STATUS_LINE = re.compile(r"(SIP/[^ \t]*)[ \t]+([0-9]{3})(?:[ \t]+(.*))?", re.IGNORECASE)
_REQUEST_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^ \t]+")
_CSEQ = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z0-9.!%*_+`'~-]+)")
_DIGITS = re.compile(r"[0-9]{1,10}")
_CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class SipRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class SipResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes


SipMessage = SipRequest | SipResponse


def _decode(raw: bytes) -> str:
    # RFC 3261 text is UTF-8; some SBCs put Latin-1 in display names: accept, never fail.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _check_version(version: str) -> None:
    match = _VERSION.fullmatch(version)
    if not match:
        raise SipError(f"malformed SIP version {version[:20]!r}")
    if (int(match.group(1)), int(match.group(2))) != (2, 0):
        raise SipError(f"SIP version {version[:20]!r} is not supported", status=505)


def _start_line(line: str) -> SipMessage:
    if len(line) > MAX_LINE or _CONTROL.search(line):
        raise SipError("malformed start line")
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE.fullmatch(line)
        if not match:
            raise SipError(f"malformed status line {line[:80]!r}")
        _check_version(match.group(1))
        status = int(match.group(2))
        if not 100 <= status <= 699:
            raise SipError(f"status code {status} is outside 100..699")
        return SipResponse(status, (match.group(3) or "").strip(), Headers(), b"")
    parts = re.split(r"[ \t]+", line.strip(" \t"))
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]):
        raise SipError(f"malformed request line {line[:80]!r}")
    method, uri, version = parts
    if not _REQUEST_URI.fullmatch(uri):
        raise SipError(f"malformed Request-URI {uri[:80]!r}")
    _check_version(version)
    return SipRequest(method, uri, Headers(), b"")


def _parse_head(head: bytes) -> SipMessage:
    """Start line and header fields (body empty). Errors here mean framing is lost too."""
    lines = _decode(head).split("\n")
    start = _start_line(lines[0].removesuffix("\r"))
    fields: list[list[str]] = []
    for raw in lines[1:]:
        line = raw.removesuffix("\r")
        if len(line) > MAX_LINE:
            raise SipError(f"a header line is longer than {MAX_LINE} bytes")
        if _CONTROL.search(line):
            raise SipError("control character in a header line")
        if line[:1] in (" ", "\t"):  # §7.3.1 folding: continuation of the previous field
            if not fields:
                raise SipError("continuation line before the first header")
            fields[-1][1] = fields[-1][1].rstrip() + " " + line.strip(" \t")
            if len(fields[-1][1]) > MAX_LINE:
                raise SipError(f"a header is longer than {MAX_LINE} bytes")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not TOKEN.fullmatch(name):
            raise SipError(f"malformed header line {line[:80]!r}")
        fields.append([name, value])
        if len(fields) > MAX_HEADERS:
            raise SipError(f"more than {MAX_HEADERS} header fields")
    return dataclasses.replace(start, headers=Headers._trusted((n, v) for n, v in fields))


def _content_length(headers: Headers) -> int | None:
    values = {value.strip() for value in headers.lines("Content-Length")}
    if not values:
        return None
    if len(values) > 1:
        raise SipError("conflicting Content-Length headers")
    value = values.pop()
    if not _DIGITS.fullmatch(value):
        raise SipError(f"malformed Content-Length {value[:20]!r}")
    length = int(value)
    if length > MAX_MESSAGE:
        raise SipError(f"Content-Length {length} exceeds {MAX_MESSAGE}", status=413)
    return length


def cseq(msg: SipMessage) -> tuple[int, str]:
    """The CSeq sequence number and method (RFC 3261 §20.16)."""
    value = msg.headers.get("CSeq").strip()
    match = _CSEQ.fullmatch(value)
    if not match or int(match.group(1)) >= 2**31:
        raise SipError(f"malformed CSeq {value[:40]!r}")
    return int(match.group(1)), match.group(2)


def _validate(msg: SipMessage) -> None:
    for name in REQUIRED_HEADERS:
        if not any(value for value in msg.headers.lines(name)):
            raise SipError(f"missing {name} header")
    _, method = cseq(msg)
    if isinstance(msg, SipRequest) and method != msg.method:  # §8.1.1.5, ACK/CANCEL included
        raise SipError(f"CSeq method {method} does not match {msg.method}")
    forwards = msg.headers.get("Max-Forwards", "0").strip()
    if not _DIGITS.fullmatch(forwards):
        raise SipError(f"malformed Max-Forwards {forwards[:20]!r}")


def is_keepalive(data: bytes) -> bool:
    """A datagram of only CR/LF: an RFC 5626 §4.4 keepalive, not a message."""
    return bool(data) and not data.strip(b"\r\n")


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from a datagram (or a framed stream message)."""
    if len(data) > MAX_MESSAGE:
        raise SipError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}", status=413)
    data = bytes(data).lstrip(b"\r\n")  # §7.5: CRLFs before the start line are ignored
    if not data:
        raise SipError("empty message")
    blank = _BLANK_LINE.search(data)
    if blank is None:
        raise SipError("no empty line after the header fields")
    msg = _parse_head(data[: blank.start()])
    length = _content_length(msg.headers)
    body = data[blank.end() :]
    if length is not None:
        if len(body) < length:
            raise SipError(f"body of {len(body)} bytes is shorter than Content-Length {length}")
        body = body[:length]
    _validate(msg)
    return dataclasses.replace(msg, body=body)


def _check_text(value: str, what: str) -> str:
    if not value or _CONTROL.search(value) or value != value.strip():
        raise ValueError(f"{what} {value!r} is empty or contains whitespace or control characters")
    return value


def _with_body(
    fields: list[tuple[str, str]], extra: Sequence[tuple[str, str]], body: bytes, content_type: str
) -> Headers:
    own = ("content-length", "content-type") if content_type else ("content-length",)
    fields += [(n, v) for n, v in extra if canonical_name(n).lower() not in own]
    if content_type:
        fields.append(("Content-Type", content_type))
    fields.append(("Content-Length", str(len(body))))
    return Headers(fields)


def build_request(
    method: str,
    uri: str,
    headers: Sequence[tuple[str, str]],
    *,
    body: bytes = b"",
    content_type: str = "",
) -> SipRequest:
    """A request with ``headers`` as given plus Content-Type (when given) and Content-Length."""
    if not TOKEN.fullmatch(method) or not _REQUEST_URI.fullmatch(uri):
        raise ValueError(f"bad method {method!r} or Request-URI {uri!r}")
    return SipRequest(method, uri, _with_body([], headers, body, content_type), body)


def build_response(
    request: SipRequest,
    status: int,
    reason: str = "",
    *,
    to_tag: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str = "",
) -> SipResponse:
    """A response to ``request`` per RFC 3261 §8.2.6.2: all Via values in order, From, To
    (with ``;tag=to_tag`` added if it has no tag yet), Call-ID and CSeq copied; Record-Route
    copied too for 101..299 (§12.1.1). ``reason`` defaults to the standard phrase."""
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is outside 100..699")
    reason = _check_text(reason or reason_phrase(status), "reason")
    source = request.headers
    to = source.get("To")
    if to_tag is not None:
        if not TOKEN.fullmatch(to_tag):
            raise ValueError(f"to_tag {to_tag!r} is not a token")
        if not tag_of(to):
            to = f"{to};tag={to_tag}"
    fields = [("Via", value) for value in source.lines("Via")]
    fields += [("From", source.get("From")), ("To", to)]
    fields += [("Call-ID", source.get("Call-ID")), ("CSeq", source.get("CSeq"))]
    if 101 <= status <= 299:
        fields += [("Record-Route", value) for value in source.lines("Record-Route")]
    return SipResponse(status, reason, _with_body(fields, headers, body, content_type), body)


def serialise(msg: SipMessage) -> bytes:
    """Wire bytes: CRLF line endings, Content-Length set to the body's length."""
    if isinstance(msg, SipRequest):
        start = f"{_check_text(msg.method, 'method')} {_check_text(msg.uri, 'URI')} SIP/2.0"
    else:
        reason = f" {msg.reason}" if msg.reason else ""
        if _CONTROL.search(reason) or not 100 <= msg.status <= 699:
            raise ValueError(f"bad status line {msg.status} {msg.reason!r}")
        start = f"SIP/2.0 {msg.status}{reason}"
    lines = [start]
    length = f"Content-Length: {len(msg.body)}"
    for name, value in msg.headers:
        if name.lower() != "content-length":
            lines.append(f"{name}: {value}")
        elif length:
            lines.append(length)
            length = ""
    if length:
        lines.append(length)
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + msg.body


class SipStreamFramer:
    """Cut SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3).

    Leading CRLFs are skipped; each ``\\r\\n\\r\\n`` among them is an RFC 5626 §4.4.1 ping,
    counted in ``keepalives`` (the transport answers each with a ``\\r\\n`` pong). Framing
    errors (a header block that does not parse, no Content-Length, more than 65535 bytes
    without a complete message) raise ``SipError`` and leave the framer broken: the transport
    answers if it can and closes the connection. ``feed_results`` also returns, in place, the
    ``SipError`` of a well-framed message whose content is invalid (say, no Via), so the stream
    can go on.
    """

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.keepalives = 0
        self.messages = 0
        self._buffer = bytearray()
        self._scanned = 0
        self._pending: tuple[SipMessage, int, int] | None = None
        self._broken: SipError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[SipMessage]:
        """Messages completed by ``data``; raises on the first bad one (then close)."""
        messages: list[SipMessage] = []
        for item in self.feed_results(data):
            if isinstance(item, SipError):
                raise item
            messages.append(item)
        return messages

    def feed_results(self, data: bytes) -> list[SipMessage | SipError]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        out: list[SipMessage | SipError] = []
        try:
            while (item := self._next()) is not None:
                out.append(item)
        except SipError as exc:
            self._broken = exc
            raise
        return out

    def _skip_crlf(self) -> None:
        buf = self._buffer
        while buf and buf[0] in _CRLF:
            if len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                return  # maybe the start of a ping: wait for the rest
            if buf.startswith(b"\r\n\r\n"):
                self.keepalives += 1
                del buf[:4]
            else:
                del buf[: 2 if buf.startswith(b"\r\n") else 1]
            self._scanned = 0

    def _next(self) -> SipMessage | SipError | None:
        if self._pending is None:
            self._skip_crlf()
            if not self._buffer or self._buffer[0] in _CRLF:
                return None
            blank = _BLANK_LINE.search(self._buffer, self._scanned)
            if blank is None:
                if len(self._buffer) > self.max_message:
                    raise SipError(
                        f"no complete SIP message within {self.max_message} bytes", status=413
                    )
                self._scanned = max(0, len(self._buffer) - 4)
                return None
            head = _parse_head(bytes(self._buffer[: blank.start()]))
            length = _content_length(head.headers)
            if length is None:
                raise SipError("Content-Length is required on a stream transport (RFC 3261 §18.3)")
            if blank.end() + length > self.max_message:
                raise SipError(f"message exceeds {self.max_message} bytes", status=413)
            self._pending = (head, blank.end(), length)
        head, body_start, length = self._pending
        end = body_start + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[body_start:end])
        del self._buffer[:end]
        self._pending, self._scanned = None, 0
        self.messages += 1
        try:
            _validate(head)
        except SipError as exc:
            return exc
        return dataclasses.replace(head, body=body)

"""``multipart/mixed`` bodies (RFC 2046 §5.1), as SIPREC sends them (RFC 7866 §8.1.1).

A SIPREC INVITE carries two parts: ``application/sdp`` and ``application/rs-metadata+xml``
(``Content-Disposition: recording-session``). Preamble and epilogue are ignored, the boundary
may be quoted, lines may end in CRLF or a bare LF, and a missing close delimiter is accepted
(the last part then runs to the end of the body). At most 16 parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipError
from .headers import canonical_name, header_params, split_top_level

MAX_PARTS = 16
MAX_PART_HEADERS = 32
# RFC 2046 §5.1.1: bcharsnospace / bchars, 1..70 characters, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_LINE_END = re.compile(r"\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class Part:
    """One body part. ``content_type`` is the whole header value (``text/plain`` when absent,
    RFC 2046 §5.1); ``disposition`` the lowercased disposition type (``recording-session``,
    ``session``) or ``""``; ``headers`` maps lowercased names to values."""

    content_type: str
    disposition: str
    headers: dict[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        return media_type(self.content_type)


def media_type(content_type_header: str) -> str:
    """``Application/SDP; charset=x`` → ``application/sdp``."""
    return split_top_level(content_type_header, ";")[0].strip().lower()


def boundary_of(content_type_header: str) -> str:
    """The boundary of a ``multipart/*`` Content-Type; raises ``SipError`` 400 otherwise."""
    if not media_type(content_type_header).startswith("multipart/"):
        raise SipError(f"no multipart: Content-Type is {content_type_header[:80]!r}")
    boundary = header_params(content_type_header).get("boundary", "")
    if not _BOUNDARY.fullmatch(boundary):
        raise SipError(f"no multipart: missing or invalid boundary {boundary[:80]!r}")
    return boundary


def _part(raw: bytes) -> Part:
    # body-part := MIME-part-headers [CRLF *OCTET]: a part starting with a line break has no
    # headers; a part with no blank line is all headers.
    if raw.startswith((b"\n", b"\r\n")):
        head, body = b"", raw[1 if raw.startswith(b"\n") else 2 :]
    else:
        blank = _BLANK_LINE.search(raw)
        head, body = (raw, b"") if blank is None else (raw[: blank.start()], raw[blank.end() :])
    headers: dict[str, str] = {}
    last = ""
    for line in _LINE_END.split(head.decode("utf-8", "replace")) if head else []:
        if line[:1] in (" ", "\t") and last:
            headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        name = canonical_name(name.strip()).lower()
        if not colon or not name:
            raise SipError(f"malformed header {line[:80]!r} in a multipart body part")
        if len(headers) >= MAX_PART_HEADERS:
            raise SipError("too many headers in a multipart body part")
        headers.setdefault(name, value.strip())
        last = name
    disposition = split_top_level(headers.get("content-disposition", ""), ";")[0]
    return Part(
        content_type=headers.get("content-type", "text/plain"),
        disposition=disposition.strip().lower(),
        headers=headers,
        body=body,
    )


def parse_multipart(content_type_header: str, body: bytes) -> list[Part]:
    """The parts of a multipart body, in order. Raises ``SipError`` (400)."""
    delimiter = re.escape(b"--" + boundary_of(content_type_header).encode())
    # A delimiter line: at the start or after a line break (which belongs to the delimiter),
    # "--" for the close delimiter, then transport padding up to the end of the line.
    pattern = re.compile(rb"(?:\A|\r?\n)" + delimiter + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    matches = list(pattern.finditer(body))
    if not matches:
        raise SipError("no multipart: the boundary does not occur in the body")
    if matches[0].group(1):
        raise SipError("multipart body closes before its first part")
    parts: list[Part] = []
    for match, following in zip(matches, [*matches[1:], None]):
        if match.group(1):  # close delimiter: the rest is epilogue
            break
        if len(parts) >= MAX_PARTS:
            raise SipError(f"more than {MAX_PARTS} parts in a multipart body")
        end = following.start() if following is not None else len(body)
        parts.append(_part(body[match.end() : end]))
    return parts

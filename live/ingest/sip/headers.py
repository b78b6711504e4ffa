"""SIP header fields (RFC 3261 §7.3, §20) and the small grammars inside their values.

``Headers`` is an immutable, ordered, multi-valued map with case-insensitive names; compact
forms (§7.3.3, RFC 3265/3515/3841/4028 additions) are expanded when a header is stored, so
``i:`` and ``Call-ID:`` are the same field. Values of list headers (§7.3.1: ``Via: a, b`` is
``Via: a`` plus ``Via: b``) are split at top-level commas only, never inside a quoted string
or a ``<URI>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import SipError

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID", "f": "From", "t": "To", "v": "Via", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
    "o": "Event", "x": "Session-Expires", "r": "Refer-To", "u": "Allow-Events",
    "b": "Referred-By", "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition",
}  # fmt: skip
# Names whose usual spelling is not what str.title() would give, plus the common ones.
_SPELLING = {name.lower(): name for name in (
    *COMPACT_FORMS.values(), "CSeq", "Max-Forwards", "Require", "Proxy-Require", "Unsupported",
    "Allow", "Accept", "Record-Route", "Route", "User-Agent", "Server", "Content-Disposition",
    "WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization",
    "MIME-Version", "Min-SE", "P-Asserted-Identity", "Diversion", "History-Info", "Reason",
)}  # fmt: skip
# RFC 3261 §7.3.1: headers whose grammar is a comma-separated list (so may be combined).
LIST_HEADERS = frozenset(name.lower() for name in (
    "Via", "Contact", "Route", "Record-Route", "Path", "Service-Route", "Require",
    "Proxy-Require", "Supported", "Unsupported", "Allow", "Allow-Events", "Accept",
    "Accept-Encoding", "Accept-Language", "Content-Encoding", "Content-Language", "Alert-Info",
    "Call-Info", "Error-Info", "In-Reply-To", "Warning", "P-Asserted-Identity", "History-Info",
    "Diversion", "Accept-Contact", "Reject-Contact", "Request-Disposition", "Reason",
))  # fmt: skip

TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PORT = re.compile(r"[0-9]{1,5}")


def canonical_name(name: str) -> str:
    """The stored spelling of a header name: compact forms expanded, known names normalised."""
    low = name.lower()
    if low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return _SPELLING.get(low, name)


class Headers:
    """Ordered header fields; names case-insensitive. Immutable: ``with_`` and friends copy.

    Building from user values raises ``ValueError`` for a name that is not a token or a value
    with a line break or control character (header injection); parsed values are trusted.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        checked: list[tuple[str, str]] = []
        for name, value in fields:
            if not TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a token")
            if _UNSAFE_VALUE.search(value):
                raise ValueError(f"header {name} value contains a control character")
            checked.append((canonical_name(name), value.strip()))
        self._fields: tuple[tuple[str, str], ...] = tuple(checked)

    @classmethod
    def build(cls, fields: Iterable[tuple[str, str]]) -> Headers:
        """Headers for a message we send (same as the constructor; checks every field)."""
        return cls(fields)

    @classmethod
    def _trusted(cls, fields: Iterable[tuple[str, str]]) -> Headers:
        headers = cls.__new__(cls)
        headers._fields = tuple((canonical_name(n), v.strip()) for n, v in fields)
        return headers

    def lines(self, name: str) -> list[str]:
        """Each header line's whole value, in order, without list splitting."""
        low = canonical_name(name).lower()
        return [value for field, value in self._fields if field.lower() == low]

    def get_all(self, name: str) -> list[str]:
        """All values in order; list headers (Via, Supported, ...) split at top-level commas."""
        values = self.lines(name)
        if canonical_name(name).lower() not in LIST_HEADERS:
            return values
        return [part for value in values for part in split_top_level(value, ",") if part]

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name`` (the first list element for list headers)."""
        values = self.get_all(name)
        return values[0] if values else default

    def items(self) -> tuple[tuple[str, str], ...]:
        return self._fields

    def with_(self, name: str, value: str) -> Headers:
        """A copy with ``name: value`` appended."""
        return Headers._trusted((*self._fields, *Headers([(name, value)])._fields))

    add = with_

    def without(self, name: str) -> Headers:
        low = canonical_name(name).lower()
        return Headers._trusted(f for f in self._fields if f[0].lower() != low)

    def replace(self, name: str, value: str) -> Headers:
        """A copy where ``name`` has the one value ``value``, at its first position (or last)."""
        new = Headers([(name, value)])._fields[0]
        low = new[0].lower()
        fields: list[tuple[str, str]] = []
        for field in self._fields:
            if field[0].lower() != low:
                fields.append(field)
            elif new not in fields:
                fields.append(new)
        if new not in fields:
            fields.append(new)
        return Headers._trusted(fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.lines(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def _key(self) -> tuple[tuple[str, str], ...]:
        return tuple((name.lower(), value) for name, value in self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"


def _outside_quotes(text: str) -> Iterator[tuple[int, str]]:
    """Each ``(index, character)`` of ``text`` outside quoted strings (RFC 3261 §25.1:
    ``"..."`` with ``\\`` escapes); the quotes themselves are left out too."""
    quoted = escaped = False
    for i, ch in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        else:
            yield i, ch


def split_top_level(value: str, sep: str) -> list[str]:
    """Split at ``sep`` outside quoted strings (with ``\\`` escapes) and ``<...>``; stripped."""
    parts: list[str] = []
    start = 0
    angle = False
    for i, ch in _outside_quotes(value):
        if ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == sep and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def header_params(value: str) -> dict[str, str]:
    """Header parameters after the first top-level ``;`` (``tag``, ``branch``, ``boundary``,
    ``handling``...): names lowercased, quoted values unquoted, flags map to ``""``.
    Parameters inside ``<URI>`` belong to the URI and are not returned. First one wins."""
    params: dict[str, str] = {}
    for part in split_top_level(value, ";")[1:]:
        name, _, raw = part.partition("=")
        name = name.strip().lower()
        if name and name not in params:
            params[name] = _unquote(raw.strip())
    return params


def tag_of(value: str) -> str:
    """The ``tag`` parameter of a From/To value, or ``""``."""
    return header_params(value).get("tag", "")


def uri_of(name_addr: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:b@h;transport=tcp>;tag=1``) or addr-spec
    (``sip:b@h;tag=1``: there the parameters belong to the header, RFC 3261 §20.10)."""
    head = split_top_level(name_addr, ";")[0]
    for i, ch in _outside_quotes(head):
        if ch == "<":
            end = head.find(">", i)
            if end < 0:
                raise SipError(f"unterminated <URI> in {name_addr[:100]!r}")
            return head[i + 1 : end].strip()
    return head.strip()


def _scheme(uri: str) -> tuple[str, str]:
    uri = uri_of(uri) if "<" in uri else uri.strip()
    scheme, sep, rest = uri.partition(":")
    return (scheme.lower(), rest) if sep else ("", uri)


def user_part(uri: str) -> str:
    """The user of a ``sip:``/``sips:`` URI or the number of a ``tel:`` URI, without its
    parameters or password, percent-decoded; ``""`` when there is none."""
    scheme, rest = _scheme(uri)
    if scheme == "tel":
        return unquote(re.split(r"[;?]", rest, maxsplit=1)[0].strip())
    if scheme not in ("sip", "sips") or "@" not in rest:
        return ""
    userinfo = rest.split("@", 1)[0]
    return unquote(re.split(r"[:;]", userinfo, maxsplit=1)[0])


def _split_host_port(hostport: str, what: str) -> tuple[str, int | None]:
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        host, tail = hostport[1:end], hostport[end + 1 :]
        if end < 0 or (tail and not tail.startswith(":")):
            raise SipError(f"bad IPv6 reference in {what}")
        port_text = tail[1:] if tail else None
    else:
        host, sep, port_text_ = hostport.partition(":")
        port_text = port_text_ if sep else None
    if not host or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
        raise SipError(f"bad host in {what}")
    if port_text is None:
        return host, None
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise SipError(f"bad port in {what}")
    return host, int(port_text)


def host_port(uri: str) -> tuple[str, int | None]:
    """Host (IPv6 without brackets) and port (``None`` when absent) of a sip/sips URI."""
    scheme, rest = _scheme(uri)
    if scheme not in ("sip", "sips"):
        raise SipError(f"not a sip: URI: {uri[:100]!r}", status=416)
    hostport = re.split(r"[;?]", rest.rpartition("@")[2], maxsplit=1)[0]
    return _split_host_port(hostport, "URI")


@dataclass(frozen=True, slots=True)
class ViaHop:
    """One Via value (RFC 3261 §20.42): where to send the response (§18.2.2)."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")


def parse_via(value: str) -> ViaHop:
    """``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`` → ``ViaHop``."""
    head = split_top_level(value, ";")[0]
    match = re.fullmatch(
        r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9-]+)\s+(\S+)", head.strip(), re.IGNORECASE
    )
    if not match:
        raise SipError(f"malformed Via: {value[:100]!r}")
    host, port = _split_host_port(match.group(2), "Via")
    return ViaHop(match.group(1).upper(), host, port, header_params(value))

"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

Ledger entries are hashed and signed as bytes, so the same entry must always serialise to
the same bytes, here and in any other JCS implementation an auditor uses. ``canonical_json``
follows RFC 8785 §3.2:

* no whitespace between tokens (§3.2.1);
* ``null``, ``true``, ``false`` as literals (§3.2.2.1);
* strings (§3.2.2.2): ``"`` and ``\\`` escaped as ``\\"`` and ``\\\\``; U+0008, U+0009,
  U+000A, U+000C, U+000D as ``\\b \\t \\n \\f \\r``; the other controls below U+0020 as
  ``\\u00xx`` (lowercase hex); everything else, ``/`` and non-ASCII included, as itself;
* numbers (§3.2.2.3) as ECMAScript ``Number.prototype.toString`` prints an IEEE 754 double
  (ECMA-262 "Number::toString"): the shortest digits that round-trip, plain notation for
  decimal exponents from -6 to 20, otherwise ``d.ddde+x`` / ``de-x``; ``-0`` prints as ``0``;
* object members sorted by their names compared as arrays of UTF-16 code units (§3.2.3),
  which is not the order of Python's ``sorted`` on ``str`` once characters above U+FFFF
  appear;
* the result encoded as UTF-8 (§3.2.4).

Supported Python values: ``dict`` (or any ``Mapping``) with ``str`` keys, ``list``/``tuple``,
``str``, ``int``, ``float``, ``bool`` and ``None``. ``str``/``int`` subclasses (such as
``str`` enums) serialise as their underlying value, as ``json.dumps`` does. Rejected with
``CanonicalError``, because RFC 8785 §3.1 builds on I-JSON (RFC 7493) and cannot represent
them faithfully: NaN and infinities (§3.2.2.3); integers that JCS would print differently
because an IEEE 754 double cannot hold them (RFC 7493 §2.2: beyond ±(2**53 - 1) an integer
is accepted only if it is already the canonical form of a double, such as
``31367366482317390``; ``2**53 + 1`` and ``2**68`` are rejected); strings with lone
surrogates, which are not valid Unicode (RFC 7493 §2.1); non-string object keys; any other
type. Canonical output parsed back (numbers as ``int`` or ``float``) and canonicalised again
gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from ..errors import BadRequest

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer every IEEE 754 double reader holds exactly (RFC 7493 §2.2)."""


class CanonicalError(BadRequest):
    """The value has no RFC 8785 canonical form (see the module docstring for what is accepted)."""

    code = "not_canonical"


# RFC 8785 §3.2.2.2: the two-character escapes; every other control becomes \u00xx.
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_ESCAPES: dict[int, str] = {c: _SHORT_ESCAPES.get(c, f"\\u{c:04x}") for c in range(0x20)}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def canonical_json(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 serialisation of ``value``.

    Raises ``CanonicalError`` for values JCS cannot represent (module docstring), naming
    where in the value the problem is (e.g. ``$.entries[3].at``).
    """
    out: list[str] = []
    try:
        _write(value, out, "$")
    except RecursionError:
        raise CanonicalError("value is nested too deeply (or contains itself)") from None
    return "".join(out).encode("utf-8")


def _write(value: object, out: list[str], where: str) -> None:
    # bool before int: True is an int in Python.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value, where))
    elif isinstance(value, int):
        out.append(_integer(value, where))
    elif isinstance(value, float):
        out.append(_number(float(value), where))
    elif isinstance(value, Mapping):
        _write_object(value, out, where)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, f"{where}[{i}]")
        out.append("]")
    else:
        raise CanonicalError(f"{where}: {type(value).__name__} has no JSON form", where=where)


def _write_object(value: Mapping[object, object], out: list[str], where: str) -> None:
    names: list[str] = []
    for key in value:
        if not isinstance(key, str):
            raise CanonicalError(
                f"{where}: object keys must be strings, got {type(key).__name__} {key!r:.40}",
                where=where,
            )
        names.append(key)
    # RFC 8785 §3.2.3: compare names as arrays of UTF-16 code units. Big-endian UTF-16
    # bytes compare in the same order as the code units they encode. Lone surrogates are
    # rejected first: they are not valid Unicode, and "utf-16-be" cannot encode them.
    encoded: list[tuple[bytes, str]] = []
    for name in names:
        _check_unicode(name, f"{where} key {name!r:.40}")
        encoded.append((name.encode("utf-16-be"), name))
    encoded.sort()
    out.append("{")
    for i, (_, name) in enumerate(encoded):
        if i:
            out.append(",")
        out.append(_string(name, where))
        out.append(":")
        _write(value[name], out, f"{where}.{name}")
    out.append("}")


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        position = exc.start
        raise CanonicalError(
            f"{where}: string has a lone surrogate U+{ord(text[position]):04X} at position "
            f"{position}, which is not valid Unicode (RFC 7493 §2.1)",
            where=where,
        ) from None


def _string(text: str, where: str) -> str:
    """RFC 8785 §3.2.2.2 string serialisation (minimal escaping)."""
    _check_unicode(text, where)
    return '"' + str.translate(text, _ESCAPES) + '"'


def _integer(value: int, where: str) -> str:
    """Print an integer, which JCS treats as the IEEE 754 double it denotes (§3.2.2.3).

    Accepted only when the double prints back as the very same digits, so canonicalising
    never changes a value and canonical output parsed back to integers is a fixed point.
    """
    number = int(value)  # the underlying value of an int subclass (e.g. IntEnum)
    text = str(number)
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return text  # every safe integer is a double that Number::toString prints as is
    try:
        printed = _number(float(number), where)
    except OverflowError:
        printed = ""
    if printed != text:
        raise CanonicalError(
            f"{where}: integer {number} would change to {printed or 'nothing'} as an "
            "IEEE 754 double (RFC 8785 §3.2.2.3, RFC 7493 §2.2); store it as a string",
            where=where,
        )
    return text


def _number(value: float, where: str) -> str:
    """ECMA-262 Number::toString for a finite double, as RFC 8785 §3.2.2.3 requires."""
    if not math.isfinite(value):
        raise CanonicalError(
            f"{where}: {value!r} is not a JSON number (RFC 8785 §3.2.2.3)", where=where
        )
    if value == 0:
        return "0"  # both +0 and -0
    sign = "-" if value < 0 else ""
    # repr() gives the shortest decimal that round-trips to the same double, choosing the
    # closest one when several are equally short: the digits Number::toString specifies.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)  # finite
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    # value = 0.<digits> * 10**n with k significant digits (ECMA-262 names n and k).
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text

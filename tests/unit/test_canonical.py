"""RFC 8785 (JCS) canonical JSON: published examples, number formatting, rejections."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.audit.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_json
from live.errors import LiveError

# The input/output pairs of the RFC 8785 authors' test suite:
# https://github.com/cyberphone/json-canonicalization/tree/19d51d7fe467d4706a3ff08adf8a748f29fc21e0/testdata
# (input/*.json canonicalises to output/*.json byte for byte). "values" is the example of
# RFC 8785 §3.2.2, "weird" the sorting example of §3.2.3, "french" the note on locales.
JCS_TESTDATA = [
    (
        "arrays",
        '[\n  56,\n  {\n    "d": true,\n    "10": null,\n    "1": [ ]\n  }\n]\n',
        b'[56,{"1":[],"10":null,"d":true}]',
    ),
    (
        "french",
        '{\n  "peach": "This sorting order",\n  "péché": "is wrong according to French",\n  "pêche": "but canonicalization MUST",\n  "sin":   "ignore locale"\n}\n',
        b'{"peach":"This sorting order","p\xc3\xa9ch\xc3\xa9":"is wrong according to French","p\xc3\xaache":"but canonicalization MUST","sin":"ignore locale"}',
    ),
    (
        "structures",
        '{\n  "1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0},\n  "10": { },\n  "": "empty",\n  "a": { },\n  "111": [ {"e": "yes","E": "no" } ],\n  "A": { }\n}',
        b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}',
    ),
    (
        "unicode",
        '{\n  "Unnormalized Unicode":"A\\u030a"\n}\n',
        b'{"Unnormalized Unicode":"A\xcc\x8a"}',
    ),
    (
        "values",
        '{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n  "literals": [null, true, false]\n}',
        b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    ),
    (
        "weird",
        '{\n  "\\u20ac": "Euro Sign",\n  "\\r": "Carriage Return",\n  "\\u000a": "Newline",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n  "\\ud83d\\ude02": "Smiley",\n  "\\u00f6": "Latin Small Letter O With Diaeresis",\n  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n  "</script>": "Browser Challenge"\n}\n',
        b'{"\\n":"Newline","\\r":"Carriage Return","1":"One","</script>":"Browser Challenge","\xc2\x80":"Control\x7f","\xc3\xb6":"Latin Small Letter O With Diaeresis","\xe2\x82\xac":"Euro Sign","\xf0\x9f\x98\x82":"Smiley","\xef\xac\xb3":"Hebrew Letter Dalet With Dagesh"}',
    ),
]


@pytest.mark.parametrize(
    ("name", "source", "expected"), JCS_TESTDATA, ids=[t[0] for t in JCS_TESTDATA]
)
def test_rfc8785_reference_testdata(name: str, source: str, expected: bytes) -> None:
    assert canonical_json(json.loads(source)) == expected


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F602 is D83D DE02 in UTF-16, so it sorts before U+FB33 although its code point is
    # larger (RFC 8785 §3.2.3); Python's own str ordering would put it last.
    value = {"\ufb33": 1, "\U0001f602": 2, "\u20ac": 3}
    assert sorted(value) == ["\u20ac", "\ufb33", "\U0001f602"]
    assert canonical_json(value) == '{"€":3,"😂":2,"דּ":1}'.encode()


def test_string_escaping_is_minimal() -> None:
    every_control = "".join(chr(c) for c in range(0x20))
    assert canonical_json(every_control) == (
        b'"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        b"\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        b'\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"'
    )
    assert canonical_json('a"b\\c/d\x7f\u2028é😂') == '"a\\"b\\\\c/d\x7f\u2028é😂"'.encode()


# RFC 8785 Appendix B, finite values (IEEE 754 bits -> serialisation).
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: int) -> float:
    value: float = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonical_json(_double(int(bits, 16))) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_rejected(bits: str) -> None:
    with pytest.raises(CanonicalError, match="not a JSON number"):
        canonical_json(_double(int(bits, 16)))


# The "static" inputs of the ES6 number test file generator in
# https://github.com/cyberphone/json-canonicalization/blob/19d51d7fe467d4706a3ff08adf8a748f29fc21e0/testdata/README.md
ES6_STATIC = [
    0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x8000000000000001,
    0xc46696695dbd1cc3, 0xc43211ede4974a35, 0xc3fce97ca0f21056, 0xc3c7213080c1a6ac,
    0xc39280f39a348556, 0xc35d9b1f5d20d557, 0xc327af4c4a80aaac, 0xc2f2f2a36ecd5556,
    0xc2be51057e155558, 0xc28840d131aaaaac, 0xc253670dc1555557, 0xc21f0b4935555557,
    0xc1e8d5d42aaaaaac, 0xc1b3de4355555556, 0xc17fca0555555556, 0xc1496e6aaaaaaaab,
    0xc114585555555555, 0xc0e046aaaaaaaaab, 0xc0aa0aaaaaaaaaaa, 0xc074d55555555555,
    0xc040aaaaaaaaaaab, 0xc00aaaaaaaaaaaab, 0xbfd5555555555555, 0xbfa1111111111111,
    0xbf6b4e81b4e81b4f, 0xbf35d867c3ece2a5, 0xbf0179ec9cbd821e, 0xbecbf647612f3696,
    0xbe965e9f80f29212, 0xbe61e54c672874db, 0xbe2ca213d840baf8, 0xbdf6e80fe033c8c6,
    0xbdc2533fe68fd3d2, 0xbd8d51ffd74c861c, 0xbd5774ccac3d3817, 0xbd22c3d6f030f9ac,
    0xbcee0624b3818f79, 0xbcb804ea293472c7, 0xbc833721ba905bd3, 0xbc4ebe9c5db3c61e,
    0xbc18987d17c304e5, 0xbbe3ad30dfcf371d, 0xbbaf7b816618582f, 0xbb792f9ab81379bf,
    0xbb442615600f9499, 0xbb101e77800c76e1, 0xbad9ca58cce0be35, 0xbaa4a1e0a3e6fe90,
    0xba708180831f320d, 0xba3a68cd9e985016, 0x446696695dbd1cc3, 0x443211ede4974a35,
    0x43fce97ca0f21056, 0x43c7213080c1a6ac, 0x439280f39a348556, 0x435d9b1f5d20d557,
    0x4327af4c4a80aaac, 0x42f2f2a36ecd5556, 0x42be51057e155558, 0x428840d131aaaaac,
    0x4253670dc1555557, 0x421f0b4935555557, 0x41e8d5d42aaaaaac, 0x41b3de4355555556,
    0x417fca0555555556, 0x41496e6aaaaaaaab, 0x4114585555555555, 0x40e046aaaaaaaaab,
    0x40aa0aaaaaaaaaaa, 0x4074d55555555555, 0x4040aaaaaaaaaaab, 0x400aaaaaaaaaaaab,
    0x3fd5555555555555, 0x3fa1111111111111, 0x3f6b4e81b4e81b4f, 0x3f35d867c3ece2a5,
    0x3f0179ec9cbd821e, 0x3ecbf647612f3696, 0x3e965e9f80f29212, 0x3e61e54c672874db,
    0x3e2ca213d840baf8, 0x3df6e80fe033c8c6, 0x3dc2533fe68fd3d2, 0x3d8d51ffd74c861c,
    0x3d5774ccac3d3817, 0x3d22c3d6f030f9ac, 0x3cee0624b3818f79, 0x3cb804ea293472c7,
    0x3c833721ba905bd3, 0x3c4ebe9c5db3c61e, 0x3c18987d17c304e5, 0x3be3ad30dfcf371d,
    0x3baf7b816618582f, 0x3b792f9ab81379bf, 0x3b442615600f9499, 0x3b101e77800c76e1,
    0x3ad9ca58cce0be35, 0x3aa4a1e0a3e6fe90, 0x3a708180831f320d, 0x3a3a68cd9e985016,
    0x4024000000000000, 0x4014000000000000, 0x3fe0000000000000, 0x3fa999999999999a,
    0x3f747ae147ae147b, 0x3f40624dd2f1a9fc, 0x3f0a36e2eb1c432d, 0x3ed4f8b588e368f1,
    0x3ea0c6f7a0b5ed8d, 0x3e6ad7f29abcaf48, 0x3e35798ee2308c3a, 0x3ed539223589fa95,
    0x3ed4ff26cd5a7781, 0x3ed4f95a762283ff, 0x3ed4f8c60703520c, 0x3ed4f8b72f19cd0d,
    0x3ed4f8b5b31c0c8d, 0x3ed4f8b58d1c461a, 0x3ed4f8b5894f7f0e, 0x3ed4f8b588ee37f3,
    0x3ed4f8b588e47da4, 0x3ed4f8b588e3849c, 0x3ed4f8b588e36bb5, 0x3ed4f8b588e36937,
    0x3ed4f8b588e368f8, 0x3ed4f8b588e368f1, 0x3ff0000000000000, 0xbff0000000000000,
    0xbfeffffffffffffa, 0xbfeffffffffffffb, 0x3feffffffffffffa, 0x3feffffffffffffb,
    0x3feffffffffffffc, 0x3feffffffffffffe, 0xbfefffffffffffff, 0xbfefffffffffffff,
    0x3fefffffffffffff, 0x3fefffffffffffff, 0x3fd3333333333332, 0x3fd3333333333333,
    0x3fd3333333333334, 0x0010000000000000, 0x000ffffffffffffd, 0x000fffffffffffff,
    0x7fefffffffffffff, 0xffefffffffffffff, 0x4340000000000000, 0xc340000000000000,
    0x4430000000000000, 0x44b52d02c7e14af5, 0x44b52d02c7e14af6, 0x44b52d02c7e14af7,
    0x444b1ae4d6e2ef4e, 0x444b1ae4d6e2ef4f, 0x444b1ae4d6e2ef50, 0x3eb0c6f7a0b5ed8c,
    0x3eb0c6f7a0b5ed8d, 0x41b3de4355555553, 0x41b3de4355555554, 0x41b3de4355555555,
    0x41b3de4355555556, 0x41b3de4355555557, 0xbecbf647612f3696, 0x43143ff3c1cb0959,
]  # fmt: skip


def _es6_test_inputs() -> Iterator[int]:
    """The deterministic input sequence of es6testfile100m.txt (same README): the static
    values, 2000 consecutive subnormal/normal boundary values, then doubles read
    little-endian from a SHA-256 chain started at 32 zero bytes, skipping 0, NaN and ±inf."""
    yield from ES6_STATIC
    for i in range(2000):
        yield 0x0010000000000000 + i
    block = bytes(32)
    while True:
        block = hashlib.sha256(block).digest()
        for offset in range(0, 32, 8):
            value = _double(int.from_bytes(block[offset : offset + 8], "little"))
            if value != 0 and math.isfinite(value):
                yield int.from_bytes(block[offset : offset + 8], "little")


def test_es6_number_test_file_hashes() -> None:
    """The published SHA-256 of the first 1 000 and 10 000 lines of es6testfile100m.txt
    (lines ``<hex bits>,<serialisation>\\n``), from the same README."""
    published = {
        1000: ("be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687", 37967),
        10000: ("b9f7a8e75ef22a835685a52ccba7f7d6bdc99e34b010992cbc5864cd12be6892", 399022),
    }
    digest, size = hashlib.sha256(), 0
    inputs = _es6_test_inputs()
    for line_number in range(1, max(published) + 1):
        bits = next(inputs)
        line = f"{bits:x},".encode() + canonical_json(_double(bits)) + b"\n"
        digest.update(line)
        size += len(line)
        if line_number in published:
            assert (digest.hexdigest(), size) == published[line_number]


@settings(max_examples=300)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip(value: float) -> None:
    assert float(canonical_json(value)) == value


def test_integers() -> None:
    assert canonical_json([0, -1, 42, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]) == (
        b"[0,-1,42,9007199254740991,-9007199254740991]"
    )
    # An integral float prints like the integer (ECMAScript has one number type).
    assert canonical_json([1.0, -0.0, 1e20, 1e21]) == b"[1,0,100000000000000000000,1e+21]"
    # Beyond 2**53 - 1 an integer is accepted only if it is already the canonical text of a
    # double: JCS output parsed back as an int stays a fixed point, nothing else changes.
    assert canonical_json(2**53) == b"9007199254740992"
    assert canonical_json(31367366482317390) == b"31367366482317390"
    assert canonical_json(-295147905179352830000) == b"-295147905179352830000"
    # 2**68 is exactly a double, but JCS prints it as 295147905179352830000 (Appendix B).
    for changed in (MAX_SAFE_INTEGER + 2, -MAX_SAFE_INTEGER - 2, 2**68, 10**30, 2**1024):
        with pytest.raises(CanonicalError, match="would change to"):
            canonical_json({"n": changed})


class _Colour(str, enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_serialise_as_their_value() -> None:
    assert canonical_json({"c": _Colour.RED, "l": _Level.HIGH, "t": (1, True, None)}) == (
        b'{"c":"red","l":3,"t":[1,true,null]}'
    )


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({1: "x"}, "object keys must be strings"),
        ({"a": [1, {"b": b"bytes"}]}, r"\$\.a\[1\]\.b: bytes"),
        ({"a": {1, 2}}, r"\$\.a: set"),
        ("lone \ud800 surrogate", "lone surrogate U\\+D800"),
        ({"\udfff": 1}, "lone surrogate U\\+DFFF"),
        (float("nan"), "not a JSON number"),
        ([float("-inf")], "not a JSON number"),
        (object(), "object has no JSON form"),
    ],
)
def test_unsupported_values_are_rejected(value: Any, where: str) -> None:
    with pytest.raises(CanonicalError, match=where) as info:
        canonical_json(value)
    assert isinstance(info.value, LiveError)
    assert info.value.status == 400


def test_self_containing_value_is_rejected() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(CanonicalError, match="nested too deeply"):
        canonical_json(loop)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200)
@given(json_values)
def test_output_is_json_that_means_the_same_and_is_a_fixed_point(value: Any) -> None:
    out = canonical_json(value)
    # Every JSON number is a double to JCS, so compare numbers as doubles.
    assert json.loads(out, parse_int=float) == json.loads(json.dumps(value), parse_int=float)
    assert canonical_json(json.loads(out)) == out

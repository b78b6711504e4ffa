"""Property tests: no input bytes make a SIP-side parser raise anything but ``SipError``
(a ``ProtocolError``, answered with its status), and what we build round-trips."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from live.errors import ProtocolError
from live.ingest.sip.message import (
    SipError,
    SipStreamFramer,
    build_request,
    build_response,
    canonical_name,
    parse_message,
    serialise,
)
from live.ingest.sip.metadata import parse_metadata
from live.ingest.sip.multipart import parse_multipart
from live.ingest.sip.sdp import parse_sdp
from tests.unit.test_sdp import AUDIOCODES_SRTP, CISCO_CUBE, SIPP
from tests.unit.test_sip_message import INVITE, MESSAGES, MULTIPART_BODY, OPTIONS
from tests.unit.test_siprec_metadata import BROADWORKS, CISCO, ORACLE

FUZZ = settings(max_examples=300, deadline=None)
# Fragments that steer mutations toward the parsers' decisions rather than random noise.
TOKENS = [
    b"\r\n", b"\n", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\\", b"\x00",
    b"\xff", b"Content-Length: 99999999999", b"l: 5\r\n", b"SIP/2.0", b"SIP/9.9", b"CSeq: x",
    b"--uniqueBoundary", b"--uniqueBoundary--", b"m=audio ", b"a=crypto:1 ", b"inline:", b"|2^",
    b"<!DOCTYPE x>", b"&lol;", b"<participant id='", b"</", b"\xc3(", "é".encode(),
]  # fmt: skip


def only_sip_errors(parse: Callable[..., Any], *args: Any) -> None:
    try:
        parse(*args)
    except SipError as exc:
        assert isinstance(exc, ProtocolError) and 100 <= exc.status <= 699 and exc.message


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "duplicate", "truncate"]))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=8))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "duplicate":
            data[at:at] = data[max(0, at - 60) : at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


SDPS = [s.encode() for s in (CISCO_CUBE, AUDIOCODES_SRTP, SIPP)]
XMLS = [CISCO, ORACLE, BROADWORKS]


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(MESSAGES)))
def test_parse_message_raises_only_sip_error(data: bytes) -> None:
    only_sip_errors(parse_message, data)


@FUZZ
@given(mutated([b"\r\n\r\n" + INVITE + OPTIONS]), st.lists(st.integers(0, 4000), max_size=6))
def test_stream_framer_raises_only_sip_error(data: bytes, cuts: list[int]) -> None:
    framer = SipStreamFramer()
    edges = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    try:
        for start, end in itertools.pairwise(edges):
            framer.feed_results(data[start:end])
    except SipError as exc:
        assert isinstance(exc, ProtocolError)


@FUZZ
@given(st.binary(max_size=3000), st.integers(1, 100))
def test_stream_framer_on_noise(data: bytes, step: int) -> None:
    framer = SipStreamFramer()
    try:
        for start in range(0, len(data), step):
            framer.feed(data[start : start + step])
    except SipError as exc:
        assert isinstance(exc, ProtocolError)


@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(SDPS), st.text(max_size=300)))
def test_parse_sdp_raises_only_sip_error(data: bytes | str) -> None:
    only_sip_errors(parse_sdp, data)


@FUZZ
@given(
    st.one_of(st.just("multipart/mixed;boundary=uniqueBoundary"), st.text(max_size=60)),
    st.one_of(st.binary(max_size=400), mutated([MULTIPART_BODY])),
)
def test_parse_multipart_raises_only_sip_error(content_type: str, body: bytes) -> None:
    only_sip_errors(parse_multipart, content_type, body)


@FUZZ
@given(st.one_of(st.binary(max_size=400), mutated(XMLS), st.text(max_size=200)))
def test_parse_metadata_raises_only_sip_error(body: bytes | str) -> None:
    only_sip_errors(parse_metadata, body)


HEADER_NAME = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
HEADER_VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@FUZZ
@given(
    st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=10),
    st.binary(max_size=200),
    st.integers(100, 699),
)
def test_built_messages_round_trip(extra: list[tuple[str, str]], body: bytes, status: int) -> None:
    # Content-Length is ours to set; a random Max-Forwards value would be a real error.
    extra = [
        (n, v) for n, v in extra if canonical_name(n) not in ("Content-Length", "Max-Forwards")
    ]
    request = build_request(
        "INVITE",
        "sip:srs@192.0.2.1",
        [("Via", "SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK1"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>"),
         ("Call-ID", "c1"), ("CSeq", "1 INVITE"), *extra],
        body=body,
        content_type="application/octet-stream",
    )  # fmt: skip
    assert parse_message(serialise(request)) == request
    response = build_response(request, status, to_tag="t9", headers=extra, body=body)
    assert parse_message(serialise(response)) == response
    framer = SipStreamFramer()
    assert framer.feed(serialise(request) + b"\r\n\r\n" + serialise(response)) == [
        request,
        response,
    ]

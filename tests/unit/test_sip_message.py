"""SIP messages (RFC 3261 §7): parsing what real recording clients send, building responses,
serialising, and framing TCP/TLS streams. Pure: no sockets."""

from __future__ import annotations

import pytest

from live.errors import ProtocolError
from live.ingest.sip.message import (
    MAX_MESSAGE,
    Headers,
    SipError,
    SipRequest,
    SipResponse,
    SipStreamFramer,
    build_request,
    build_response,
    cseq,
    header_params,
    host_port,
    is_keepalive,
    parse_message,
    parse_via,
    serialise,
    tag_of,
    uri_of,
    user_part,
)
from live.ingest.sip.multipart import media_type, parse_multipart


def wire(
    start: str,
    headers: list[str],
    body: bytes = b"",
    *,
    eol: str = "\r\n",
    length: int | None = None,
) -> bytes:
    """A message as a peer would put it on the wire, Content-Length computed unless given."""
    length = len(body) if length is None else length
    lines = [start, *headers, f"Content-Length: {length}"]
    return (eol.join(lines) + eol + eol).encode() + body


SDP_OFFER = (
    "v=0\r\no=CiscoSystemsSIP-GW-UserAgent 1951 9728 IN IP4 10.0.0.10\r\ns=SIP Call\r\n"
    "c=IN IP4 10.0.0.20\r\nt=0 0\r\n"
    "m=audio 16384 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=ptime:20\r\na=sendonly\r\na=label:1\r\n"
    "m=audio 16386 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=ptime:20\r\na=sendonly\r\na=label:2\r\n"
)
METADATA = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    "<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode>"
    '<session session_id="s1"/><participant participant_id="p1"><nameID aor="sip:1001@pbx"/>'
    "</participant></recording>\r\n"
)
MULTIPART_BODY = (
    "--uniqueBoundary\r\nContent-Type: application/sdp\r\nContent-Disposition: session;handling=required\r\n\r\n"
    + SDP_OFFER
    + "--uniqueBoundary\r\nContent-Type: application/rs-metadata+xml\r\n"
    "Content-Disposition: recording-session\r\n\r\n" + METADATA + "--uniqueBoundary--\r\n"
).encode()

INVITE_HEADERS = [
    "Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK2C1B21A8;rport",
    "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKproxy1;received=10.0.0.1",
    'From: "Recorder, CUBE" <sip:10.0.0.10>;tag=8E2A3C-1B4',
    "To: <sip:srs@10.0.0.50>",
    "Date: Mon, 13 May 2024 11:11:27 GMT",
    "Call-ID: 4C4C8D2E-10D711EF-8012C3A4-B1A2C3D4@10.0.0.10",
    "Supported: 100rel,timer,resource-priority,replaces,sdp-anat",
    "Min-SE:  1800",
    "User-Agent: Cisco-SIPGateway/IOS-16.12.4",
    "Allow: INVITE, OPTIONS, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY, INFO",
    "CSeq: 101 INVITE",
    "Contact: <sip:10.0.0.10:5060;transport=udp>;+sip.src",
    "Record-Route: <sip:10.0.0.1;lr>",
    "Max-Forwards: 70",
    "Require: siprec",
    "Content-Type: multipart/mixed;boundary=uniqueBoundary",
    "Mime-Version: 1.0",
]
INVITE = wire("INVITE sip:srs@10.0.0.50:5060 SIP/2.0", INVITE_HEADERS, MULTIPART_BODY)

DIALOG = [
    "From: <sip:10.0.0.10>;tag=8E2A3C-1B4",
    "To: <sip:srs@10.0.0.50>;tag=srs-77",
    "Call-ID: 4C4C8D2E-10D711EF-8012C3A4-B1A2C3D4@10.0.0.10",
]
ACK = wire(
    "ACK sip:srs@10.0.0.50:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK1DF",
        *DIALOG,
        "Max-Forwards: 70",
        "CSeq: 101 ACK",
    ],
)
BYE = wire(
    "BYE sip:srs@10.0.0.50:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK20A5",
        *DIALOG,
        "CSeq: 102 BYE",
        "Reason: Q.850;cause=16",
    ],
)
CANCEL = wire(
    "CANCEL sip:srs@10.0.0.50:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK2C1B21A8",
        *DIALOG[:1],
        "To: <sip:srs@10.0.0.50>",
        DIALOG[2],
        "CSeq: 101 CANCEL",
    ],
)
OPTIONS = wire(
    "OPTIONS sip:10.0.0.50 SIP/2.0",
    [
        "Via: SIP/2.0/TLS sbc.example.com:5061;branch=z9hG4bKping",
        "From: <sip:ping@sbc.example.com>;tag=p1",
        "To: <sip:10.0.0.50>",
        "Call-ID: ping-1",
        "CSeq: 1 OPTIONS",
        "Accept: application/sdp",
    ],
)
OK_TO_BYE = wire(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/UDP 10.0.0.50:5060;branch=z9hG4bKsrs1;received=10.0.0.50",
        "From: <sip:srs@10.0.0.50>;tag=srs-77",
        "To: <sip:10.0.0.10>;tag=8E2A3C-1B4",
        "Call-ID: x@y",
        "CSeq: 2 BYE",
    ],
)
COMPACT = wire(
    "INVITE sip:srs@example.com SIP/2.0",
    ["v: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds7", "f: <sip:rec@example.net>;tag=76341", "t: <sip:srs@example.com>",
     "i: j2qu348ek2328ws", "CSeq: 1 INVITE", "m: <sip:rec@192.0.2.4>;+sip.src", "k: timer, 100rel", "c: application/sdp"],
    b"v=0\r\n",
)  # fmt: skip
MESSAGES = [INVITE, ACK, BYE, CANCEL, OPTIONS, OK_TO_BYE, COMPACT]


def test_siprec_invite_parses_down_to_sdp_and_metadata() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri) == ("INVITE", "sip:srs@10.0.0.50:5060")
    assert msg.headers.get("require") == "siprec"
    assert msg.headers.get_all("Supported") == [
        "100rel",
        "timer",
        "resource-priority",
        "replaces",
        "sdp-anat",
    ]
    assert msg.headers.get("Date") == "Mon, 13 May 2024 11:11:27 GMT"  # not a list header: no split
    assert "+sip.src" in header_params(msg.headers.get("Contact"))
    assert cseq(msg) == (101, "INVITE")
    assert tag_of(msg.headers.get("From")) == "8E2A3C-1B4" and tag_of(msg.headers.get("To")) == ""
    assert msg.body == MULTIPART_BODY
    parts = parse_multipart(msg.headers.get("Content-Type"), msg.body)
    assert [(p.media_type, p.disposition) for p in parts] == [
        ("application/sdp", "session"),
        ("application/rs-metadata+xml", "recording-session"),
    ]
    assert parts[0].body.decode() == SDP_OFFER.removesuffix(
        "\r\n"
    )  # CRLF before -- is the delimiter's
    assert parts[1].headers["content-disposition"] == "recording-session"


@pytest.mark.parametrize(
    "raw", MESSAGES, ids=["invite", "ack", "bye", "cancel", "options", "200", "compact"]
)
def test_real_messages_parse_and_round_trip(raw: bytes) -> None:
    msg = parse_message(raw)
    assert parse_message(serialise(msg)) == msg
    if raw not in (INVITE, COMPACT):  # those have compact forms, odd spacing, "Mime-Version"
        assert serialise(msg) == raw  # canonical already: CRLF, full names, length last


def test_each_method_and_response() -> None:
    requests = [parse_message(m) for m in (ACK, BYE, CANCEL, OPTIONS)]
    assert [r.method for r in requests if isinstance(r, SipRequest)] == [
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
    ]
    ok = parse_message(OK_TO_BYE)
    assert isinstance(ok, SipResponse) and (ok.status, ok.reason, cseq(ok)) == (
        200,
        "OK",
        (2, "BYE"),
    )
    ringing = parse_message(wire("SIP/2.0 180", OK_TO_BYE.decode().split("\r\n")[1:6]))
    assert isinstance(ringing, SipResponse) and (ringing.status, ringing.reason) == (180, "")


def test_compact_forms_expand() -> None:
    msg = parse_message(COMPACT)
    assert msg.headers.get("Call-ID") == msg.headers.get("i") == "j2qu348ek2328ws"
    assert msg.headers.get("Content-Type") == "application/sdp"
    assert msg.headers.get_all("Supported") == ["timer", "100rel"]
    assert [name for name, _ in msg.headers.items()][:4] == ["Via", "From", "To", "Call-ID"]
    assert b"\r\nCall-ID: j2qu348ek2328ws\r\n" in serialise(msg)


def test_folded_headers_and_bare_lf() -> None:
    raw = wire(
        "OPTIONS sip:srs@h SIP/2.0",
        OPTIONS.decode().split("\r\n")[1:6]
        + ["Subject: long", " \tsubject  ", "Allow: INVITE,", "  BYE"],
        eol="\n",
    )
    msg = parse_message(raw)
    assert msg.headers.get("Subject") == "long subject"
    assert msg.headers.get_all("Allow") == ["INVITE", "BYE"]


def test_multiple_via_in_order_and_list_splitting_respects_quotes_and_brackets() -> None:
    msg = parse_message(wire("BYE sip:a@h SIP/2.0", [
        "Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example:5070;branch=z9hG4bK2",
        "v: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK3",
        *DIALOG, "CSeq: 5 BYE",
        'P-Asserted-Identity: "Doe, John" <sip:j@h;x=a,b>, <tel:+15551234>',
    ]))  # fmt: skip
    vias = [parse_via(v) for v in msg.headers.get_all("Via")]
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "a.example", None, "z9hG4bK1"), ("TCP", "b.example", 5070, "z9hG4bK2"), ("TLS", "2001:db8::1", 5061, "z9hG4bK3"),
    ]  # fmt: skip
    assert msg.headers.get("Via") == "SIP/2.0/UDP a.example;branch=z9hG4bK1"
    assert msg.headers.get_all("P-Asserted-Identity") == [
        '"Doe, John" <sip:j@h;x=a,b>',
        "<tel:+15551234>",
    ]


def test_value_helpers() -> None:
    assert uri_of('"A;B <x>" <sip:alice@h;transport=tcp>;tag=1') == "sip:alice@h;transport=tcp"
    assert uri_of("sip:alice@h;tag=1") == "sip:alice@h"
    assert header_params('<sip:a@h;lr>;tag=9;q="0.5;x";flag') == {
        "tag": "9",
        "q": "0.5;x",
        "flag": "",
    }
    assert header_params('multipart/mixed; boundary="a b"') == {"boundary": "a b"}
    assert user_part("<sip:%2B15551234567;npdi@gw.example;user=phone>") == "+15551234567"
    assert user_part("sip:agent7:secret@pbx") == "agent7"
    assert user_part("tel:+1-555-0100;ext=7") == "+1-555-0100"
    assert user_part("sip:pbx.example") == "" and user_part("mailto:x@y") == ""
    assert host_port("sips:a@[2001:db8::2]:5061;transport=tls") == ("2001:db8::2", 5061)
    assert host_port("<sip:10.0.0.1>") == ("10.0.0.1", None)
    for bad in ("tel:+1555", "sip:a@h:99999", "sip:", "sip:a@[::1"):
        with pytest.raises(SipError):
            host_port(bad)
    with pytest.raises(SipError):
        uri_of("Bob <sip:bob@h")


def test_build_response_copies_transaction_headers() -> None:
    invite = parse_message(INVITE)
    assert isinstance(invite, SipRequest)
    response = build_response(
        invite,
        200,
        "OK",
        to_tag="srs-77",
        headers=[("Contact", "<sip:srs@10.0.0.50>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    h = response.headers
    assert h.lines("Via") == invite.headers.lines("Via")
    assert (h.get("From"), h.get("Call-ID"), h.get("CSeq")) == (
        invite.headers.get("From"),
        invite.headers.get("Call-ID"),
        "101 INVITE",
    )
    assert h.get("To") == "<sip:srs@10.0.0.50>;tag=srs-77"
    assert h.get("Record-Route") == "<sip:10.0.0.1;lr>"
    assert (h.get("Content-Type"), h.get("Content-Length")) == ("application/sdp", "5")
    assert parse_message(serialise(response)) == response
    busy = build_response(invite, 486, to_tag="x")
    assert (busy.reason, busy.headers.get("Content-Length"), "Record-Route" in busy.headers) == (
        "Busy Here",
        "0",
        False,
    )
    bye = parse_message(BYE)
    assert isinstance(bye, SipRequest)
    assert (
        build_response(bye, 200, to_tag="other").headers.get("To")
        == "<sip:srs@10.0.0.50>;tag=srs-77"
    )


def test_build_request_round_trips_and_refuses_injection() -> None:
    dialog = [(name, value) for name, _, value in (line.partition(": ") for line in DIALOG)]
    request = build_request(
        "BYE",
        "sip:10.0.0.10:5060",
        [
            ("Via", "SIP/2.0/UDP 10.0.0.50;branch=z9hG4bKx;rport"),
            *dialog,
            ("CSeq", "1 BYE"),
            ("Max-Forwards", "70"),
        ],
    )
    assert parse_message(serialise(request)) == request
    with pytest.raises(ValueError):
        Headers.build([("Subject", "x\r\nVia: evil")])
    with pytest.raises(ValueError):
        build_response(request, 200, "OK\r\nX: y")


def test_keepalive_datagram() -> None:
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n") and not is_keepalive(OPTIONS)


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (INVITE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, "version"),
        (INVITE.replace(b"SIP/2.0\r\n", b"HTTP/1.1\r\n", 1), 400, "version"),
        (b"INVITE sip:a@h SIP/2.0 extra\r\n\r\n", 400, "request line"),
        (b"INVITE nouri SIP/2.0\r\n\r\n", 400, "Request-URI"),
        (b"SIP/2.0 99 Weird\r\n\r\n", 400, "status line"),
        (BYE.replace(b"Call-ID: ", b"X-Call-ID: "), 400, "Call-ID"),
        (BYE.replace(b"102 BYE", b"102 INVITE"), 400, "does not match"),
        (BYE.replace(b"102 BYE", b"BYE"), 400, "CSeq"),
        (BYE.replace(b"Content-Length: 0", b"Content-Length: 10"), 400, "shorter"),
        (BYE.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 3"), 400, "conflicting"),
        (BYE.replace(b"Content-Length: 0", b"Content-Length: -1"), 400, "Content-Length"),
        (BYE.replace(b"Reason:", b"Reason\x00:"), 400, "header"),
        (BYE.replace(b"\r\n\r\n", b"\r\n"), 400, "empty line"),
        (BYE.replace(b"Reason: ", b"Reason: " + b"x" * 9000), 400, "longer"),
        (
            wire(
                "BYE sip:a@h SIP/2.0",
                [*BYE.decode().split("\r\n")[1:7], *(f"X-{i}: {i}" for i in range(200))],
            ),
            400,
            "200 header",
        ),
        (BYE + b" " * MAX_MESSAGE, 413, "exceeds"),
        (b" folded: first\r\n\r\n", 400, ""),
        (b"\r\n\r\n", 400, "empty"),
    ],
)
def test_malformed_messages_raise_sip_error_with_status(
    raw: bytes, status: int, words: str
) -> None:
    with pytest.raises(SipError) as caught:
        parse_message(raw)
    assert caught.value.status == status and words in caught.value.message
    assert isinstance(caught.value, ProtocolError)


def test_udp_body_longer_than_content_length_is_cut() -> None:
    msg = parse_message(BYE + b"trailing junk")
    assert msg.body == b""
    no_length = BYE.replace(b"Content-Length: 0\r\n", b"")
    assert parse_message(no_length + b"hello").body == b"hello"  # UDP: rest of the datagram
    assert parse_message(b"\r\n\r\n" + BYE) == parse_message(BYE)  # §7.5 leading CRLFs


# --- stream framing (TCP/TLS) ---------------------------------------------------------------

STREAM = b"\r\n\r\n" + INVITE + b"\r\n\r\n" + BYE + OK_TO_BYE


def test_framer_every_split_position() -> None:
    expected = [parse_message(m) for m in (INVITE, BYE, OK_TO_BYE)]
    for cut in range(len(STREAM) + 1):
        framer = SipStreamFramer()
        got = framer.feed(STREAM[:cut]) + framer.feed(STREAM[cut:])
        assert got == expected, cut
        assert framer.keepalives == 2 and framer.buffered == 0


def test_framer_byte_by_byte_and_whole_chunk() -> None:
    framer = SipStreamFramer()
    got = [m for byte in STREAM for m in framer.feed(bytes([byte]))]
    assert len(got) == 3 and framer.keepalives == 2
    assert SipStreamFramer().feed(INVITE + BYE) == [parse_message(INVITE), parse_message(BYE)]


def test_framer_requires_content_length() -> None:
    framer = SipStreamFramer()
    with pytest.raises(SipError, match="Content-Length is required"):
        framer.feed(BYE.replace(b"Content-Length: 0\r\n", b""))
    with pytest.raises(SipError):  # stays broken: the transport closes the connection
        framer.feed(OPTIONS)


def test_framer_oversize_buffer() -> None:
    framer = SipStreamFramer()
    with pytest.raises(SipError) as caught:
        for _ in range(70):
            framer.feed(b"INVITE sip:a@h SIP/2.0\r\nX-Pad: " + b"x" * 1000)
    assert caught.value.status == 413
    with pytest.raises(SipError) as caught:
        SipStreamFramer().feed(BYE.replace(b"Content-Length: 0", b"Content-Length: 65500"))
    assert caught.value.status == 413


def test_framer_reports_bad_content_but_keeps_framing() -> None:
    framer = SipStreamFramer()
    bad = BYE.replace(b"Call-ID: ", b"X-Call-ID: ")
    results = framer.feed_results(bad + OPTIONS)
    assert isinstance(results[0], SipError) and "Call-ID" in results[0].message
    assert results[1] == parse_message(OPTIONS)
    assert framer.messages == 2


# --- multipart bodies (RFC 2046 §5.1) -------------------------------------------------------


def test_multipart_quoted_boundary_preamble_epilogue_and_bare_lf() -> None:
    body = (
        b"This is a preamble.\n--b=1 x\nContent-Type: Application/SDP\n\nv=0\n"
        b"--b=1 x  \ncontent-type: application/rs-metadata+xml\nContent-Disposition: Recording-Session ;handling=required\n\n<recording/>\n"
        b"--b=1 x--\nepilogue --b=1 x\n"
    )
    parts = parse_multipart('multipart/mixed; boundary="b=1 x"', body)
    assert [(p.media_type, p.disposition, p.body) for p in parts] == [
        ("application/sdp", "", b"v=0"),
        ("application/rs-metadata+xml", "recording-session", b"<recording/>"),
    ]
    assert media_type("Multipart/Mixed ; boundary=x") == "multipart/mixed"


def test_multipart_without_close_delimiter_and_part_without_headers() -> None:
    parts = parse_multipart(
        "multipart/mixed;boundary=zz", b"--zz\r\n\r\nplain\r\n--zz\r\nContent-Type: a/b\r\n\r\nlast"
    )
    assert [(p.content_type, p.body) for p in parts] == [("text/plain", b"plain"), ("a/b", b"last")]


@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("application/sdp", b"v=0", "no multipart"),
        ("multipart/mixed", b"--x\r\n\r\n", "no multipart"),
        ("multipart/mixed;boundary=" + "x" * 71, b"", "no multipart"),
        ("multipart/mixed;boundary=abc", b"v=0\r\n", "no multipart"),
        ("multipart/mixed;boundary=abc", b"--abc\r\n\r\nx\r\n" * 17, "more than 16"),
        ("multipart/mixed;boundary=abc", b"--abc\r\nno colon here\r\n\r\nx", "malformed header"),
    ],
)
def test_multipart_errors(content_type: str, body: bytes, words: str) -> None:
    with pytest.raises(SipError, match=words) as caught:
        parse_multipart(content_type, body)
    assert caught.value.status == 400

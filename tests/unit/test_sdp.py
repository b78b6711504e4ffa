"""SDP offers as recording clients send them, and the answers we build (RFC 8866, 3264, 4568)."""

from __future__ import annotations

import base64

import pytest

from live.ingest.sip.errors import SipError
from live.ingest.sip.sdp import (
    AnswerStream,
    Crypto,
    SdpError,
    build_answer,
    choose_codec,
    parse_crypto,
    parse_sdp,
)

KEY_80 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"  # RFC 4568 §9 examples: 30 bytes each
KEY_32 = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"

CISCO_CUBE = """v=0
o=CiscoSystemsSIP-GW-UserAgent 1951 9728 IN IP4 10.0.0.10
s=SIP Call
c=IN IP4 10.0.0.20
t=0 0
m=audio 16384 RTP/AVP 0 101 19
c=IN IP4 10.0.0.21
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:19 CN/8000
a=ptime:20
a=sendonly
a=label:1
m=audio 16386 RTP/AVP 0 101 19
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:19 CN/8000
a=ptime:20
a=sendonly
a=label:2
""".replace("\n", "\r\n")

ORACLE_SBC = """v=0
o=- 1715598687 1715598687 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 20000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=label:1234567890123
a=sendonly
a=ptime:20
m=audio 20002 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=label:1234567890124
a=sendonly
a=ptime:20
""".replace("\n", "\r\n")

AUDIOCODES_SRTP = f"""v=0
o=AudiocodesGW 1162502036 1162501945 IN IP4 198.51.100.7
s=Phone-Call
c=IN IP4 198.51.100.7
t=0 0
a=sendonly
m=audio 6010 RTP/SAVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}|2^20|1:4
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^31
a=label:0
m=audio 6020 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}
a=label:1
"""

SIPP = """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=label:1
a=sendonly
m=audio 6002 RTP/AVP 8
a=label:2
a=sendonly
"""


def test_cisco_cube_two_labelled_sendonly_streams() -> None:
    offer = parse_sdp(CISCO_CUBE.encode())
    assert (
        offer.origin.startswith("CiscoSystemsSIP-GW-UserAgent") and offer.session_name == "SIP Call"
    )
    first, second = offer.media
    assert (first.kind, first.port, first.proto, first.formats) == (
        "audio",
        16384,
        "RTP/AVP",
        ("0", "101", "19"),
    )
    assert first.rtpmap == {0: "PCMU/8000", 101: "telephone-event/8000", 19: "CN/8000"}
    assert (first.label, second.label, first.direction, first.ptime) == ("1", "2", "sendonly", 20)
    assert (first.connection, second.connection) == ("10.0.0.21", "10.0.0.20")  # media c= wins
    assert ("fmtp", "101 0-16") in first.attributes
    assert choose_codec(first) == (0, "PCMU") and first.crypto == ()


def test_oracle_large_labels_pcma() -> None:
    offer = parse_sdp(ORACLE_SBC)
    assert [m.label for m in offer.media] == ["1234567890123", "1234567890124"]
    assert [choose_codec(m) for m in offer.media] == [(8, "PCMA"), (8, "PCMA")]


def test_audiocodes_srtp_crypto_and_session_level_direction() -> None:
    offer = parse_sdp(AUDIOCODES_SRTP)
    first, second = offer.media
    assert first.secure and first.direction == "sendonly" == second.direction  # inherited
    assert [(c.tag, c.suite) for c in first.crypto] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert (
        first.crypto[0].key_salt == base64.b64decode(KEY_80) and len(first.crypto[0].key_salt) == 30
    )
    assert second.crypto[0].key_params == f"inline:{KEY_32}"
    assert choose_codec(first) == (8, "PCMA")  # offer order decides
    assert first.ptime is None


def test_sipp_bare_lf_and_static_payload_without_rtpmap() -> None:
    offer = parse_sdp(SIPP)
    assert offer.media[1].rtpmap == {8: "PCMA/8000"}
    assert [choose_codec(m) for m in offer.media] == [(0, "PCMU"), (8, "PCMA")]


def test_answer_is_built_and_reparsed() -> None:
    offer = parse_sdp(CISCO_CUBE)
    answer = build_answer(
        offer,
        [
            AnswerStream(30000, 0, "PCMU", "recvonly", "1"),
            AnswerStream(30002, 0, "PCMU", "recvonly", ""),
        ],
        address="10.0.0.50",
        session_id=42,
        session_version=1,
    )
    assert answer.startswith(
        "v=0\r\no=- 42 1 IN IP4 10.0.0.50\r\ns=-\r\nc=IN IP4 10.0.0.50\r\nt=0 0\r\n"
    )
    assert "\n" not in answer.replace("\r\n", "")
    parsed = parse_sdp(answer)
    assert [(m.port, m.proto, m.formats, m.label, m.direction, m.ptime) for m in parsed.media] == [
        (30000, "RTP/AVP", ("0",), "1", "recvonly", 20),
        (30002, "RTP/AVP", ("0",), "2", "recvonly", 20),  # label kept from the offer
    ]
    assert parsed.media[0].rtpmap == {0: "PCMU/8000"} and parsed.connection == "10.0.0.50"


def test_answer_with_crypto_and_a_rejected_stream() -> None:
    offer = parse_sdp(AUDIOCODES_SRTP)
    ours = Crypto.from_key(1, "AES_CM_128_HMAC_SHA1_80", bytes(range(30)))
    answer = parse_sdp(
        build_answer(offer, [AnswerStream(40000, 8, "PCMA", "recvonly", "0", ours), AnswerStream.rejected()],
                     address="2001:db8::5", session_id=7, session_version=2)
    )  # fmt: skip
    accepted, rejected = answer.media
    assert (accepted.proto, accepted.formats, accepted.crypto) == ("RTP/SAVP", ("8",), (ours,))
    assert accepted.crypto[0].key_salt == bytes(range(30))
    assert (rejected.port, rejected.proto, rejected.formats) == (0, "RTP/SAVP", ("0",))
    assert answer.connection == "2001:db8::5"


def test_answer_parses_in_aiortc() -> None:
    import aiortc.sdp as sdp
    offer = parse_sdp(SIPP)
    text = build_answer(
        offer,
        [AnswerStream(30000, 0), AnswerStream(30002, 8, "PCMA")],
        address="127.0.0.1",
        session_id=1,
        session_version=1,
    )
    parsed = sdp.SessionDescription.parse(text)
    assert [(m.kind, m.port, m.direction) for m in parsed.media] == [
        ("audio", 30000, "recvonly"),
        ("audio", 30002, "recvonly"),
    ]
    assert [c.mimeType for m in parsed.media for c in m.rtp.codecs] == ["audio/PCMU", "audio/PCMA"]


def test_choose_codec_by_rtpmap_name() -> None:
    dynamic = parse_sdp(
        "v=0\r\nm=audio 1 RTP/AVP 18 97 96\r\na=rtpmap:97 PCMA/16000\r\na=rtpmap:96 pcmu/8000/1\r\n"
    )
    assert choose_codec(dynamic.media[0]) == (96, "PCMU")
    assert choose_codec(parse_sdp("v=0\r\nm=audio 1 RTP/AVP 18\r\n").media[0]) is None


def test_parse_crypto() -> None:
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^20|1:32 KDR=1")
    assert (crypto.tag, crypto.session_params, crypto.value) == (
        1,
        "KDR=1",
        f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_32}|2^20|1:32 KDR=1",
    )
    for bad in (
        "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 16).decode(),  # too short
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        "1 AES_CM_128_HMAC_SHA1_80 uri:https://keys.example",
        "x AES_CM_128_HMAC_SHA1_80 inline:" + KEY_80,
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_80}|2^20|1:4|extra",
        "1 AES_CM_128_HMAC_SHA1_80",
    ):
        with pytest.raises(SdpError):
            parse_crypto(bad)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("o=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n", 400),  # no v=
        ("v=0\r\nm=audio abc RTP/AVP 0\r\n", 400),
        ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", 400),
        ("v=0\r\nm=audio 4000 RTP/AVP\r\n", 400),
        ("v=0\r\nc=IN IP4\r\n", 400),
        ("v=0\r\n" + "m=audio 1 RTP/AVP 0\r\n" * 33, 488),
        ("v=0\r\nm=audio 1 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n", 488),
        ("v=0\r\n" + "a=x\r\n" * 20000, 413),
    ],
)
def test_bad_sdp(text: str, status: int) -> None:
    with pytest.raises(SipError) as caught:
        parse_sdp(text)
    assert caught.value.status == status


def test_lenient_about_unknown_lines() -> None:
    offer = parse_sdp("v=0\nnonsense\nx=unknown\nb=AS:64\nm=audio 0 RTP/AVP 0\na=inactive\n\n")
    assert (offer.media[0].port, offer.media[0].direction) == (0, "inactive")


def test_answer_refuses_mismatch_and_injection() -> None:
    offer = parse_sdp(SIPP)
    with pytest.raises(ValueError):
        build_answer(offer, [AnswerStream(1, 0)], address="h", session_id=1, session_version=1)
    with pytest.raises(ValueError):
        build_answer(
            offer,
            [AnswerStream(1, 0, label="x\r\nm=video 1 RTP/AVP 0"), AnswerStream.rejected()],
            address="h",
            session_id=1,
            session_version=1,
        )

"""SDES-keyed SRTP: round trips per suite, wrong keys, tampering, replay, a=crypto parsing."""

from __future__ import annotations

import base64
import os

import pytest

from live.errors import ProtocolError
from live.ingest.rtp import parse_rtp
from live.ingest.sip.sdp import parse_crypto
from live.ingest.srtp import SUITES, SrtpError, SrtpReceiver, SrtpSender, receiver_for
from tests.support.rtp import build_rtp

PACKETS = [build_rtp(0, 1000 + n, 160 * n, 0xABCD, bytes([n]) * 160) for n in range(5)]


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_round_trip(suite: str) -> None:
    key = os.urandom(SUITES[suite][1])
    sender, receiver = SrtpSender(suite, key), SrtpReceiver(suite, key)
    protected = [sender.protect(p) for p in PACKETS]
    assert all(c[12:] != p[12:] for c, p in zip(protected, PACKETS))  # the payload is encrypted
    assert [receiver.unprotect(c) for c in protected] == PACKETS
    assert parse_rtp(receiver.unprotect(sender.protect(build_rtp(0, 5, 9, 0x77, b"new ssrc")))).ssrc == 0x77


@pytest.mark.parametrize("suite,tag", [("AES_CM_128_HMAC_SHA1_80", 10), ("AES_CM_128_HMAC_SHA1_32", 4)])
def test_auth_tag_length_follows_the_suite(suite: str, tag: int) -> None:
    protected = SrtpSender(suite, bytes(30)).protect(PACKETS[0])
    assert len(protected) == len(PACKETS[0]) + tag


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_wrong_key_is_refused(suite: str) -> None:
    protected = SrtpSender(suite, os.urandom(30)).protect(PACKETS[0])
    with pytest.raises(SrtpError):
        SrtpReceiver(suite, os.urandom(30)).unprotect(protected)


@pytest.mark.parametrize("where", [3, 12, 100, -1])
def test_tampered_packet_is_refused(where: int) -> None:
    key = os.urandom(30)
    protected = bytearray(SrtpSender("AES_CM_128_HMAC_SHA1_80", key).protect(PACKETS[0]))
    protected[where] ^= 0x01
    with pytest.raises(SrtpError):
        SrtpReceiver("AES_CM_128_HMAC_SHA1_80", key).unprotect(bytes(protected))


def test_replay_and_garbage_are_refused() -> None:
    key = os.urandom(30)
    protected = SrtpSender("AES_CM_128_HMAC_SHA1_80", key).protect(PACKETS[0])
    receiver = SrtpReceiver("AES_CM_128_HMAC_SHA1_80", key)
    receiver.unprotect(protected)
    for data in (protected, b"", b"\x80", bytes(3000)):
        with pytest.raises(SrtpError):
            receiver.unprotect(data)


@pytest.mark.parametrize("suite,key", [
    ("F8_128_HMAC_SHA1_80", bytes(30)),
    ("NULL", bytes(30)),
    ("AES_CM_128_HMAC_SHA1_80", bytes(29)),
    ("AES_CM_128_HMAC_SHA1_80", bytes(31)),
])
def test_unusable_suite_or_key_fails_at_construction(suite: str, key: bytes) -> None:
    with pytest.raises(SrtpError):
        SrtpReceiver(suite, key)


def test_an_offered_key_gives_a_working_receiver() -> None:
    key = os.urandom(30)
    inline = base64.b64encode(key).decode()
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^20")
    sender = SrtpSender(crypto.suite, key)
    assert receiver_for(crypto).unprotect(sender.protect(PACKETS[0])) == PACKETS[0]


@pytest.mark.parametrize("value", [
    "AES_CM_128_HMAC_SHA1_80 inline:x",
    "1 AES_CM_128_HMAC_SHA1_80",
    "1 F8_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(30)).decode(),
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(30)).decode() + "|2^20|1:4",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(30)).decode() + " UNENCRYPTED_SRTP",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(30)).decode() + " KDR=24",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(20)).decode(),
    "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
    "1 AES_CM_128_HMAC_SHA1_80 key:" + base64.b64encode(bytes(30)).decode(),
])
def test_keys_that_cannot_be_decrypted_are_refused(value: str) -> None:
    with pytest.raises(ProtocolError):  # SdpError where the syntax is wrong, else SrtpError
        receiver_for(parse_crypto(value))



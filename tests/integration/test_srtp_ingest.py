"""SDES-SRTP from a SIPREC client (RFC 4568 keys in the SDP, RFC 3711 packets).

A recording client offers ``RTP/SAVP`` with an ``a=crypto`` line per stream (one
AES_CM_128_HMAC_SHA1_80, one _32), then protects each leg with pylibsrtp under the key it
offered: a listener hears both legs. A second client keys its offer with one key and
protects with another: its packets fail authentication, are counted in /metrics
(``live_rtp_undecryptable_total``) and never heard, and the first call goes on regardless.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from tests.interop.test_siprec_sipp import metric, metrics, no_calls
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.pcap import PCMU, rtp_stream
from tests.support.server import RunningServer, running_server
from tests.support.sipp.bodies import VENDORS, live_headers, offer_body, sdp_offer
from tests.support.sipp.uac import Dialog, LegSender, SiprecClient, send_legs, srtp_protector
from tests.support.wait import wait_for

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
SECONDS = 8.0
VENDOR = VENDORS["cisco"]  # the agent ("agent", a known user) sends on the first stream


def crypto_line(suite: str, key_salt: bytes) -> str:
    return f"1 {suite} inline:{base64.b64encode(key_salt).decode()}"


async def srtp_call(client: SiprecClient, call_id: str, keys: tuple[bytes, bytes]) -> Dialog:
    dialog = client.new_dialog()
    sdp = sdp_offer(
        "127.0.0.1", ("49170", "49172"), VENDOR.labels, proto="RTP/SAVP",
        crypto=[crypto_line(suite, key) for suite, key in zip(SUITES, keys)],
    )  # fmt: skip
    response = await client.invite(
        dialog,
        body=offer_body(sdp, VENDOR.metadata(VENDOR, call_id)),
        content_type="multipart/mixed;boundary=OSS-unique-boundary-42",
        headers=["Require: siprec", *live_headers(call_id)],
    )
    assert response.status == 200, (response.status, response.reason)
    streams = response.streams()
    assert [s.proto for s in streams] == ["RTP/SAVP", "RTP/SAVP"], response.body
    assert [s.direction for s in streams] == ["recvonly", "recvonly"], response.body
    # RFC 4568 §6.1: the answer picks one offered crypto per stream, same tag and suite.
    assert [s.crypto[0].split()[:2] for s in streams] == [["1", suite] for suite in SUITES], response.body
    assert streams[1].port == streams[0].port + 2, response.body
    return dialog


def leg_senders(dialog: Dialog, keys: tuple[bytes, bytes], ssrc_base: int) -> list[LegSender]:
    assert dialog.answer is not None
    ports = [s.port for s in dialog.answer.streams()]
    agent = rtp_stream(tone(440, SECONDS, 0.6), PCMU, ssrc=ssrc_base + 1, seq=100, timestamp=1000)
    caller = rtp_stream(tone(660, SECONDS, 0.06), PCMU, ssrc=ssrc_base + 2, seq=5000, timestamp=9000)
    return [
        LegSender(ports[0], agent, srtp_protector(SUITES[0], keys[0])),
        LegSender(ports[1], caller, srtp_protector(SUITES[1], keys[1])),
    ]


async def connected_listener(server: RunningServer, call_id: str) -> Listener:
    listener = Listener(server.base_url, server.tokens["sup"])
    await listener.listen(call_id)
    await wait_for(lambda: listener.pc.connectionState == "connected", 30, f"a listener to connect to {call_id}")
    return listener


async def undecryptable(server: RunningServer) -> float:
    return metric(await metrics(server), "live_rtp_undecryptable_total")


async def test_srtp_legs_are_heard_and_a_wrong_key_is_counted_never_heard(tmp_path: Path) -> None:
    good_keys = (os.urandom(30), os.urandom(30))
    offered_keys = (os.urandom(30), os.urandom(30))  # what the second client says it uses...
    actual_keys = (os.urandom(30), os.urandom(30))  # ...and what it really protects with
    settings = {"siprec_listen": "127.0.0.1:0", "siprec_allow": "127.0.0.1"}
    async with running_server(tmp_path / "data", **settings) as server:
        sip = ("127.0.0.1", server.state.siprec.ports["udp"])  # type: ignore[union-attr]
        async with SiprecClient(sip, user="cube") as good_client, SiprecClient(sip, user="rogue") as bad_client:
            good = await srtp_call(good_client, "srtp-good", good_keys)
            bad = await srtp_call(bad_client, "srtp-bad", offered_keys)
            good_listener = await connected_listener(server, "srtp-good")
            bad_listener = await connected_listener(server, "srtp-bad")
            bad_legs = leg_senders(bad, actual_keys, 0x0BAD0000)
            sending = asyncio.gather(
                send_legs(leg_senders(good, good_keys, 0x600D0000)), send_legs(bad_legs)
            )
            try:
                await good_listener.wait_frames(100, timeout=SECONDS + 10)
                agent, caller = good_listener.stats["agent"].level(), good_listener.stats["caller"].level()
                assert agent > 0.3, (agent, caller)
                assert 0.02 < caller < agent / 4, (agent, caller)

                # Every one of the bad sender's packets so far failed authentication...
                await wait_for(
                    lambda: _at_least(server, 100), 10, "undecryptable SRTP packets to be counted"
                )
                # ...and not one was heard, while the good call played on.
                frames_before = good_listener.stats["agent"].frames
                await wait_for(
                    lambda: good_listener.stats["agent"].frames >= frames_before + 50, 10,
                    "the good call to keep playing beside the bad one",
                )
                for leg in ("agent", "caller"):
                    assert bad_listener.stats[leg].level(last=10_000) == 0.0, bad_listener.stats[leg].levels[-5:]
                assert await undecryptable(server) <= sum(leg.sent for leg in bad_legs)
                text = await metrics(server)
                assert metric(text, 'live_rtp_received_total{source="siprec",leg="agent"}') >= 100, text
            finally:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                await good_listener.close()
                await bad_listener.close()

            assert (await good_client.options()).status == 200
            assert (await good_client.bye(good)).status == 200
            assert (await bad_client.bye(bad)).status == 200
        await wait_for(lambda: no_calls(server), 30, "both calls to end with their BYE")


async def _at_least(server: RunningServer, count: int) -> bool:
    return await undecryptable(server) >= count

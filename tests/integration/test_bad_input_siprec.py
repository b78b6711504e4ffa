"""Hostile and broken SIPREC input, while a supervisor listens to a call that keeps flowing.

One recording session plays both legs for the whole test, with some of its own packets
reordered and duplicated (as a network does). Meanwhile the SIP port gets garbage, a
request cut off in its headers, one cut off in its body, an INVITE whose body is no
multipart, one with no audio, metadata with an external entity (XXE) and with nested
entities ("billion laughs"), an over-long header over UDP and an endless header over TCP;
the media ports get datagrams that are not RTP. After each blow the listened call must still
be delivering audio, no other call may exist, and at the end the server answers OPTIONS.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.interop.test_siprec_sipp import metric, metrics, roster
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.pcap import PCMA, PCMU, rtp_packet, rtp_stream
from tests.support.server import RunningServer, running_server
from tests.support.sipp.bodies import BOUNDARY, VENDORS, live_headers, offer_body, sdp_offer
from tests.support.sipp.uac import Dialog, LegSender, SiprecClient, send_legs
from tests.support.wait import wait_for

VENDOR = VENDORS["cisco"]
MULTIPART = f"multipart/mixed;boundary={BOUNDARY}"
FLOW_SECONDS = 90  # an upper bound: the sender is cancelled when the test is done
AGENT_SSRC = 0x0A6E0001

XXE = """<?xml version="1.0"?>
<!DOCTYPE recording [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<datamode>complete</datamode>
<participant participant_id="p1"><nameID aor="sip:&xxe;@example.com"/></participant>
</recording>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE recording [
<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>&lol9;</datamode></recording>
"""


def agent_packets() -> list[bytes]:
    """The agent's leg, with what networks do to RTP: pairs swapped (reordered within
    the receiver's window) and packets sent twice."""
    packets = rtp_stream(tone(440, FLOW_SECONDS, 0.6), PCMU, ssrc=AGENT_SSRC, seq=65535 - 200, timestamp=2**32 - 8000)
    for k in range(150, 250, 10):  # also across the sequence number's wrap at 65535
        packets[k], packets[k + 1] = packets[k + 1], packets[k]
    for k in range(400, 300, -10):
        packets.insert(k + 2, packets[k])
    return packets


def offer(call_id: str, sdp: str | None = None, metadata: str | None = None) -> str:
    return offer_body(
        sdp or sdp_offer("127.0.0.1", ("49170", "49172"), VENDOR.labels),
        VENDOR.metadata(VENDOR, call_id) if metadata is None else metadata,
    )


class Flow:
    """The listened call: proves, whenever asked, that audio is still arriving."""

    def __init__(self, server: RunningServer, listener: Listener, call_id: str) -> None:
        self.server = server
        self.listener = listener
        self.call_id = call_id

    async def still_flowing(self, after: str) -> None:
        stats = self.listener.stats
        before = {leg: stats[leg].frames for leg in stats}
        await wait_for(
            lambda: all(stats[leg].frames >= before[leg] + 25 for leg in stats), 10,
            f"the listened call to keep playing after {after}",
        )
        calls = await roster(self.server, self.server.tokens["sup"])
        assert [c["call_id"] for c in calls] == [self.call_id], f"after {after}: {calls}"


async def refused(client: SiprecClient, what: str, body: str, content_type: str = MULTIPART) -> int:
    dialog = client.new_dialog()
    response = await client.invite(dialog, body=body, content_type=content_type, headers=["Require: siprec", *live_headers(what)])
    assert response.status >= 400, (what, response.status, response.reason)
    return response.status


async def malformed(server: RunningServer) -> float:
    return metric(await metrics(server), 'live_sip_messages_total{result="malformed"}')


async def test_bad_input_never_disturbs_a_listened_call(tmp_path: Path) -> None:
    settings = {"siprec_listen": "127.0.0.1:0", "siprec_allow": "127.0.0.1"}
    async with running_server(tmp_path / "data", **settings) as server:
        ports = server.state.siprec.ports  # type: ignore[union-attr]
        sip = ("127.0.0.1", ports["udp"])
        async with SiprecClient(sip, user="cube") as client:
            dialog = Dialog(call_id="flowing@127.0.0.1", from_tag="f1")
            answered = await client.invite(
                dialog, body=offer("flowing-1"), content_type=MULTIPART,
                headers=["Require: siprec", *live_headers("flowing-1")],
            )  # fmt: skip
            assert answered.status == 200, answered
            media_ports = [s.port for s in answered.streams()]
            listener = Listener(server.base_url, server.tokens["sup"])
            await listener.listen("flowing-1")
            await wait_for(lambda: listener.pc.connectionState == "connected", 30, "the listener to connect")
            caller = rtp_stream(tone(660, FLOW_SECONDS, 0.06), PCMU, ssrc=0x0CA11E12)
            legs = [LegSender(media_ports[0], agent_packets()), LegSender(media_ports[1], caller)]
            sending = asyncio.create_task(send_legs(legs))
            flow = Flow(server, listener, "flowing-1")
            try:
                await listener.wait_frames(50, timeout=15)
                await flow.still_flowing("the start")

                # Garbage on the SIP port: dropped (or 400 where a transaction is named), counted.
                before = await malformed(server)
                for junk in (
                    b"\x00" * 64, os.urandom(512), b"INVITE\r\n\r\n", b"\xff\xfe SIP/2.0\r\n",
                    (
                        b"INVITE sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKjunk\r\n"
                        b"Call-ID: junk-1\r\nCSeq: many INVITE\r\n\r\n"
                    ),
                ):
                    client.send_raw(junk)
                await wait_for(lambda: _malformed_at_least(server, before + 4), 30, "garbage to be counted as malformed")
                await flow.still_flowing("garbage datagrams")

                # A request cut off inside its headers (no blank line, no Call-ID) is dropped...
                whole = client.request_text(
                    "INVITE", client.new_dialog(), headers=["Require: siprec"], content_type=MULTIPART, body=offer("cut-1")
                )
                before = await malformed(server)
                client.send_raw(whole[: whole.index(b"Call-ID") + 12])
                await wait_for(lambda: _malformed_at_least(server, before + 1), 30, "the cut-off request to be counted")
                # ...one whose body is shorter than its Content-Length is a 400 (RFC 3261 §18.3).
                cut = client.new_dialog()
                whole = client.request_text(
                    "INVITE", cut, headers=["Require: siprec"], content_type=MULTIPART, body=offer("cut-2")
                )
                client.send_raw(whole[: len(whole) - 300])
                assert (await client.final_response(cut.call_id, 1, "INVITE")).status == 400
                await flow.still_flowing("truncated INVITEs")

                # Bodies the server cannot record from.
                assert 400 <= await refused(client, "plain-1", "just text\n", "text/plain") < 500
                no_audio = sdp_offer("127.0.0.1", (), ()) + "m=video 49174 RTP/AVP 96\na=rtpmap:96 H264/90000\na=sendonly\n"
                assert await refused(client, "video-1", offer("video-1", sdp=no_audio)) == 488
                assert await refused(client, "xxe-1", offer("xxe-1", metadata=XXE)) == 400
                assert await refused(client, "lol-1", offer("lol-1", metadata=BILLION_LAUGHS)) == 400
                await flow.still_flowing("refused INVITEs")

                # Oversized: one 20 kB header line over UDP; an endless header over TCP.
                big = client.new_dialog()
                client.send_raw(
                    client.request_text("INVITE", big, headers=["Require: siprec", "X-Pad: " + "a" * 20_000],
                                        content_type=MULTIPART, body=offer("big-1"))
                )  # fmt: skip
                assert (await client.final_response(big.call_id, 1, "INVITE")).status in (400, 413, 513)
                reader, writer = await asyncio.open_connection("127.0.0.1", ports["tcp"])
                try:
                    writer.write(b"INVITE sip:srs@127.0.0.1 SIP/2.0\r\nX-Pad: ")
                    with pytest.raises((ConnectionError, OSError)):
                        for _ in range(200):  # 12.8 MB at most: the server must hang up long before
                            writer.write(b"b" * 65536)
                            await asyncio.wait_for(writer.drain(), 10)
                            if reader.at_eof():
                                raise ConnectionResetError("closed by the server")
                        raise AssertionError("the server kept reading an endless SIP header over TCP")
                finally:
                    writer.close()
                await flow.still_flowing("oversized messages")

                # Datagrams on the media ports that are not RTP of this call.
                bad_before = metric(await metrics(server), "live_rtp_bad_total")
                not_rtp = [
                    b"\x3f" + bytes(range(1, 200)), b"\x80", b"\x00\x01\x02", b"\x40" + bytes(171),  # versions 0, 2, 0, 1
                    rtp_packet(PCMA, 7, 0, AGENT_SSRC, bytes(160)),  # the other G.711 law: never transcoded
                ]
                stray = [  # RTP, but no audio of this call: ignored, and no reason to lose the stream
                    rtp_packet(96, 1, 0, AGENT_SSRC, bytes(160)),
                    rtp_packet(101, 40000, 12345, 0x5EED, bytes(4)),
                ]
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
                try:
                    for port in media_ports:
                        for datagram in not_rtp + stray:
                            transport.sendto(datagram, ("127.0.0.1", port))
                finally:
                    transport.close()
                await wait_for(
                    lambda: _bad_at_least(server, bad_before + 2 * len(not_rtp)), 10,
                    "non-RTP datagrams to be counted as bad",
                )
                await flow.still_flowing("garbage RTP")

                # The reordered pairs were put back in order, the duplicates dropped.
                await wait_for(lambda: all(leg.sent > 420 for leg in legs), 30, "the reordered and duplicated packets to be sent")
                text = await metrics(server)
                assert metric(text, 'live_rtp_duplicates_total{source="siprec",leg="agent"}') >= 10, text
                # Nothing was lost: not to the reordering, and not to the one stray packet of a
                # foreign SSRC among the garbage (RFC 3550 A.1 puts a new source on probation).
                assert metric(text, 'live_rtp_lost_total{source="siprec",leg="agent"}') == 0, [
                    line for line in text.splitlines() if 'source="siprec"' in line
                ]
                await flow.still_flowing("reordered and duplicated RTP")
                agent, caller_level = listener.stats["agent"].level(), listener.stats["caller"].level()
                assert agent > 0.3 and 0.02 < caller_level < agent / 4, (agent, caller_level)

                assert (await client.options()).status == 200
            finally:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
                await listener.close()
            assert (await client.bye(dialog)).status == 200
        await wait_for(lambda: _no_calls(server), 30, "the BYE to end the call")
        assert not server.state.node.calls.local


async def _no_calls(server: RunningServer) -> bool:
    return not await roster(server, server.tokens["sup"])


async def _malformed_at_least(server: RunningServer, count: float) -> bool:
    return await malformed(server) >= count


async def _bad_at_least(server: RunningServer, count: float) -> bool:
    return metric(await metrics(server), "live_rtp_bad_total") >= count

"""The SIPREC server's dialogs, driven by a recording client over real UDP, TCP and TLS.

Each test runs a real server (``running_server``) with SIPREC on an ephemeral port and checks
what a recording client and a supervisor would notice: answers and their reasons, calls in
the roster, both legs heard, calls ending however the dialog ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from pathlib import Path
from typing import Any

from live.ingest.sip.message import parse_message
from live.ingest.siprec import SessionRecordingServer
from live.types import Consent
from tests.integration.test_tls import self_signed
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.sip_client import METADATA, Dialog, SipClient, sdp_offer, send_rtp
from tests.support.wait import wait_for

LOUD = tone(440, 3.0, 0.6)
QUIET = tone(660, 3.0, 0.06)
SIPREC = {"siprec_listen": "127.0.0.1:0", "siprec_allow": "127.0.0.1", "rtp_ports": "42000-42199"}


def packets(audio: bytes) -> list[bytes]:
    return [audio[i : i + 160] for i in range(0, len(audio) - 159, 160)]


def metadata(agent: str = "agent", agent_label: str = "1", caller_label: str = "2") -> str:
    return METADATA.format(agent=agent, agent_label=agent_label, caller_label=caller_label)


def srs(server: RunningServer) -> SessionRecordingServer:
    assert server.state.siprec is not None
    handler = server.state.siprec.handler
    assert isinstance(handler, SessionRecordingServer)
    return handler


def sip_port(server: RunningServer, transport: str = "udp") -> int:
    assert server.state.siprec is not None
    return server.state.siprec.ports[transport]


async def test_a_recorded_call_is_heard_on_both_legs_and_bye_ends_it(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC) as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            dialog = Dialog("call-udp-1@sbc", "src1")
            response = await client.invite(
                dialog, sdp_offer(30000), metadata(), extra=[("X-Live-Queue", "billing"), ("X-Live-Consent", "granted")]
            )
            assert response.status == 200, response
            assert dialog.ports[1] == dialog.ports[0] + 2
            assert re.findall(r"(?m)^a=(recvonly|label:\d+)\r?$", dialog.answer) == [
                "label:1", "recvonly", "label:2", "recvonly"
            ] or dialog.answer.count("a=recvonly") == 2, dialog.answer
            assert "PCMU/8000" in dialog.answer and "PCMA" not in dialog.answer
            call = await wait_for(lambda: server.state.node.calls.roster.calls.get("call-udp-1@sbc"), 30, "the call")
            assert (call.source, call.agent_id, call.queue, call.consent) == ("siprec", "agent", "billing", Consent.GRANTED)

            listener = Listener(server.base_url, server.tokens["sup"])
            await listener.listen("call-udp-1@sbc")
            try:
                await asyncio.gather(send_rtp(dialog.ports[0], packets(LOUD)), send_rtp(dialog.ports[1], packets(QUIET), ssrc=99),
                                     listener.wait_frames(60, timeout=15))
                assert listener.stats["agent"].level() > 4 * listener.stats["caller"].level() > 0
                assert (await client.bye(dialog)).status == 200
                await wait_for(lambda: "call-udp-1@sbc" not in server.state.node.calls.roster.calls, 30, "the call to end")
                ended = await wait_for(
                    lambda: server.state.node.ledger.entries(kind="listen.ended"), 10, "the listen's end on record"
                )
                assert ended[-1].fields["reason"] == "call-ended"
            finally:
                await listener.close()


async def test_tcp_and_options_keepalive(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC) as server:
        async with SipClient("127.0.0.1", sip_port(server, "tcp"), "tcp") as client:
            dialog = Dialog("opt-1@sbc", "o1")
            client.request("OPTIONS", dialog)
            assert (await client.response()).status == 200
            dialog = Dialog("call-tcp-1@sbc", "t1")
            response = await client.invite(dialog, sdp_offer(30010), metadata())
            assert response.status == 200
            assert "transport=tcp" in response.header("contact")
            await wait_for(lambda: "call-tcp-1@sbc" in server.state.node.calls.roster.calls, 30, "the call")
            assert (await client.bye(dialog)).status == 200
            await wait_for(lambda: "call-tcp-1@sbc" not in server.state.node.calls.roster.calls, 30, "the call to end")


async def test_tls_on_its_own_port(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with running_server(tmp_path, **SIPREC, siprec_tls_cert=str(cert), siprec_tls_key=str(key)) as server:
        port = sip_port(server, "tls")
        context = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            writer.write(
                b"OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5;branch=z9hG4bKtls1\r\n"
                b"From: <sip:src@127.0.0.1>;tag=a\r\nTo: <sip:srs@127.0.0.1>\r\nCall-ID: tls-1\r\n"
                b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"SIP/2.0 200"), head
        finally:
            writer.close()


async def test_refusals_say_why(tmp_path: Path) -> None:
    async with running_server(tmp_path, **{**SIPREC, "rtp_ports": "42300-42303"}) as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:

            async def invite(body: str, content_type: str, extra: list[tuple[str, str]] | None = None) -> Any:
                dialog = Dialog(f"refused-{id(body)}-{content_type}@sbc", "r")
                client.request("INVITE", dialog, body=body, content_type=content_type, extra=extra)
                return await client.response()

            no_multipart = await invite("hello", "text/plain")
            assert no_multipart.status == 415 and "multipart" in no_multipart.reason
            no_audio = await invite("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n", "application/sdp")
            assert no_audio.status == 488 and "no audio" in no_audio.reason
            g729 = await invite(sdp_offer(30020, codecs="18"), "application/sdp")
            assert g729.status == 488 and "codec" in g729.reason
            extension = await invite(sdp_offer(30030), "application/sdp", [("Require", "100rel, siprec")])
            assert extension.status == 420 and extension.header("unsupported") == "100rel"
            # Four ports: one call of two legs fits, the second finds every port busy.
            first = Dialog("fits@sbc", "f")
            assert (await client.invite(first, sdp_offer(30040), metadata())).status == 200
            busy = await invite(sdp_offer(30050), "application/sdp")
            assert busy.status == 503 and "ports" in busy.reason
            assert (await client.bye(first)).status == 200
        assert set(server.state.node.calls.roster.calls) <= {"fits@sbc"}


async def test_an_unauthorised_source_is_refused(tmp_path: Path) -> None:
    async with running_server(tmp_path, **{**SIPREC, "siprec_allow": "10.9.9.9"}) as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            response = await client.invite(Dialog("intruder@sbc", "i"), sdp_offer(30060), metadata())
            assert response.status == 403
        assert server.state.node.calls.roster.calls == {}


async def test_cancel_before_the_answer_leaves_nothing_behind(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC) as server:
        sent: list[Any] = []

        class Peer:
            transport = "udp"
            address = ("127.0.0.1", 5999)
            reliable = False

            def send(self, message: Any) -> None:
                sent.append(message)

        body = sdp_offer(30070)
        head = (
            "{method} sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKcancel1\r\n"
            "From: <sip:src@127.0.0.1>;tag=c\r\nTo: <sip:srs@127.0.0.1>\r\nCall-ID: cancel-1@sbc\r\n"
            "CSeq: 1 {method}\r\nContent-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{body}"
        )
        invite = parse_message(head.format(method="INVITE", length=len(body), body=body).encode())
        cancel = parse_message(head.format(method="CANCEL", length=0, body="").encode())
        recorder = srs(server)
        recorder.receive(invite, Peer())  # both before the INVITE's task runs: the CANCEL wins
        recorder.receive(cancel, Peer())
        await wait_for(lambda: any(getattr(m, "status", 0) == 487 for m in sent), 30, "487 to the INVITE")
        statuses = sorted((m.status, m.headers.get("CSeq")) for m in sent)
        assert (200, "1 CANCEL") in statuses and (487, "1 INVITE") in statuses
        assert not any(s == 200 and c.endswith("INVITE") for s, c in statuses)
        assert server.state.node.calls.roster.calls == {} and recorder.sessions == {}
        assert server.state.rtp_pool is not None and server.state.rtp_pool.in_use == 0


async def test_hold_keeps_the_listeners_track_alive_and_resume_returns_audio(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC) as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            dialog = Dialog("hold-1@sbc", "h")
            assert (await client.invite(dialog, sdp_offer(30080), metadata())).status == 200
            listener = Listener(server.base_url, server.tokens["sup"])
            await listener.listen("hold-1@sbc")
            try:
                hold = await client.invite(dialog, sdp_offer(30080, direction="inactive", version=2), metadata())
                assert hold.status == 200 and hold.body.count("a=inactive") == 2
                before = listener.stats["agent"].frames
                # No RTP at all while held: the silence keeps frames coming.
                await wait_for(lambda: listener.stats["agent"].frames > before + 25, 30, "frames while on hold")
                resume = await client.invite(dialog, sdp_offer(30080, version=3), metadata())
                assert resume.status == 200 and resume.body.count("a=recvonly") == 2
                await send_rtp(dialog.ports[0], packets(LOUD)[:50])
                assert listener.stats["agent"].level() > 0.1
                assert "hold-1@sbc" in server.state.node.calls.roster.calls
            finally:
                await listener.close()
            assert (await client.bye(dialog)).status == 200


async def test_dialogs_that_die_end_their_calls(tmp_path: Path) -> None:
    """No RTP for the media timeout, or a session timer not refreshed: the call ends, with BYE."""
    async with running_server(tmp_path, **SIPREC, rtp_timeout_s=5) as server:
        recorder = srs(server)
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            quiet = Dialog("quiet@sbc", "q")
            assert (await client.invite(quiet, sdp_offer(30090), metadata())).status == 200
            loop = asyncio.get_running_loop()
            await recorder.sweep(loop.time() + 3)  # within the media timeout
            assert "quiet@sbc" in server.state.node.calls.roster.calls
            await recorder.sweep(loop.time() + 10)  # past it
            assert "quiet@sbc" not in server.state.node.calls.roster.calls
            bye = await asyncio.wait_for(client.requests.get(), 10)
            assert bye.startswith("BYE ") and "quiet@sbc" in bye

            recorder.rtp_timeout_s = 1000  # from here on only the session timer counts
            timed = Dialog("timed@sbc", "t")
            response = await client.invite(timed, sdp_offer(30100), metadata(), extra=[("Session-Expires", "90;refresher=uac")])
            assert response.status == 200
            assert response.header("session-expires") == "90;refresher=uac" and response.header("require") == "timer"
            await recorder.sweep(loop.time() + 60)
            client.request("UPDATE", timed)  # a refresh without an offer (RFC 4028 §7.4)
            timed.cseq += 1
            assert (await client.response()).status == 200
            await recorder.sweep(loop.time() + 80)  # 80 s after the INVITE, but only just refreshed
            assert "timed@sbc" in server.state.node.calls.roster.calls
            await recorder.sweep(loop.time() + 200)
            assert "timed@sbc" not in server.state.node.calls.roster.calls
            assert recorder.counters.ended == {"media-timeout": 1, "session-expired": 1}


async def test_digest_authentication_when_configured(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC, siprec_digest="sbc1=s3cret") as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            dialog = Dialog("digest@sbc", "d")
            challenge = await client.invite(dialog, sdp_offer(30110), metadata())
            assert challenge.status == 401
            nonce = re.search(r'nonce="([^"]+)"', challenge.header("www-authenticate")).group(1)  # type: ignore[union-attr]
            uri = f"sip:srs@127.0.0.1:{sip_port(server)}"
            ha1 = hashlib.md5(b"sbc1:live:s3cret").hexdigest()
            ha2 = hashlib.md5(f"INVITE:{uri}".encode()).hexdigest()
            digest = hashlib.md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}".encode()).hexdigest()
            authorization = (
                f'Digest username="sbc1", realm="live", nonce="{nonce}", uri="{uri}", '
                f'response="{digest}", qop=auth, nc=00000001, cnonce="abc", algorithm=MD5'
            )
            wrong = authorization.replace(digest, "0" * 32)
            assert (await client.invite(dialog, sdp_offer(30110), metadata(), extra=[("Authorization", wrong)])).status == 401
            answered = await client.invite(dialog, sdp_offer(30110), metadata(), extra=[("Authorization", authorization)])
            assert answered.status == 200
            assert "digest@sbc" in server.state.node.calls.roster.calls


async def test_pcma_is_forwarded_as_pcma_and_an_unknown_agent_is_shown_unknown(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC) as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            dialog = Dialog("alaw@sbc", "a")
            response = await client.invite(dialog, sdp_offer(30120, codecs="8 0"), metadata(agent="stranger"))
            assert response.status == 200 and "PCMA/8000" in response.body and "PCMU" not in response.body
            call = await wait_for(lambda: server.state.node.calls.roster.calls.get("alaw@sbc"), 30, "the call")
            assert call.codec == "PCMA" and call.agent_id == ""
            listener = Listener(server.base_url, server.tokens["sup"])
            answer = await listener.listen("alaw@sbc")  # the built-in default policy: open scope
            try:
                assert "PCMA/8000" in answer["sdp"]
            finally:
                await listener.close()
            assert (await client.bye(dialog)).status == 200


async def test_a_single_stream_is_one_leg_and_the_other_is_not_sent(tmp_path: Path) -> None:
    async with running_server(tmp_path, **SIPREC, siprec_agent_label="7") as server:
        async with SipClient("127.0.0.1", sip_port(server)) as client:
            dialog = Dialog("one-leg@sbc", "o")
            response = await client.invite(dialog, sdp_offer(30130, labels=("7",)), None)
            assert response.status == 200 and len(dialog.ports) == 1
            call = await wait_for(lambda: server.state.node.calls.roster.calls.get("one-leg@sbc"), 30, "the call")
            assert call.legs == ("agent",)
            listener = Listener(server.base_url, server.tokens["sup"])
            answer = await listener.listen("one-leg@sbc")
            try:
                legs = {leg["leg"]: leg for leg in answer["legs"]}
                assert legs["agent"]["available"] and not legs["caller"]["available"]
                assert legs["caller"]["reason"] == "not_sent"
            finally:
                await listener.close()
            assert (await client.bye(dialog)).status == 200

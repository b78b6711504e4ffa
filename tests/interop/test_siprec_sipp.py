"""Interop: sipp (Debian's ``sip-tester``, a SIP client we did not write) records to us.

Each vendor's scenario (tests/support/sipp/) starts a SIPREC session with that vendor's
metadata, plays both legs from one pcap (sipp sends the second leg to the first answered
port + 2), holds, resumes and hangs up. A supervisor's listener must hear the agent loud and
the caller quiet — which leg is which is decided by a different rule for each vendor (a
known agent's AoR, ``siprec_agent_aor``, ``siprec_agent_label``), and for Oracle the agent is
on the second stream, so a swapped mapping shows as swapped levels.

sipp and the test meet at sync points (see ``tests.support.sipp.runner``): nothing waits
on a clock, every wait has a bound that fails loudly with sipp's logs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.pcap import PAYLOAD_TYPES, PcapLegs, encode_as, write_rtp_pcap
from tests.support.server import RunningServer, running_server
from tests.support.sipp.bodies import VENDORS, Vendor, parse_answer
from tests.support.sipp.runner import Sipp
from tests.support.sipp.scenario import (
    call_scenario,
    cancel_scenario,
    options_scenario,
    refused_scenario,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.interop

SECONDS = 4.0
AGENT_AMPLITUDE, CALLER_AMPLITUDE = 0.6, 0.06


def siprec_settings(vendor: Vendor | None = None, allow: str = "127.0.0.1") -> dict[str, str]:
    return {"siprec_listen": "127.0.0.1:0", "siprec_allow": allow, **(vendor.settings if vendor else {})}


def legs_pcap(path: Path, vendor: Vendor, codec: str, seconds: float = SECONDS) -> PcapLegs:
    """A pcap with the agent's loud 440 Hz on the agent's stream and the caller's quiet
    660 Hz on the other, in ``codec``."""
    agent = encode_as(codec, tone(440, seconds, AGENT_AMPLITUDE))
    caller = encode_as(codec, tone(660, seconds, CALLER_AMPLITUDE))
    legs = [agent, caller] if vendor.agent_stream == 0 else [caller, agent]
    return write_rtp_pcap(path, legs, PAYLOAD_TYPES[codec])


def sipp_for(server: RunningServer, scenario: Path, workdir: Path, name: str) -> Sipp:
    udp = server.state.siprec.ports["udp"]  # type: ignore[union-attr]
    return Sipp(scenario, ("127.0.0.1", udp), workdir, call_id=f"{name}-{uuid.uuid4().hex[:8]}-%u")


async def roster(server: RunningServer, token: str) -> list[dict[str, Any]]:
    """The calls ``GET /api/calls`` shows the holder of ``token``."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/api/calls", headers=headers) as response:
        assert response.status == 200
        return list((await response.json())["calls"])


async def metrics(server: RunningServer) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.base_url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` (all label sets) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def answer_of(sipp: Sipp, index: int) -> list[Any]:
    """The m= sections of the server's ``index``-th 200 OK to an INVITE."""
    answers = sipp.received(200, "INVITE")
    assert len(answers) > index, sipp.logs()
    return parse_answer(answers[index].body)[1]


async def the_call(server: RunningServer, call_id: str) -> dict[str, Any]:
    calls = await roster(server, server.tokens["sup"])
    matching = [c for c in calls if c["call_id"] == call_id]
    assert matching, f"call {call_id!r} is not in the roster: {calls}"
    return matching[0]


async def no_calls(server: RunningServer) -> bool:
    return not await roster(server, server.tokens["sup"])


CASES = [("cisco", "PCMU"), ("oracle", "PCMU"), ("broadworks", "PCMU"), ("cisco", "PCMA")]


@pytest.mark.parametrize(("vendor_name", "codec"), CASES, ids=[f"{v}-{c}" for v, c in CASES])
async def test_sipp_session_is_heard_held_resumed_and_ended(tmp_path: Path, vendor_name: str, codec: str) -> None:
    vendor = VENDORS[vendor_name]
    sync = tmp_path / "sync"
    sync.mkdir()
    given_call_id = f"{vendor.name}-{codec}-0001"
    pcap = legs_pcap(tmp_path / "legs.pcap", vendor, codec)
    scenario = call_scenario(vendor, tmp_path, pcap=pcap, sync_dir=sync, call_id=given_call_id, codec=codec)
    async with running_server(tmp_path / "data", **siprec_settings(vendor)) as server:
        sipp = sipp_for(server, scenario, tmp_path / "sipp", vendor.name)
        call_id = given_call_id if vendor.call_id_given else sipp.sipp_call_id
        listener = Listener(server.base_url, server.tokens["sup"])
        async with sipp:
            try:
                # Answered: one recvonly stream per offered one, labels kept, the second at
                # the first port + 2, the offered G.711 codec.
                await sipp.wait_marker("answered", sync)
                streams = answer_of(sipp, 0)
                assert [s.kind for s in streams] == ["audio", "audio"], streams
                assert [s.direction for s in streams] == ["recvonly", "recvonly"], streams
                assert [s.label for s in streams] == list(vendor.labels), streams
                assert streams[1].port == streams[0].port + 2, streams
                assert {s.codec for s in streams} == {codec}, streams

                call = await the_call(server, call_id)
                assert call["source"] == "siprec" and call["codec"] == codec, call
                assert call["agent_id"] == vendor.agent_id, call
                assert call["consent"] == "granted", call

                body = await listener.listen(call_id)
                listened = parse_answer(body["sdp"])[1]
                assert {s.codec for s in listened if s.kind == "audio"} == {codec}, body["sdp"]
                await wait_for(lambda: listener.pc.connectionState == "connected", 30, "the listener to connect")

                sipp.proceed()  # play the pcap
                await listener.wait_frames(int(pcap.packets_per_leg * 0.5), timeout=pcap.seconds + 15)
                agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
                assert agent > 0.3, (agent, caller)
                assert 0.02 < caller < agent / 4, (agent, caller)

                # Hold: answered a=inactive; the call and its listen stay.
                await sipp.wait_marker("held", sync, timeout=pcap.seconds + 20)
                assert {s.direction for s in answer_of(sipp, 1)} == {"inactive"}, sipp.received(200, "INVITE")[1].body
                await the_call(server, call_id)
                assert listener.session_id in server.state.node.listens.sessions
                sipp.proceed()

                # Resume: recvonly again, on the same ports.
                await sipp.wait_marker("resumed", sync)
                resumed = answer_of(sipp, 2)
                assert [s.direction for s in resumed] == ["recvonly", "recvonly"], resumed
                assert [s.port for s in resumed] == [s.port for s in streams], resumed
                # The resume's metadata says nothing of consent: the caller stays audible.
                assert (await the_call(server, call_id))["consent"] == "granted"
                assert listener.session_id in server.state.node.listens.sessions
                sipp.proceed()  # BYE

                returncode = await sipp.wait()
                assert returncode == 0, sipp.logs()
                assert sipp.received(200, "BYE"), sipp.logs()
            finally:
                await listener.close()

        await wait_for(lambda: no_calls(server), 30, "the BYE to end the call")
        assert not server.state.node.listens.sessions
        ended = await server.state.node.ledger.entries(kind="listen.ended")
        assert [e.fields["reason"] for e in ended] == ["call-ended"]
        session = await server.state.node.ledger.entries(session_id=listener.session_id)
        assert [e.kind for e in session] == ["listen.started", "listen.ended"], [(e.kind, e.fields) for e in session]
        assert metric(await metrics(server), "live_rtp_ports_in_use") == 0


async def test_sipp_cancel_leaves_no_call_behind(tmp_path: Path) -> None:
    vendor = VENDORS["cisco"]
    scenario = cancel_scenario(vendor, tmp_path, call_id="cisco-cancelled-1")
    async with running_server(tmp_path / "data", **siprec_settings(vendor)) as server:
        async with sipp_for(server, scenario, tmp_path / "sipp", "cancel") as sipp:
            returncode = await sipp.wait()
            assert returncode == 0, sipp.logs()  # every transaction it started was answered
        finals = [m.status for m in sipp.received(method="INVITE") if (m.status or 0) >= 200]
        cancel = [m.status for m in sipp.received(method="CANCEL")]
        # Either the CANCEL won (487) or the INVITE was answered first (then ACK + BYE).
        assert finals[:1] in ([487], [200]), sipp.logs()
        assert cancel[:1] in ([200], [481]), sipp.logs()
        if finals[0] == 200:
            assert sipp.received(200, "BYE"), sipp.logs()
        await wait_for(lambda: no_calls(server), 30, "no call left after the CANCEL")
        assert not server.state.node.calls.local
        await wait_for(
            lambda: _ports_free(server), 10, "the cancelled session's RTP ports to be released"
        )


async def _ports_free(server: RunningServer) -> bool:
    return metric(await metrics(server), "live_rtp_ports_in_use") == 0


async def test_sipp_from_a_source_not_allowed_is_refused(tmp_path: Path) -> None:
    vendor = VENDORS["cisco"]
    scenario = refused_scenario(vendor, tmp_path, call_id="cisco-refused-1")
    async with running_server(tmp_path / "data", **siprec_settings(vendor, allow="10.9.9.9")) as server:
        async with sipp_for(server, scenario, tmp_path / "sipp", "refused") as sipp:
            returncode = await sipp.wait()
        assert returncode == 0, sipp.logs()
        assert sipp.received(403, "INVITE"), sipp.logs()
        assert not sipp.received(200, "INVITE"), sipp.logs()
        assert await no_calls(server)
        assert not server.state.node.calls.local
        # Both of sipp's requests reached the server; only the INVITE is answered (an ACK
        # never is: RFC 3261 section 17.2.1).
        await wait_for(
            lambda: _parsed_at_least(server, 2), 10, "the server to read the INVITE and the ACK"
        )
        text = await metrics(server)
        assert metric(text, "live_siprec_refused_total") == 1, [
            line for line in text.splitlines() if "siprec" in line or "sip_messages" in line
        ]
        assert metric(text, "live_siprec_sessions") == 0


async def _parsed_at_least(server: RunningServer, count: int) -> bool:
    return metric(await metrics(server), "live_sip_messages_total") >= count


async def test_sipp_options_keepalive_is_answered(tmp_path: Path) -> None:
    vendor = VENDORS["oracle"]
    scenario = options_scenario(vendor, tmp_path)
    async with running_server(tmp_path / "data", **siprec_settings(vendor)) as server:
        async with sipp_for(server, scenario, tmp_path / "sipp", "options") as sipp:
            returncode = await sipp.wait()
        assert returncode == 0, sipp.logs()
        assert len(sipp.received(200, "OPTIONS")) == 3, sipp.logs()
        assert await no_calls(server)

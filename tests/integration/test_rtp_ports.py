"""The RTP port pool and endpoints over real UDP sockets on loopback."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from live.errors import ConfigError
from live.ingest.rtp import RtpLegReceiver
from live.ingest.rtp_ports import PortsExhausted, RtpPortPool, parse_port_range
from live.ingest.srtp import SrtpReceiver, SrtpSender
from tests.support.rtp import build_rtp
from tests.support.wait import wait_for

HOST = "127.0.0.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"


def free_udp_block(size: int) -> range:
    """``size`` consecutive UDP ports on loopback, starting even, that nothing holds right now."""
    for _ in range(200):
        first = random.randrange(20000, 30000, 2)  # below Linux's ephemeral range
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((HOST, port))
            return range(first, first + size)
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {size} free consecutive UDP ports")


def port_is_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


class Published:
    def __init__(self) -> None:
        self.items: list[tuple[bytes, int]] = []

    def __call__(self, payload: bytes, pts: int, arrived_ns: int) -> None:
        self.items.append((payload, pts))


@pytest.fixture
def ports() -> range:
    return free_udp_block(8)


@pytest.fixture
async def pool(ports: range) -> AsyncIterator[RtpPortPool]:
    pool = RtpPortPool(ports, HOST)
    yield pool
    pool.close()


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    yield sock
    sock.close()


# --- configuration --------------------------------------------------------------------------


def test_parse_port_range() -> None:
    assert parse_port_range("40000-40999") == range(40000, 41000)
    assert parse_port_range(" 30001 - 30003 ") == range(30001, 30004)


@pytest.mark.parametrize("text", ["", "40000", "40000-", "a-b", "40999-40000", "80-90", "40000-70000",
                                  "40001-40002", "40000:40999"])
def test_bad_port_range_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_port_range(text)
    assert caught.value.fields["setting"] == "rtp_ports"


# --- allocation -----------------------------------------------------------------------------


async def test_legs_are_bound_at_first_and_first_plus_two(pool: RtpPortPool, ports: range) -> None:
    legs = await pool.open_legs(2)
    assert [leg.port for leg in legs] == [ports.start, ports.start + 2]
    assert all(port_is_taken(p) for p in range(ports.start, ports.start + 4))  # RTCP ports too
    assert pool.in_use == 2 and pool.capacity == 4


async def test_an_odd_range_start_is_aligned_to_even(ports: range) -> None:
    pool = RtpPortPool(range(ports.start + 1, ports.stop), HOST)
    try:
        assert [leg.port for leg in await pool.open_legs(2)] == [ports.start + 2, ports.start + 4]
    finally:
        pool.close()


async def test_ports_held_by_another_socket_are_skipped(pool: RtpPortPool, ports: range) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind((HOST, ports.start + 2))
    try:
        legs = await pool.open_legs(2)  # pairs 0+1 and 1+2 both hold the squatted port
        assert [leg.port for leg in legs] == [ports.start + 4, ports.start + 6]
        assert [leg.port for leg in await pool.open_legs(1)] == [ports.start]
        with pytest.raises(PortsExhausted):
            await pool.open_legs(1)
    finally:
        squatter.close()


async def test_exhaustion_is_a_503_with_its_own_code(ports: range) -> None:
    pool = RtpPortPool(range(ports.start, ports.start + 4), HOST)
    try:
        await pool.open_legs(2)
        with pytest.raises(PortsExhausted) as caught:
            await pool.open_legs(1)
        assert caught.value.code == "rtp_ports_exhausted" and caught.value.status == 503
        with pytest.raises(PortsExhausted):
            await RtpPortPool(range(ports.start, ports.start + 4), HOST).open_legs(3)
    finally:
        pool.close()


async def test_release_frees_the_ports(pool: RtpPortPool, ports: range) -> None:
    first = await pool.open_legs(2)
    second = await pool.open_legs(2)
    assert pool.in_use == 4
    pool.release(first)
    assert pool.in_use == 2
    assert not any(port_is_taken(p) for p in range(ports.start, ports.start + 4))
    assert [leg.port for leg in await pool.open_legs(2)] == [ports.start, ports.start + 2]
    pool.close()
    assert pool.in_use == 0 and not port_is_taken(second[0].port)


# --- media ----------------------------------------------------------------------------------


async def test_udp_packets_reach_the_publisher(pool: RtpPortPool, sender: socket.socket) -> None:
    agent, caller = Published(), Published()
    publishers = [agent, caller]
    legs = await pool.open_legs(
        2, lambda i: (RtpLegReceiver(publishers[i], codec="PCMU"), None)
    )
    for n in range(5):
        for i, leg in enumerate(legs):
            sender.sendto(build_rtp(0, 100 + n, 160 * n, 10 + i, bytes([i, n]) * 80), (HOST, leg.port))
    await wait_for(
        lambda: len(agent.items) == 5 and len(caller.items) == 5,
        30,
        "10 packets published",
    )
    assert agent.items == [(bytes([0, n]) * 80, 160 * n) for n in range(5)]
    assert caller.items == [(bytes([1, n]) * 80, 160 * n) for n in range(5)]
    assert legs[0].stats.received == 5 and legs[0].last_packet_ns > 0
    assert legs[0].source == sender.getsockname()


async def test_garbage_rtcp_and_early_packets_are_counted_not_published(
    pool: RtpPortPool, sender: socket.socket
) -> None:
    (leg,) = await pool.open_legs(1)
    sender.sendto(build_rtp(0, 1, 0, 5, b"early"), (HOST, leg.port))
    await wait_for(lambda: leg.unrouted == 1, 30, "the early packet")
    published = Published()
    leg.set_receiver(RtpLegReceiver(published, codec="PCMU"))
    sender.sendto(b"\x00not rtp", (HOST, leg.port))
    sender.sendto(bytes([0x81, 201, 0, 7]) + bytes(28), (HOST, leg.port))  # an RTCP RR (rtcp-mux)
    sender.sendto(build_rtp(0, 2, 160, 5, b"audio"), (HOST, leg.port))
    await wait_for(lambda: len(published.items) == 1, 30, "the audio packet")
    assert (leg.stats.bad, leg.stats.rtcp, leg.stats.received) == (1, 1, 1)


async def test_srtp_with_the_wrong_key_is_undecryptable_never_published(
    pool: RtpPortPool, sender: socket.socket
) -> None:
    key = os.urandom(30)
    published = Published()
    (leg,) = await pool.open_legs(1, lambda i: (RtpLegReceiver(published, codec="PCMU"), SrtpReceiver(SUITE, key)))
    good, wrong = SrtpSender(SUITE, key), SrtpSender(SUITE, os.urandom(30))
    sender.sendto(good.protect(build_rtp(0, 1, 0, 9, b"one")), (HOST, leg.port))
    for n in range(2, 5):
        sender.sendto(wrong.protect(build_rtp(0, n, 160 * n, 9, b"forged")), (HOST, leg.port))
    sender.sendto(build_rtp(0, 5, 800, 9, b"plain"), (HOST, leg.port))  # unprotected: refused too
    sender.sendto(good.protect(build_rtp(0, 2, 160, 9, b"two")), (HOST, leg.port))
    await wait_for(lambda: len(published.items) == 2, 30, "the two genuine packets")  # same socket: in order
    assert [p for p, _ in published.items] == [b"one", b"two"]
    assert leg.stats.undecryptable == 4


async def test_rekeyed_receiver_keeps_the_timeline_and_the_counters(
    pool: RtpPortPool, sender: socket.socket
) -> None:
    published = Published()
    (leg,) = await pool.open_legs(1, lambda i: (RtpLegReceiver(published, codec="PCMU"), None))
    for n in range(3):
        sender.sendto(build_rtp(0, n, 160 * n, 1, b"x" * 160), (HOST, leg.port))
    await wait_for(lambda: len(published.items) == 3, 30, "three packets")
    key = os.urandom(30)
    leg.set_receiver(RtpLegReceiver(published, codec="PCMA", payload_types={8: "PCMA"}),
                     SrtpReceiver(SUITE, key))  # a re-INVITE: new keys, new codec, new SSRC
    sender.sendto(SrtpSender(SUITE, key).protect(build_rtp(8, 900, 12345, 2, b"y" * 160)), (HOST, leg.port))
    await wait_for(lambda: len(published.items) == 4, 30, "the re-keyed packet")
    pts = [p for _, p in published.items]
    assert pts[:3] == [0, 160, 320] and pts[3] >= 480
    assert leg.stats.received == 4


async def test_close_stops_reception(pool: RtpPortPool, ports: range) -> None:
    await pool.open_legs(3)
    pool.close()
    assert pool.in_use == 0
    assert not any(port_is_taken(p) for p in range(ports.start, ports.start + 6))

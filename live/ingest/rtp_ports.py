"""UDP ports for RTP legs: a pool over the configured range, one endpoint per leg.

A call's legs get one block of consecutive pairs: leg ``i`` receives RTP on ``first + 2*i``
(``first`` even, RFC 3550 §11) and its RTCP port ``first + 2*i + 1`` is bound too and drained,
so a peer's RTCP meets an open port rather than ICMP errors (which some SBCs take for a dead
call). sipp and several SBCs send the second leg to the first answered port plus 2, so legs are
kept adjacent (PROTOCOLS.md). Ports the OS refuses (another process holds them) are skipped.

Per datagram the endpoint does no more than: drop RTCP (rtcp-mux), unprotect SRTP if keyed,
hand the packet to the leg's ``RtpLegReceiver`` with its arrival time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import ConfigError, ServiceUnavailable
from .rtp import LegStats, RtpLegReceiver
from .srtp import SrtpError, SrtpReceiver

log = logging.getLogger(__name__)

LegHandler = tuple[RtpLegReceiver, SrtpReceiver | None]
_SocketPair = tuple[socket.socket, socket.socket | None]  # RTP, and RTCP if the OS let us have it
_P = TypeVar("_P", bound=asyncio.DatagramProtocol)
_RANGE = re.compile(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*")


class PortsExhausted(ServiceUnavailable):
    """No block of free RTP ports is left for a new call."""

    code = "rtp_ports_exhausted"


def parse_port_range(text: str) -> range:
    """``"40000-40999"`` -> ``range(40000, 41000)``; ``ConfigError`` naming ``rtp_ports``."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ConfigError(f"rtp_ports: {text!r} is not LOW-HIGH", setting="rtp_ports")
    low, high = int(match[1]), int(match[2])
    if not 1024 <= low < high <= 65535:
        raise ConfigError(
            f"rtp_ports: {text!r} must be two ports between 1024 and 65535, low below high",
            setting="rtp_ports",
        )
    if low + low % 2 + 1 > high:  # an even RTP port and the RTCP port after it
        raise ConfigError(f"rtp_ports: {text!r} holds no RTP/RTCP port pair", setting="rtp_ports")
    return range(low, high + 1)


class _RtcpDrain(asyncio.DatagramProtocol):
    """Keeps an RTCP port open; its reports are not needed for listening."""

    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received += 1


class RtpEndpoint(asyncio.DatagramProtocol):
    """One leg's bound RTP port; packets before ``set_receiver`` are dropped (``unrouted``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stats = LegStats()  # the leg's counters, kept across receivers (re-INVITEs)
        self.last_packet_ns = 0  # time.monotonic_ns() of the last valid packet, 0 if none
        self.unrouted = 0  # datagrams before a receiver was set
        self.source: tuple[str | int, ...] | None = None  # address of the first valid packet
        self._rtcp: _RtcpDrain | None = None
        self._transports: list[tuple[asyncio.BaseTransport, socket.socket]] = []
        self._receiver: RtpLegReceiver | None = None
        self._srtp: SrtpReceiver | None = None
        self._warned_source = False

    @property
    def receiver(self) -> RtpLegReceiver | None:
        return self._receiver

    def set_receiver(self, receiver: RtpLegReceiver, srtp: SrtpReceiver | None = None) -> None:
        """Route this port's packets to ``receiver`` (SRTP-unprotected first if ``srtp``).

        May be called again (a re-INVITE changing codec or keys): the previous receiver is
        flushed and the new one continues its timeline, so listeners' timestamps stay
        monotonic. The receiver counts into this endpoint's ``stats``.
        """
        previous = self._receiver
        if previous is not None and previous is not receiver:
            previous.flush()
            receiver.continue_after(previous)
        receiver.stats = self.stats
        self._receiver = receiver
        self._srtp = srtp

    # --- asyncio.DatagramProtocol -------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        receiver = self._receiver
        if receiver is None:
            self.unrouted += 1
            return
        if len(data) > 1 and 192 <= data[1] <= 223:  # RTCP on the RTP port (RFC 5761 §4)
            self.stats.rtcp += 1
            return
        srtp = self._srtp
        if srtp is not None:
            try:
                data = srtp.unprotect(data)
            except SrtpError:
                self.stats.undecryptable += 1
                return
        now = time.monotonic_ns()
        if receiver.receive_packet(data, now):
            self.last_packet_ns = now
            if addr != self.source:
                self._note_source(addr)

    def _note_source(self, addr: tuple[str | int, ...]) -> None:
        if self.source is None:
            self.source = addr
        elif not self._warned_source:
            # Accepted: SBCs legitimately send one leg from several media addresses.
            self._warned_source = True
            log.warning("RTP port %d: packets from %s as well as %s", self.port, addr, self.source)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP port %d: %s", self.port, exc)

    def close(self) -> None:
        """Close the RTP and RTCP sockets, after publishing what the receiver still holds."""
        if self._receiver is not None:
            self._receiver.flush()
        for transport, sock in self._transports:
            transport.close()  # stops reading now; the transport would close the socket later
            sock.close()  # so close it now: the port is free when this returns
        self._transports.clear()


def _bind(host: str, port: int) -> socket.socket | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:  # in use by someone else, or not ours to take
        sock.close()
        return None
    sock.setblocking(False)
    return sock


async def _serve(
    loop: asyncio.AbstractEventLoop, endpoint: RtpEndpoint, protocol: _P, sock: socket.socket
) -> _P:
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    endpoint._transports.append((transport, sock))
    return protocol


def _close_all(pairs: Iterable[_SocketPair]) -> None:
    for rtp_sock, rtcp_sock in pairs:
        rtp_sock.close()  # closing twice is harmless
        if rtcp_sock is not None:
            rtcp_sock.close()


class RtpPortPool:
    """Even-aligned blocks of RTP/RTCP port pairs from ``ports``, bound on ``host``."""

    def __init__(self, ports: range, host: str) -> None:
        self.ports = ports
        self.host = host
        self._first = ports.start + ports.start % 2
        self._pairs = max(0, (ports.stop - self._first) // 2)  # usable RTP/RTCP pairs
        self._cursor = 0  # next pair index to try: spreads reuse of just-released ports
        self._taken: set[int] = set()  # pair indexes in use by this pool
        self._endpoints: set[RtpEndpoint] = set()

    @property
    def capacity(self) -> int:
        return self._pairs

    @property
    def in_use(self) -> int:
        """Legs (RTP/RTCP pairs) currently open."""
        return len(self._endpoints)

    async def open_legs(
        self, count: int, make_handler: Callable[[int], LegHandler] | None = None
    ) -> list[RtpEndpoint]:
        """Bind ``count`` legs at ``first + 2*i``; ``make_handler(i)`` gives leg ``i`` its receiver.

        Without ``make_handler`` the caller sets receivers with ``RtpEndpoint.set_receiver``.
        ``PortsExhausted`` when no block of ``count`` free pairs is left.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        sockets = self._reserve(count)
        if sockets is None:
            raise PortsExhausted(
                f"no block of {count} free RTP port pairs in "
                f"{self.ports.start}-{self.ports.stop - 1}",
                legs=count,
                in_use=self.in_use,
            )
        first_pair, pairs = sockets
        loop = asyncio.get_running_loop()
        endpoints: list[RtpEndpoint] = []
        try:
            for i, (rtp_sock, rtcp_sock) in enumerate(pairs):
                endpoint = RtpEndpoint(rtp_sock.getsockname()[1])
                if make_handler is not None:
                    endpoint.set_receiver(*make_handler(i))
                endpoints.append(endpoint)
                self._endpoints.add(endpoint)
                await _serve(loop, endpoint, endpoint, rtp_sock)
                if rtcp_sock is not None:
                    endpoint._rtcp = await _serve(loop, endpoint, _RtcpDrain(), rtcp_sock)
        except BaseException:  # cancelled or failed half way: give every port back
            self.release(endpoints)
            _close_all(pairs)
            self._taken.difference_update(range(first_pair, first_pair + count))
            raise
        return endpoints

    def _reserve(self, count: int) -> tuple[int, list[_SocketPair]] | None:
        """Bind the first block of ``count`` pairs the pool and the OS both allow (no await)."""
        last_start = self._pairs - count
        for attempt in range(last_start + 1):
            start = (self._cursor + attempt) % (last_start + 1)
            wanted = range(start, start + count)
            if not self._taken.isdisjoint(wanted):
                continue
            bound: list[_SocketPair] = []
            for pair in wanted:
                port = self._first + 2 * pair
                rtp_sock = _bind(self.host, port)
                if rtp_sock is None:
                    break
                bound.append((rtp_sock, _bind(self.host, port + 1)))  # RTCP: if free
            if len(bound) == count:
                self._taken.update(wanted)
                self._cursor = (start + count) % max(1, self._pairs)
                return start, bound
            _close_all(bound)
        return None

    def release(self, endpoints: Iterable[RtpEndpoint]) -> None:
        """Close ``endpoints`` and return their ports to the pool."""
        for endpoint in endpoints:
            if endpoint in self._endpoints:
                self._endpoints.discard(endpoint)
                self._taken.discard((endpoint.port - self._first) // 2)
            endpoint.close()

    def close(self) -> None:
        """Close every open leg."""
        self.release(list(self._endpoints))

"""SIP over UDP, TCP and TLS (RFC 3261 §18): sockets in, parsed messages to one handler.

Responses go back the way the request came: over UDP to the datagram's source address and
port (symmetric, as RFC 3581 ``rport`` does), over TCP/TLS on the same connection. A message
that cannot be parsed is answered with 400 when enough of it names a transaction (Via,
From, To, Call-ID, CSeq), else dropped; either way it is counted and nothing else is touched.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, cast

from ...errors import ConfigError
from .message import SipError, SipMessage, SipStreamFramer, parse_message, serialise

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 1000
_REQUEST_LINE = re.compile(rb"^([A-Z]{2,16}) [^\r\n ]+ SIP/2\.0\r?\n")
_TXN_HEADERS = re.compile(rb"^(Via|v|From|f|To|t|Call-ID|i|CSeq):[^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)


class MessageHandler(Protocol):
    def receive(self, message: SipMessage, peer: UdpPeer | StreamPeer) -> None: ...


@dataclass
class TransportCounters:
    messages: int = 0
    malformed: int = 0
    connections: int = 0


def bad_request(data: bytes, reason: str) -> bytes | None:
    """A 400 for an unparseable request, if it names its transaction well enough."""
    if not _REQUEST_LINE.match(data):
        return None
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] + b"\n"
    lines = [m.group(0).rstrip(b"\r\n") for m in _TXN_HEADERS.finditer(head)]
    names = {line.split(b":", 1)[0].strip().lower() for line in lines}
    if not {b"via", b"v"} & names or not {b"cseq"} & names or not ({b"call-id", b"i"} & names):
        return None
    phrase = reason.encode("ascii", "replace")[:100].replace(b"\r", b" ").replace(b"\n", b" ")
    return b"SIP/2.0 400 " + phrase + b"\r\n" + b"\r\n".join(lines) + b"\r\nContent-Length: 0\r\n\r\n"


def parse_hostport(value: str, setting: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ConfigError(f"setting {setting}: expected host:port, got {value!r}", setting=setting)
    return host.strip("[]") or "0.0.0.0", int(port)


class UdpPeer:
    transport = "udp"
    reliable = False

    def __init__(self, sock: asyncio.DatagramTransport, address: tuple[str, int]) -> None:
        self._sock = sock
        self.address = address

    def send(self, message: SipMessage) -> None:
        if not self._sock.is_closing():
            self._sock.sendto(serialise(message), self.address)


class StreamPeer:
    reliable = True

    def __init__(self, writer: asyncio.StreamWriter, transport: str, address: tuple[str, int]) -> None:
        self._writer = writer
        self.transport = transport
        self.address = address

    def send(self, message: SipMessage) -> None:
        if not self._writer.is_closing():
            self._writer.write(serialise(message))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if not data.strip():  # a CRLF keepalive
            return
        try:
            message = parse_message(data)
        except SipError as exc:
            self.server.counters.malformed += 1
            answer = bad_request(data, exc.message)
            if answer is not None:
                self.transport.sendto(answer, addr)
            log.debug("malformed SIP datagram from %s: %s", addr[0], exc.message)
            return
        self.server.counters.messages += 1
        self.server.handler.receive(message, UdpPeer(self.transport, (addr[0], addr[1])))


class SipServer:
    """The listening sockets: UDP and TCP on one address, TLS on its own port."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler
        self.counters = TransportCounters()
        self.ports: dict[str, int] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(
        self, listen: tuple[str, int], *, tls: tuple[tuple[str, int], ssl.SSLContext] | None = None
    ) -> None:
        host, port = listen
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
        self._udp = transport
        self.ports["udp"] = int(transport.get_extra_info("sockname")[1])
        tcp_port = port or self.ports["udp"]
        try:
            server = await asyncio.start_server(self._stream_handler("tcp"), host, tcp_port)
        except OSError:
            if port:
                raise
            server = await asyncio.start_server(self._stream_handler("tcp"), host, 0)
        self._servers.append(server)
        self.ports["tcp"] = int(server.sockets[0].getsockname()[1])
        if tls is not None:
            (tls_host, tls_port), context = tls
            server = await asyncio.start_server(self._stream_handler("tls"), tls_host, tls_port, ssl=context)
            self._servers.append(server)
            self.ports["tls"] = int(server.sockets[0].getsockname()[1])

    def _stream_handler(self, kind: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = writer.get_extra_info("peername") or ("", 0)
            if len(self._connections) >= MAX_CONNECTIONS:
                writer.close()
                return
            self._connections.add(writer)
            self.counters.connections += 1
            peer = StreamPeer(writer, kind, (str(address[0]), int(address[1])))
            framer = SipStreamFramer()
            try:
                while data := await reader.read(65536):
                    pings = framer.keepalives
                    try:
                        messages = framer.feed(data)
                    except SipError as exc:  # framing is lost: answer if we can, then close
                        self.counters.malformed += 1
                        answer = bad_request(data, exc.message)
                        if answer is not None:
                            writer.write(answer)
                        break
                    if framer.keepalives > pings:  # RFC 5626 §3.5.1: a CRLF pong per ping
                        writer.write(b"\r\n")
                    for message in messages:
                        self.counters.messages += 1
                        self.handler.receive(message, peer)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                log.debug("SIP %s connection from %s ended: %s", kind, address, exc)
            finally:
                self._connections.discard(writer)
                writer.close()

        return handle

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            server.close()
        for writer in list(self._connections):
            writer.close()
        for server in self._servers:
            await server.wait_closed()

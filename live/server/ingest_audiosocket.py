"""Asterisk AudioSocket's glue: two TCP listeners started and stopped with the application.

Off unless ``LIVE_AUDIOSOCKET_LISTEN`` is set (``host:port``). The caller's audio connects to
that port, the agent's to the next one (``live/ingest/audiosocket.py`` says why). AudioSocket
has no authentication, so only loopback and the addresses or networks of
``LIVE_AUDIOSOCKET_ALLOW`` may connect; anyone else is closed at once and counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..errors import ConfigError, LiveError
from ..ingest.audiosocket import AudioSocketStream
from ..ingest.joined import JoinedCalls
from ..ingest.sip.transport import parse_hostport
from ..types import LegName
from .ingest_sip import allow_checker
from .state import STATE

log = logging.getLogger(__name__)

UUID_TIMEOUT_S = 10.0  # Asterisk sends the UUID at once
IDLE_TIMEOUT_S = 30.0  # Asterisk sends audio every 20 ms while the channel is up
READ_BYTES = 4096


@dataclass(slots=True)
class AudioSocketCounters:
    accepted: int = 0
    refused: int = 0  # not on the allow list, or over the connection limit
    protocol_errors: int = 0
    dropped_packets: int = 0


@dataclass(eq=False)
class AudioSocketServer:
    """The listeners, the open connections (closed at shutdown) and the counters."""

    calls: JoinedCalls
    allowed: Callable[[str], bool]
    max_connections: int
    counters: AudioSocketCounters = field(default_factory=AudioSocketCounters)
    servers: list[asyncio.Server] = field(default_factory=list)
    connections: set[asyncio.Task[None]] = field(default_factory=set)

    def metric_lines(self) -> list[str]:
        c = self.counters
        return [
            "# TYPE live_audiosocket_connections_total counter",
            f'live_audiosocket_connections_total{{result="accepted"}} {c.accepted}',
            f'live_audiosocket_connections_total{{result="refused"}} {c.refused}',
            "# TYPE live_audiosocket_protocol_errors_total counter",
            f"live_audiosocket_protocol_errors_total {c.protocol_errors}",
            "# TYPE live_audiosocket_packets_dropped_total counter",
            f"live_audiosocket_packets_dropped_total {c.dropped_packets}",
        ]

    def handler(self, leg: LegName) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.connections.add(task)
            try:
                await self._serve(leg, reader, writer)
            finally:
                self.connections.discard(task)
                writer.close()

        return handle

    async def _serve(self, leg: LegName, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        if not self.allowed(str(peer[0])) or len(self.connections) > self.max_connections:
            self.counters.refused += 1
            log.warning("AudioSocket connection from %s refused", peer[0])
            return
        self.counters.accepted += 1
        stream = AudioSocketStream(self.calls, leg)
        try:
            while True:
                timeout = UUID_TIMEOUT_S if stream.state == "new" else IDLE_TIMEOUT_S
                try:
                    data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
                except (TimeoutError, ConnectionError):
                    break
                if not data:
                    break
                dropped = stream.dropped_packets
                try:
                    going = await stream.handle_data(data, time.monotonic_ns())
                except LiveError as exc:
                    self.counters.protocol_errors += 1
                    log.warning("AudioSocket connection from %s closed: %s", peer[0], exc.message)
                    break
                self.counters.dropped_packets += stream.dropped_packets - dropped
                if not going:
                    break
        finally:
            await stream.close()

    async def aclose(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))
"""Who may always connect to AudioSocket, besides ``audiosocket_allow``."""

AUDIOSOCKET: web.AppKey[AudioSocketServer] = web.AppKey("live_audiosocket", AudioSocketServer)


def setup(app: web.Application) -> None:
    state = app[STATE]
    settings = state.settings
    if not settings.audiosocket.listen:
        return
    host, port = parse_hostport(settings.audiosocket.listen, "audiosocket_listen")
    if port == 65535:
        raise ConfigError("setting audiosocket_listen: the agent's port (port + 1) must exist", setting="audiosocket_listen")
    check = allow_checker(LOOPBACK + settings.audiosocket.allow)
    server = AudioSocketServer(JoinedCalls(state.node.calls), check, settings.limits.ingest_connections)
    state.metric_sources.append(server.metric_lines)

    async def listening(app: web.Application) -> AsyncIterator[None]:
        # The caller's port, then the agent's (port 0, for tests: any free port, the agent's
        # then being whatever the system gives too; see ``ports``).
        legs: tuple[tuple[LegName, int], ...] = (("caller", port), ("agent", port + 1 if port else 0))
        for leg, leg_port in legs:
            server.servers.append(await asyncio.start_server(server.handler(leg), host, leg_port))
        log.info("AudioSocket listening on %s (caller) and %s (agent)", *ports(server))
        yield
        await server.aclose()

    app[AUDIOSOCKET] = server
    app.cleanup_ctx.append(listening)


def ports(server: AudioSocketServer) -> list[int]:
    """The (caller, agent) ports actually bound."""
    return [int(s.sockets[0].getsockname()[1]) for s in server.servers if s.sockets]


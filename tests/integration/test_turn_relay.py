"""Media through a real TURN server (Debian's coturn, started here with a static user): a
supervisor whose browser may only use relayed candidates (``iceTransportPolicy: "relay"``,
what a desk behind a strict NAT or firewall amounts to) hears both legs of a call, and the
server, given the same TURN server by ``LIVE_ICE_SERVERS``, offers relayed candidates too."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import RTCIceServer

from tests.helpers import PortTaken, port_taken, start_on_free_port
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for, wait_for_blocking

INGEST_SECRET = "turn-test-ingest-secret"
TURN_USER, TURN_PASSWORD, REALM = "live", "turn-test-password", "live.test"
RELAY_PORTS = 64


class Coturn:
    """``turnserver`` on loopback: long-term credentials, one static user, no TLS."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="live-turn-"))
        self.log = self.dir / "turnserver.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def start(self) -> Coturn:
        return start_on_free_port(self._start, "turnserver")

    def _start(self, port: int) -> Coturn:
        binary = shutil.which("turnserver") or "/usr/bin/turnserver"
        if not Path(binary).exists():
            pytest.fail("coturn (turnserver) is missing: run deploy/run-tests.sh, which installs it")
        low = min(port + 1, 65535 - RELAY_PORTS)
        self.log.write_bytes(b"")
        self.process = process = subprocess.Popen(
            [binary, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}", "--relay-ip=127.0.0.1",
             f"--min-port={low}", f"--max-port={low + RELAY_PORTS}", "--lt-cred-mech",
             f"--user={TURN_USER}:{TURN_PASSWORD}", f"--realm={REALM}", "--no-tls", "--no-dtls",
             "--no-cli", "--fingerprint", "--allow-loopback-peers", "--simple-log", "--verbose",
             f"--userdb={self.dir / 'turndb'}",
             f"--log-file={self.log}", f"--pidfile={self.dir / 'turnserver.pid'}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

        def listening() -> bool:
            output = self.log.read_text(errors="replace")
            if process.poll() is not None:
                port_taken(output, port, "turnserver")
                raise RuntimeError(f"turnserver exited with {process.returncode}:\n{output}")
            if "Cannot bind" in output or "bind: Address already in use" in output:
                self.stop()
                raise PortTaken(f"turnserver could not listen on port {port}")
            return "Total General servers" in output

        try:
            wait_for_blocking(listening, 30, f"turnserver on port {port}", every=0.1)
        except BaseException:
            self.stop()
            raise
        self.port = port
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def coturn() -> Iterator[Coturn]:
    server = Coturn().start()
    yield server
    server.cleanup()


@pytest.fixture
def node(tmp_path: Path, coturn: Coturn) -> Iterator[tuple[LiveProcess, str]]:
    live_cli(tmp_path, "users", "add", "sup", "--role", "supervisor", "--name", "Sam")
    token = live_cli(tmp_path, "users", "token", "sup")
    env = {
        "LIVE_INGEST_SECRET": INGEST_SECRET,
        "LIVE_ICE_SERVERS": f"{coturn.url}|{TURN_USER}|{TURN_PASSWORD}",
    }
    process = start_serve(tmp_path, env)
    yield process, token
    assert process.stop() == 0, process.log()


def ice_servers_of(node: LiveProcess, token: str) -> list[RTCIceServer]:
    """What the console hands the browser (``GET /api/me``)."""
    request = urllib.request.Request(f"{node.base_url}/api/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        servers = json.load(response)["ice_servers"]
    return [RTCIceServer(s["urls"], s.get("username"), s.get("credential")) for s in servers]


def candidate_types(sdp: str) -> set[str]:
    return {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def test_relay_only_listener_hears_both_legs_through_turn(
    node: tuple[LiveProcess, str], coturn: Coturn
) -> None:
    server, token = node
    ice_servers = ice_servers_of(server, token)
    assert [s.urls for s in ice_servers] == [coturn.url]
    sender = TwilioSender(
        f"{server.ws_url}/ingest/twilio", "CA-turn-1", tone(440, 2.0, 0.5), tone(660, 2.0, 0.08), consent="granted"
    )
    await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
    listener = Listener(server.base_url, token, ice_servers=ice_servers, relay_only=True)
    try:
        answer = await listener.listen("CA-turn-1")
        # The browser offered relayed candidates only; the server, given the same TURN
        # server, offers a relayed one beside its own.
        assert candidate_types(listener.pc.localDescription.sdp) == {"relay"}
        assert "relay" in candidate_types(answer["sdp"])
        await listener.wait_frames(50, timeout=30)
        agent, caller = listener.stats["agent"].level(), listener.stats["caller"].level()
        assert agent > 0.2
        assert 0.01 < caller < agent
        assert await listener.stop() == 200
    finally:
        await listener.close()
        await sender.stop()
    # coturn's own account: it granted relay allocations to the listener's user.
    await wait_for(lambda: "ALLOCATE processed, success" in coturn.log.read_text(errors="replace"), 10, "coturn to log an allocation")

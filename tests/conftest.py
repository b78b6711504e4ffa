"""Shared fixtures: a private redis-server (never the machine's shared one) and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import redis

from tests.helpers import port_taken, start_on_free_port
from tests.support.wait import wait_for_blocking

pytest_plugins = ["tests.conftest_pg"]

# Property tests run a fixed number of examples however busy the machine is: no per-example
# deadline and no "too slow" health check, both of which measure the machine, not the code.
hypothesis.settings.register_profile(
    "live", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("live")


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, nothing persisted.

    The port is chosen at the first ``start()`` and kept, so a test may stop and start the
    server again at the same address.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="live-redis-"))
        self.log = self.dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, "start the server first"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.port is None:
            return start_on_free_port(self._start, "redis-server")
        return self._start(self.port)

    def _start(self, port: int) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.log.write_bytes(b"")
        self.process = process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            if process.poll() is not None:
                output = self.log.read_text(errors="replace")
                port_taken(output, port, "redis-server")
                raise RuntimeError(f"redis-server exited with {process.returncode}:\n{output}")
            with redis.Redis(port=port, socket_connect_timeout=0.2) as client:
                try:
                    return bool(client.ping())
                except redis.exceptions.ConnectionError:
                    return False

        try:
            wait_for_blocking(answers, 30, f"redis-server on port {port}")
        except BaseException:
            self.stop()
            raise
        self.port = port
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the private redis-server for each test."""
    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    yield redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may kill and restart."""
    server = RedisServer().start()
    yield server
    server.cleanup()

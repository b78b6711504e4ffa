"""A real PostgreSQL for tests, started by the tests themselves (never the shared one on 5432).

``postgres_url`` (session scope) runs ``initdb`` into a fresh temporary directory, starts
``postgres`` on a free loopback port with its socket in that directory and ``fsync=off``
(speed; durability is not under test here), creates a database and yields its URL; the
server is stopped and the directory removed afterwards. ``postgres_db_url`` gives each test
a database of its own on that server.

When the tests run as root, PostgreSQL refuses to start, so its programs run as the
``postgres`` system user (created if missing) and the directory is handed to that user.

Use: ``from tests.conftest_pg import postgres_db_url, postgres_url  # noqa: F401`` in a
test module, or ``pytest_plugins = ["tests.conftest_pg"]`` in the root ``conftest.py``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import port_taken, start_on_free_port
from tests.support.wait import wait_for_blocking

PG_USER = "live"


def _bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _system_user() -> dict[str, Any]:
    """Popen arguments that run a program as ``postgres`` when we are root (else none)."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PostgresServer:
    """One throwaway PostgreSQL server."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="live-pg-"))
        self.data = self.base / "data"
        self.port: int | None = None  # chosen at the first launch, kept for relaunches
        self.as_user = _system_user()
        self.env = {**os.environ, "LC_ALL": "C", "HOME": str(self.base)}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.base / "postgres.log"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            env=self.env,
            cwd=self.base,
            capture_output=True,
            check=False,
            **self.as_user,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace')}"
            )

    def start(self) -> None:
        if self.as_user:
            os.chown(self.base, self.as_user["user"], self.as_user["group"])
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        start_on_free_port(self._launch_on, "postgres")

    def launch(self) -> None:
        """Start ``postgres`` on the initialised directory again (after ``pg_ctl stop``)."""
        assert self.port is not None, "start() the server first"
        self._launch_on(self.port)

    def _launch_on(self, port: int) -> None:
        self.port = port
        self.log.write_bytes(b"")
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the server process
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-k",
                str(self.base),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ],
            env=self.env,
            cwd=self.base,
            stdout=log,
            stderr=subprocess.STDOUT,
            **self.as_user,
        )
        log.close()
        process = self.process

        def accepts() -> bool:
            if process.poll() is not None:
                output = self.log.read_text(errors="replace")
                port_taken(output, port, "postgres")
                raise RuntimeError(f"postgres exited: {output}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                self._run("pg_isready", "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER)
            except (OSError, RuntimeError):
                return False
            return True

        try:
            wait_for_blocking(accepts, 60, f"postgres on port {port}", every=0.1)
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait()
            raise

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name)
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries (initdb, postgres) are missing: run deploy/run-tests.sh, which installs them")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database on a PostgreSQL server the tests started (shared by the session)."""
    return postgres_server.create_database("live_test")


@pytest.fixture
def postgres_db_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for one test."""
    return postgres_server.create_database(f"t_{secrets.token_hex(6)}")

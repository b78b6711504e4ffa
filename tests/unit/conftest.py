"""Keep ``tests/unit`` pure: no sockets, no subprocesses, no services.

A unit test that opens a socket (a server, a client, Redis, PostgreSQL) or starts a program
(node, a browser, redis-server) fails here with a message saying where it belongs:
``tests/integration``. The guard is installed for the whole run of each unit test, fixtures
included, and removed afterwards so other directories in the same run are untouched.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest


class ImpureUnitTest(AssertionError):
    """A unit test reached for the outside world."""


def _refuse(what: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise ImpureUnitTest(
            f"tests/unit must stay pure, but this test {what}: move it to tests/integration"
        )

    return refuse


_socket_init = socket.socket.__init__


def _no_new_socket(self: socket.socket, family: Any = -1, type: Any = -1, proto: Any = -1,
                   fileno: Any = None) -> None:
    # Wrapping a descriptor that already exists stays allowed: socket.socketpair does that
    # for the event loop's self-pipe, two local sockets that never leave the process.
    if fileno is None:
        _refuse("opened a socket")()
    _socket_init(self, family, type, proto, fileno)


@pytest.fixture(autouse=True)
def _pure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "__init__", _no_new_socket)
    monkeypatch.setattr(socket, "create_connection", _refuse("opened a connection"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse("resolved a host name"))
    monkeypatch.setattr(subprocess, "Popen", _refuse("started a program"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", _refuse("started a program"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", _refuse("started a program"))
    yield

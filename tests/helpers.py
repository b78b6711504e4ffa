"""Small helpers shared by tests of every layer; nothing here imports the server.

Ports: a server inside the test process binds port 0 and reads the port back
(``listening_socket``), so no other process can take it in between. A program of its own
(redis-server, postgres, node, ``live serve``) must be told its port up front: it gets one
from ``free_port``, and ``start_on_free_port`` starts it again on another port when it
lost that one to another process in the meantime (``PortTaken``), saying so in the log.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
LOG = logging.getLogger("tests.ports")

# How redis-server, postgres, node and Python report a port that is taken.
ADDRESS_IN_USE = re.compile(r"address already in use|EADDRINUSE|Errno 98", re.IGNORECASE)


class PortTaken(RuntimeError):
    """A program could not listen: another process took its port first."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it).

    Only for programs that must be told a port; start them with ``start_on_free_port``.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket(port: int = 0, host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to ``port`` (0: the OS picks one; read it back with getsockname).

    A given port is bound with SO_REUSEADDR, so a server can come back on the port it had.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def port_taken(output: str, port: int, what: str) -> None:
    """Raise ``PortTaken`` if ``output`` (a program's log) says its port was in use."""
    if ADDRESS_IN_USE.search(output):
        raise PortTaken(f"{what} could not listen on port {port}: address already in use")


def start_on_free_port(start: Callable[[int], T], what: str, *, attempts: int = 5) -> T:
    """``start(port)`` on a free port, again on another one each time it raises ``PortTaken``."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        try:
            return start(port)
        except PortTaken as taken:
            LOG.warning("%s (attempt %d of %d); trying another port", taken, attempt, attempts)
    raise PortTaken(f"{what}: {attempts} ports in a row were taken by other processes")


def reserved_port() -> socket.socket:
    """A port held for a server started later in this process: a socket bound with
    SO_REUSEADDR and not listening. No other process is given that port while it is open;
    the server binds it again (``listening_socket(port)``). Close it when done."""
    return listening_socket(0)

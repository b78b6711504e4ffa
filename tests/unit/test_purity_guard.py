"""The guard in tests/unit/conftest.py: a unit test that reaches for the outside world fails."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from tests.unit.conftest import ImpureUnitTest


def test_a_socket_is_refused() -> None:
    with pytest.raises(ImpureUnitTest, match="tests/integration"):
        socket.socket()
    with pytest.raises(ImpureUnitTest):
        socket.create_connection(("127.0.0.1", 9))


def test_a_program_is_refused() -> None:
    with pytest.raises(ImpureUnitTest, match="started a program"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


async def test_a_connection_from_the_event_loop_is_refused() -> None:
    with pytest.raises(ImpureUnitTest):
        await asyncio.open_connection("127.0.0.1", 9)
    with pytest.raises(ImpureUnitTest):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


def test_the_event_loops_own_socket_pair_still_works() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"

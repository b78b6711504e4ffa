"""The ledger's store fails under a running server, with real parts (decisions 4 and 10).

* PostgreSQL frozen (SIGSTOP on the postmaster and every backend: a hung server, not a
  refused connection) while a listen starts and while one stops, briefly and past the
  store's command timeout (30 s, ``PostgresStore``); and stopped with ``pg_ctl stop`` and
  started again. A start either waits and succeeds or is refused with 503; no audio ever
  flows before its ``listen.started`` is on record. An end is written with its true time,
  at once or from the spool once the server is back.
* SQLite on a filesystem that turns read-only under the running server: ext4 on a loop
  device mounted ``errors=remount-ro``, with an error triggered through
  ``/sys/fs/ext4/<dev>/trigger_fs_error`` (the kernel's emergency read-only remount, which
  also hits files already open; ``mount -o remount,ro`` is refused with EBUSY while SQLite
  holds the ledger open, so it cannot make this fault). With the ledger alone on that disk,
  the end is spooled in the data directory and lands with its true time after the disk is
  repaired. With the whole data directory there (the embedded default), the spool is
  read-only too: the end cannot be kept, and the next start closes the session as
  ``node-lost`` between its last proof of life and the restart, with the agent's notice.

Every wait is bounded (``asyncio.wait_for`` / ``wait_for``) and the frozen server is always
thawed in ``finally``, so a hung connection fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_pg import PostgresServer, _bindir
from tests.integration.test_ledger_outage import _ready, _unready, ended
from tests.integration.test_notices import api, policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)
COMMAND_TIMEOUT_S = 30  # PostgresStore's asyncpg command_timeout


class OwnPostgres(PostgresServer):
    """A PostgreSQL server of the test's own, which it may freeze, stop and start again."""

    def pids(self) -> list[int]:
        assert self.process is not None
        main = self.process.pid
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{main}/task"):
                with open(f"/proc/{main}/task/{task}/children") as f:
                    children += [int(p) for p in f.read().split()]
        return [main, *children]

    def freeze(self) -> None:
        for pid in self.pids():  # the postmaster first: it can start no new backend
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for pid in reversed(self.pids()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def pg_ctl_stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
        assert self.process is not None
        self.process.wait(30)


@pytest.fixture
def own_postgres() -> Iterator[tuple[OwnPostgres, str]]:
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries (initdb, postgres) are missing: run deploy/run-tests.sh")
    server = OwnPostgres(bindir)
    try:
        server.start()
        yield server, server.create_database("faults")
    finally:
        server.thaw()
        server.stop()


async def call_and_listener(server: RunningServer, call_id: str) -> tuple[TwilioSender, Listener]:
    sender = TwilioSender(server.twilio_url, call_id, LOUD, LOUD, agent="agent")
    await sender.start()
    await wait_call(server, call_id)
    return sender, Listener(server.base_url, server.tokens["sup"])


async def listen_status(listener: Listener, call_id: str) -> tuple[int, dict[str, Any]]:
    """The status of a listen request (201 with the answer applied, or the refusal)."""
    try:
        return 201, await listener.listen(call_id, purpose="training")
    except RuntimeError as exc:  # Listener raises "listen refused: <status> <body>"
        status = int(str(exc).split()[2])
        return status, {"error": str(exc)}


async def starts(server: RunningServer, call_id: str) -> list[Any]:
    entries = await server.state.node.ledger.entries(kind="listen.started")
    return [e for e in entries if e.fields.get("call_id") == call_id]


async def notices(server: RunningServer) -> set[str]:
    status, body = await api(server, "GET", "/api/notices")
    assert status == 200, body
    return {str(n["session_id"]) for n in body["notices"]}


async def _has_notice(server: RunningServer, session_id: str) -> bool:
    seen = await notices_once_current(server)
    return seen is not None and session_id in seen


async def notices_once_current(server: RunningServer) -> set[str] | None:
    """The agent's notices, or ``None`` while the node refuses sessions because it could not
    read the revocations from the (just thawed) shared database lately: fail closed."""
    status, body = await api(server, "GET", "/api/notices")
    if status == 503 and body["error"]["code"] == "revocations_unavailable":
        return None
    assert status == 200, body
    return {str(n["session_id"]) for n in body["notices"]}


async def test_postgresql_frozen_briefly_while_a_listen_starts_and_stops(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    """A freeze shorter than the command timeout: the start waits and then succeeds, with no
    audio before it is on record; the stop waits and its end has the time it was asked for."""
    pg, url = own_postgres
    settings = {"policy_file": policy(tmp_path, "after_call"), "ledger_url": url}
    async with running_server(tmp_path / "data", **settings) as server:
        sender, listener = await call_and_listener(server, "CA-freeze")
        try:
            pg.freeze()
            try:
                requested = time.time()
                start = asyncio.create_task(listen_status(listener, "CA-freeze"))
                await asyncio.wait({start}, timeout=2.0)
                assert not start.done(), "a start answered while the ledger was frozen"
                assert listener.stats["agent"].frames == 0 and listener.stats["caller"].frames == 0
            finally:
                pg.thaw()
            status, answer = await asyncio.wait_for(start, COMMAND_TIMEOUT_S + 30)
            assert status == 201, answer
            session_id = str(answer["session_id"])
            [started] = await starts(server, "CA-freeze")
            assert started.fields["session_id"] == session_id and requested <= started.at
            await listener.wait_frames(5, timeout=15)

            pg.freeze()
            try:
                before = time.time()
                stop = asyncio.create_task(listener.stop())
                await asyncio.wait({stop}, timeout=2.0)
            finally:
                pg.thaw()
            assert await asyncio.wait_for(stop, COMMAND_TIMEOUT_S + 30) == 200
            [end] = await wait_for(lambda: ended(server, session_id), 30, "the end on record")
            # Its time is when the stop was asked for, not when the ledger came back.
            assert before <= end.at <= before + 1.0 and end.fields["reason"] == "stopped"
            assert session_id in await notices(server)
        finally:
            await listener.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok


async def test_postgresql_frozen_past_the_command_timeout_refuses_the_start_and_spools_the_end(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    pg, url = own_postgres
    settings = {"policy_file": policy(tmp_path, "after_call"), "ledger_url": url}
    async with running_server(tmp_path / "data", **settings) as server:
        sender, running = await call_and_listener(server, "CA-frozen")
        starting = Listener(server.base_url, server.tokens["sup"])
        try:
            status, answer = await listen_status(running, "CA-frozen")
            assert status == 201, answer
            session_id = str(answer["session_id"])
            await running.wait_frames(5, timeout=15)
            pg.freeze()
            try:
                # Not ready within seconds, long before the database's timeouts give up.
                _, why = await wait_for(lambda: _unready(server.base_url), 30, "/readyz 503 on a frozen ledger")
                assert "does not answer" in why["reason"], why
                before = time.time()
                stop = asyncio.create_task(running.stop())
                start = asyncio.create_task(listen_status(starting, "CA-frozen"))
                # Measured: a ledger call on a frozen server gives up after about 60 s
                # (BEGIN, then ROLLBACK, each bounded by the command timeout).
                done, _ = await asyncio.wait({stop, start}, timeout=4 * COMMAND_TIMEOUT_S)
                assert done == {stop, start}, "requests still hanging on a frozen ledger"
                assert stop.result() == 200
                refused, body = start.result()
                assert refused == 503, body
                assert starting.stats["agent"].frames == 0 and starting.stats["caller"].frames == 0
                _, why = await wait_for(lambda: _unready(server.base_url), 30, "/readyz 503")
                assert "ledger" in why["reason"]
                assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
            finally:
                pg.thaw()
            # (GET /api/notices is asked only after the thaw: it records the delivery through
            # the ledger, and on a frozen server that takes a command timeout or two. Until the
            # node has read the revocations again, it refuses every session: fail closed.)
            await wait_for(lambda: _has_notice(server, session_id), 4 * COMMAND_TIMEOUT_S, "the notice after the thaw")
            [end] = await wait_for(lambda: ended(server, session_id), 60, "the spooled end on record")
            assert before <= end.at <= before + 1.0 and end.fields["reason"] == "stopped"
            assert len(await starts(server, "CA-frozen")) == 1  # the refused start is not on record
            await wait_for(lambda: _ready(server.base_url), 30, "/readyz ready again")
        finally:
            await starting.close()
            await running.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok


async def test_postgresql_stopped_and_started_again_while_a_listen_starts_and_stops(
    tmp_path: Path, own_postgres: tuple[OwnPostgres, str]
) -> None:
    pg, url = own_postgres
    settings = {"policy_file": policy(tmp_path, "after_call"), "ledger_url": url}
    async with running_server(tmp_path / "data", **settings) as server:
        sender, running = await call_and_listener(server, "CA-pgstop")
        starting = Listener(server.base_url, server.tokens["sup"])
        again = Listener(server.base_url, server.tokens["sup"])
        try:
            status, answer = await listen_status(running, "CA-pgstop")
            assert status == 201, answer
            session_id = str(answer["session_id"])
            await running.wait_frames(5, timeout=15)
            await asyncio.to_thread(pg.pg_ctl_stop)
            try:
                before = time.time()
                assert await asyncio.wait_for(running.stop(), COMMAND_TIMEOUT_S + 30) == 200
                after = time.time()
                refused, body = await asyncio.wait_for(
                    listen_status(starting, "CA-pgstop"), 2 * COMMAND_TIMEOUT_S + 30
                )
                assert refused == 503, body
                assert starting.stats["agent"].frames == 0 and starting.stats["caller"].frames == 0
                await wait_for(lambda: _unready(server.base_url), 30, "/readyz 503")
                assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
            finally:
                await asyncio.to_thread(pg.launch)
            [end] = await wait_for(lambda: ended(server, session_id), 60, "the spooled end on record")
            assert before <= end.at <= after and end.fields["reason"] == "stopped"
            await wait_for(lambda: _ready(server.base_url), 30, "/readyz ready again")
            status, answer = await asyncio.wait_for(listen_status(again, "CA-pgstop"), 60)
            assert status == 201, answer  # the pool connects again
            assert len(await starts(server, "CA-pgstop")) == 2
            # The notice store is the database too: the notice, owed meanwhile, is given now.
            await wait_for(
                lambda: _has_notice(server, session_id), 4 * COMMAND_TIMEOUT_S, "the owed notice after the restart"
            )
        finally:
            await again.close()
            await starting.close()
            await running.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok


class Ext4Disk:
    """ext4 on a loop device, mounted ``errors=remount-ro``: ``fail()`` makes the kernel
    remount it read-only at once (as after a disk error), ``repair()`` unmounts, checks and
    mounts it read-write again."""

    def __init__(self, image: Path, path: Path) -> None:
        self.image, self.path = image, path

    def mount(self) -> None:
        subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.path)],
            check=True, capture_output=True,
        )

    @property
    def device(self) -> str:
        out = subprocess.run(
            ["findmnt", "-no", "SOURCE", str(self.path)], check=False, capture_output=True, text=True
        )
        return os.path.basename(out.stdout.strip())

    def fail(self) -> None:
        with open(f"/sys/fs/ext4/{self.device}/trigger_fs_error", "w") as f:
            f.write("live test: read-only fault\n")
        options = subprocess.run(
            ["findmnt", "-no", "OPTIONS", str(self.path)], check=False, capture_output=True, text=True
        )
        assert "emergency_ro" in options.stdout or options.stdout.startswith("ro"), options.stdout

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], check=False)

    def repair(self) -> None:
        self.unmount()
        fsck = subprocess.run(
            ["e2fsck", "-fy", str(self.image)], check=False, capture_output=True, text=True
        )
        assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
        self.mount()


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    image, path = tmp_path / "disk.img", tmp_path / "ext4-disk"
    path.mkdir()
    try:
        with open(image, "wb") as f:
            f.truncate(32 * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        disk = Ext4Disk(image, path)
        disk.mount()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot make an ext4 loop mount here (the tests run as root with loop devices): {exc}")
    if not os.path.exists(f"/sys/fs/ext4/{disk.device}/trigger_fs_error"):
        disk.unmount()
        pytest.fail("this kernel has no ext4 trigger_fs_error")
    try:
        yield disk
    finally:
        disk.unmount()


async def test_a_ledger_disk_turned_read_only_while_listening_spools_the_end(
    tmp_path: Path, ext4_disk: Ext4Disk
) -> None:
    """The ledger alone on the failing disk; the data directory (and the spool) elsewhere."""
    data = tmp_path / "data"
    settings = {
        "policy_file": policy(tmp_path, "after_call"),
        "ledger_url": f"sqlite:///{ext4_disk.path}/ledger.sqlite3",
    }
    async with running_server(data, **settings) as server:
        sender, listener = await call_and_listener(server, "CA-ro")
        try:
            status, answer = await listen_status(listener, "CA-ro")
            assert status == 201, answer
            session_id = str(answer["session_id"])
            await listener.wait_frames(5, timeout=15)
            ext4_disk.fail()
            before = time.time()
            assert await asyncio.wait_for(listener.stop(), 30) == 200
            after = time.time()
            _, why = await wait_for(lambda: _unready(server.base_url), 30, "/readyz 503")
            assert "ledger" in why["reason"]
            assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
            assert session_id in await notices(server)  # the notice store is on the data disk
            second = Listener(server.base_url, server.tokens["sup"])
            try:
                refused, body = await asyncio.wait_for(listen_status(second, "CA-ro"), 30)
            finally:
                await second.close()
            assert refused == 503, body  # fail closed: no start can be recorded
        finally:
            await listener.close()
            await sender.stop()
    ext4_disk.repair()
    async with running_server(data, **settings) as server:
        [end] = await ended(server, session_id)  # written from the spool at start
        assert before <= end.at <= after and end.fields["reason"] == "stopped"
        assert await server.state.node.spool.pending() == []
        assert (await server.state.node.ledger.verify()).ok


async def test_a_data_disk_turned_read_only_while_listening_is_closed_with_bounds_at_restart(
    tmp_path: Path, ext4_disk: Ext4Disk
) -> None:
    """The embedded default, everything on the failing disk: the spool is read-only too, so
    the end cannot be kept; the next start closes the session as ``node-lost`` between its
    last proof of life (before the disk failed) and the restart, and tells the agent."""
    data = ext4_disk.path / "data"
    # One node id across the restart (the default is node-<port>, and the port changes).
    settings = {"policy_file": policy(tmp_path, "after_call"), "node_id": "ro-node"}
    async with running_server(data, **settings) as server:
        sender, listener = await call_and_listener(server, "CA-ro-all")
        try:
            status, answer = await listen_status(listener, "CA-ro-all")
            assert status == 201, answer
            session_id = str(answer["session_id"])
            await listener.wait_frames(5, timeout=15)
            alive = await wait_for(
                lambda: server.state.node.spool.last_alive(server.state.node.node_id),
                5, "a proof of life",
            )
            assert session_id in alive
            ext4_disk.fail()
            failed = time.time()
            before = time.time()
            assert await asyncio.wait_for(listener.stop(), 30) == 200
            after = time.time()
            await wait_for(lambda: _unready(server.base_url), 30, "/readyz 503")
        finally:
            await listener.close()
            await sender.stop()
    ext4_disk.repair()
    restarting = time.time()
    async with running_server(data, **settings) as server:
        restarted = time.time()
        [end] = await ended(server, session_id)
        f = end.fields
        assert f["reason"] == "node-lost"
        assert f["ended_after"] <= failed <= before  # the last proof of life came before the fault
        assert after <= restarting <= f["ended_before"] <= restarted
        assert session_id in await notices(server)
        assert (await server.state.node.ledger.verify()).ok


async def test_a_crash_between_the_end_and_its_notice_gives_the_notice_at_restart(tmp_path: Path) -> None:
    """The end is on record, then the node dies before the agent's notice is stored (found by
    the kill -9 rounds): the next start gives the notice, once."""
    data = tmp_path / "data"
    settings = {"policy_file": policy(tmp_path, "after_call"), "node_id": "notice-node"}
    async with running_server(data, **settings) as server:
        sender, listener = await call_and_listener(server, "CA-owed")
        try:
            status, answer = await listen_status(listener, "CA-owed")
            assert status == 201, answer
            session_id = str(answer["session_id"])
            board = server.state.node.notices

            async def dies_here(**_: Any) -> None:  # the process "dies" before the notice
                await asyncio.Event().wait()

            board.listen_ended = dies_here  # type: ignore[method-assign]
            stop = asyncio.create_task(listener.stop())
            [end] = await wait_for(lambda: ended(server, session_id), 30, "the end on record")
            assert end.fields["reason"] == "stopped"
            stop.cancel()
            await asyncio.gather(stop, return_exceptions=True)
            assert session_id not in await notices(server)
        finally:
            await listener.close()
            await sender.stop()
        # Leaving the block stops the server with the end path still hanging (cancelled):
        # no notice is stored and the proof of life stays, as after a kill -9.
    async with running_server(data, **settings) as server:
        status, body = await api(server, "GET", "/api/notices")
        assert status == 200
        [notice] = [n for n in body["notices"] if n["session_id"] == session_id]
        assert "purpose: Training" in notice["text"]
    async with running_server(data, **settings) as server:  # given once, not at every start
        status, body = await api(server, "GET", "/api/notices")
        assert [n["session_id"] for n in body["notices"]].count(session_id) == 1

"""Ends while the ledger cannot be written (architecture decision 10, COMPLIANCE.md 7).

The ledger lives on a small tmpfs the test mounts and fills (SQLite: "database or disk is
full"); the data directory, and so the spool, stay on the ordinary disk. A listen stopped
meanwhile is kept in the spool and lands with its true time and reason once the disk has
room, while the server runs and after a restart; ``/readyz`` says 503 with the reason while
the ledger cannot be written. ``kill -9`` while listening gives ``node-lost`` with the bounds
the node knows: the session's last proof of life (within a second of the kill) and the
restart, shown in the agent's CSV export.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from live.audit.spool import SPOOL_FILE
from tests.conftest import RedisServer
from tests.integration.test_crash_recovery import audit_verify
from tests.integration.test_notices import api, policy
from tests.integration.test_policy_enforced import wait_call
from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import live_cli, start_serve
from tests.support.server import RunningServer, running_server
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

LOUD = tone(440, 2.0, 0.5)


@pytest.fixture
def ledger_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (for the ledger, or a whole data directory), unmounted after the test."""
    disk = tmp_path / "ledger-disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot mount a tmpfs here (the tests run as root): {exc}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@contextlib.contextmanager
def disk_full(disk: Path) -> Iterator[None]:
    """Fill ``disk`` until the kernel says no space is left; free it on exit."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, block)
        yield
    finally:
        os.close(fd)
        filler.unlink()


async def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/readyz") as response:
        return response.status, await response.json()


async def metrics(base_url: str) -> set[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as response:
        return set((await response.text()).splitlines())


async def _metrics_have(base_url: str, lines: set[str]) -> bool:
    return lines <= await metrics(base_url)


async def ended(server: RunningServer, session_id: str) -> list[Any]:
    return await server.state.node.ledger.entries(kind="listen.ended", session_id=session_id)


async def start_listening(server: RunningServer, call_id: str) -> tuple[TwilioSender, Listener, str]:
    sender = TwilioSender(server.twilio_url, call_id, LOUD, LOUD, agent="agent")
    await sender.start()
    await wait_call(server, call_id)
    listener = Listener(server.base_url, server.tokens["sup"])
    answer = await listener.listen(call_id, purpose="training")
    return sender, listener, str(answer["session_id"])


async def test_an_end_while_the_ledger_disk_is_full_lands_with_its_time(
    tmp_path: Path, ledger_disk: Path
) -> None:
    settings = {
        "policy_file": policy(tmp_path, "after_call"),
        "ledger_url": f"sqlite:///{ledger_disk}/ledger.sqlite3",
    }
    async with running_server(tmp_path / "data", **settings) as server:
        sender, listener, session_id = await start_listening(server, "CA-full")
        try:
            assert (await readyz(server.base_url))[0] == 200
            with disk_full(ledger_disk):
                before = time.time()
                assert await listener.stop() == 200  # the listener is not kept waiting
                after = time.time()
                _, body = await wait_for(
                    lambda: _unready(server.base_url), 10, "/readyz to say the ledger is down"
                )
                assert body["status"] == "unavailable" and "ledger" in body["reason"]
                assert "full" in body["reason"]
                assert await ended(server, session_id) == []
                assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
                assert {"live_ledger_spooled 1", "live_ledger_writable 0"} <= await metrics(server.base_url)
                # The agent's notice does not wait for the ledger.
                status, notices = await api(server, "GET", "/api/notices")
                assert status == 200 and [n["session_id"] for n in notices["notices"]] == [session_id]
            [end] = await wait_for(lambda: ended(server, session_id), 30, "the spooled end on record")
            assert before <= end.at <= after and end.fields["reason"] == "stopped"
            assert end.fields["ended_at"] == end.at
            await wait_for(lambda: _ready(server.base_url), 30, "/readyz to say ready again")
            await wait_for(
                lambda: _metrics_have(server.base_url, {"live_ledger_spooled 0", "live_ledger_writable 1"}),
                10,
                "the metrics to show an empty spool",
            )
            # The notice's delivery, spooled too, is on record as well.
            await wait_for(
                lambda: server.state.node.ledger.entries(kind="notice.delivered"), 15, "notice.delivered"
            )
        finally:
            await listener.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok


async def test_an_end_spooled_before_a_restart_is_written_at_the_next_start(
    tmp_path: Path, ledger_disk: Path
) -> None:
    data = tmp_path / "data"
    settings = {
        "policy_file": policy(tmp_path, "after_call"),
        "ledger_url": f"sqlite:///{ledger_disk}/ledger.sqlite3",
    }
    with disk_full_later(ledger_disk) as fill:
        async with running_server(data, **settings) as server:
            sender, listener, session_id = await start_listening(server, "CA-restart")
            try:
                fill()
                before = time.time()
                assert await listener.stop() == 200
                after = time.time()
            finally:
                await listener.close()
                await sender.stop()
        # Stopped with the disk still full: the end waits in the spool, on the data disk.
        assert _spooled_sessions(data) == [session_id]
    async with running_server(data, **settings) as server:
        assert _spooled_sessions(data) == []
        [end] = await ended(server, session_id)
        assert end.fields["reason"] == "stopped" and before <= end.at <= after
        assert (await server.state.node.ledger.verify()).ok


@contextlib.contextmanager
def disk_full_later(disk: Path) -> Iterator[Any]:
    """``fill()`` fills ``disk`` when called; it is freed when the block ends."""
    stack = contextlib.ExitStack()

    def fill() -> None:
        stack.enter_context(disk_full(disk))

    with stack:
        yield fill


def _spooled_sessions(data: Path) -> list[str]:
    db = sqlite3.connect(data / SPOOL_FILE)
    try:
        return [r[0] for r in db.execute("SELECT session_id FROM spool_pending ORDER BY id")]
    finally:
        db.close()


async def _unready(base_url: str) -> tuple[int, dict[str, Any]] | None:
    status, body = await readyz(base_url)
    return (status, body) if status == 503 else None


async def _ready(base_url: str) -> bool:
    return (await readyz(base_url))[0] == 200


def _last_alive(data: Path, session_id: str) -> float | None:
    db = sqlite3.connect(data / SPOOL_FILE)
    try:
        row = db.execute("SELECT seen_at FROM spool_alive WHERE session_id = ?", (session_id,)).fetchone()
        return float(row[0]) if row else None
    finally:
        db.close()


async def test_kill_9_while_listening_is_on_record_with_bounds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live_cli(data, "users", "add", "sup", "--role", "supervisor", "--name", "Sam Supervisor")
    live_cli(data, "users", "add", "agent", "--role", "agent", "--name", "Alex Agent")
    sup, agent = live_cli(data, "users", "token", "sup"), live_cli(data, "users", "token", "agent")
    env = {
        "LIVE_NODE_ID": "kill-node",
        "LIVE_INGEST_SECRET": "secret",
        "LIVE_POLICY_FILE": policy(tmp_path, "after_call"),
    }
    proc = start_serve(data, env)
    try:
        sender = TwilioSender(f"{proc.ws_url}/ingest/twilio", "CA-kill", LOUD, LOUD, agent="agent")
        await sender.start(headers={"X-Live-Ingest-Secret": "secret"})
        listener = Listener(proc.base_url, sup)
        try:
            await wait_for(lambda: _roster_has(proc.base_url, sup, "CA-kill"), 30, "the call in the roster")
            session_id = str((await listener.listen("CA-kill", purpose="quality"))["session_id"])
            started = time.time()
            # Proof of life is refreshed every second or faster: wait for two of them.
            first = await wait_for(lambda: _last_alive(data, session_id), 30, "a proof of life")
            await wait_for(
                lambda: (_last_alive(data, session_id) or 0) > first, 5, "a newer proof of life"
            )
            killed = time.time()
            proc.process.kill()
            proc.process.wait(10)
        finally:
            await listener.close()
            with contextlib.suppress(Exception):
                await sender.stop()
    finally:
        if proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(10)

    restarting = time.time()
    proc = start_serve(data, env)
    restarted = time.time()
    try:
        db = sqlite3.connect(data / "ledger.sqlite3")
        try:
            [(fields,)] = db.execute(
                "SELECT fields FROM ledger_entries WHERE kind = 'listen.ended' AND session_id = ?",
                (session_id,),
            ).fetchall()
        finally:
            db.close()
        end = json.loads(fields)
        assert end["reason"] == "node-lost"
        assert killed - 1.1 <= end["ended_after"] <= killed, (end, killed)
        assert restarting <= end["ended_before"] <= restarted
        assert end["ended_at"] == end["ended_after"]
        assert end["duration_s"] == pytest.approx(end["ended_after"] - started, abs=0.2)

        # The agent gets the notice of the recovered listen, with the bounds.
        async with aiohttp.ClientSession() as http, http.get(
            f"{proc.base_url}/api/notices", headers={"Authorization": f"Bearer {agent}"}
        ) as response:
            notices = (await response.json())["notices"]
        [notice] = notices
        assert notice["session_id"] == session_id
        assert "until between" in notice["text"] and "purpose: Quality assurance" in notice["text"]
    finally:
        assert proc.stop() == 0, proc.log()

    out = tmp_path / "agent.csv"
    live_cli(data, "audit", "export", "--data", str(data), "--agent", "agent", "--format", "csv", "--out", str(out))
    [row] = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert row["session_id"] == session_id and row["end_reason"] == "node-lost"
    assert row["ended"].startswith("between ") and " and " in row["ended"]
    assert "-" in row["duration"]
    result = audit_verify(data)
    assert result.returncode == 0, result.stdout


async def _roster_has(base_url: str, token: str, call_id: str) -> bool:
    async with aiohttp.ClientSession() as http, http.get(
        f"{base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return any(c["call_id"] == call_id for c in (await response.json())["calls"])


async def test_readyz_is_503_while_the_bus_is_down(tmp_path: Path, own_redis: RedisServer) -> None:
    async with running_server(tmp_path / "data", redis_url=own_redis.url) as server:
        await wait_for(lambda: _ready(server.base_url), 30, "/readyz ready with Redis up")
        own_redis.stop()
        _, body = await wait_for(
            lambda: _unready(server.base_url), 15, "/readyz to say the bus is down"
        )
        assert body["status"] == "unavailable" and "bus" in body["reason"]
        own_redis.start()
        await wait_for(lambda: _ready(server.base_url), 30, "/readyz ready once Redis is back")


@contextlib.asynccontextmanager
async def database_down(url: str) -> AsyncIterator[None]:
    """The ledger's PostgreSQL database refuses connections and drops those it has, as in an
    outage (the server itself is shared by the test session and stays up)."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_an_end_while_postgresql_is_down_lands_with_its_time(
    tmp_path: Path, postgres_db_url: str
) -> None:
    settings = {"policy_file": policy(tmp_path, "after_call"), "ledger_url": postgres_db_url}
    async with running_server(tmp_path / "data", **settings) as server:
        sender, listener, session_id = await start_listening(server, "CA-pg")
        try:
            async with database_down(postgres_db_url):
                before = time.time()
                assert await listener.stop() == 200
                after = time.time()
                _, body = await wait_for(
                    lambda: _unready(server.base_url), 15, "/readyz to say the ledger is down"
                )
                assert "ledger" in body["reason"]
                assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
            [end] = await wait_for(lambda: ended(server, session_id), 30, "the spooled end on record")
            assert before <= end.at <= after and end.fields["reason"] == "stopped"
            await wait_for(lambda: _ready(server.base_url), 30, "/readyz to say ready again")
        finally:
            await listener.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok


async def test_an_end_while_the_data_disk_is_full_is_kept_by_the_spool(
    tmp_path: Path, ledger_disk: Path
) -> None:
    """The embedded default: ledger and spool share one disk, and it is full."""
    data = ledger_disk / "data"
    async with running_server(data, policy_file=policy(tmp_path, "live")) as server:
        sender, listener, session_id = await start_listening(server, "CA-data-full")
        try:
            with disk_full(ledger_disk):
                before = time.time()
                assert await listener.stop() == 200
                after = time.time()
                assert [e.session_id for e in await server.state.node.spool.pending()] == [session_id]
                assert await ended(server, session_id) == []
            [end] = await wait_for(lambda: ended(server, session_id), 30, "the spooled end on record")
            assert before <= end.at <= after and end.fields["reason"] == "stopped"
        finally:
            await listener.close()
            await sender.stop()
        assert (await server.state.node.ledger.verify()).ok

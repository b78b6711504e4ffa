"""``kill -9`` while listens start and end: after every restart the ledger verifies and every
listen that was running when the server died is closed with reason ``node-lost``.

Architecture decision 4 (write-ahead audit): a listen is on record before audio flows, and a
node that died without writing the end gets it written at its next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

INGEST_SECRET = "test-ingest-secret"

ROUNDS = 5
NODE = "crash-node"
LOUD = tone(440, 2.0, 0.5)
QUIET = tone(660, 2.0, 0.1)


@dataclass
class Tracked:
    """What the test knows of the listens of one round (session id → state)."""

    states: dict[str, str] = field(default_factory=dict)  # open | stopping | stopped


def audit_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    return subprocess.run(
        [sys.executable, "-m", "live.cli", "audit", "verify", "--data", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def ledger_sessions(data_dir: Path) -> tuple[list[str], dict[str, tuple[str, float]]]:
    """Started session ids, and each ended one's (reason, duration)."""
    db = sqlite3.connect(data_dir / "ledger.sqlite3")
    try:
        started = [
            r[0]
            for r in db.execute(
                "SELECT session_id FROM ledger_entries WHERE kind = 'listen.started' ORDER BY seq"
            )
        ]
        ended: dict[str, tuple[str, float]] = {}
        for session_id, reason, duration in db.execute(
            "SELECT session_id, json_extract(fields, '$.reason'), json_extract(fields, '$.duration_s')"
            " FROM ledger_entries WHERE kind = 'listen.ended' ORDER BY seq"
        ):
            assert session_id not in ended, f"{session_id} ended twice"
            ended[session_id] = (reason, duration)
        return started, ended
    finally:
        db.close()


def check_after_restart(data_dir: Path, rounds: list[Tracked], seed: int) -> dict[str, int]:
    result = audit_verify(data_dir)
    assert result.returncode == 0, (
        f"seed {seed}: live audit verify failed:\n{result.stdout}{result.stderr}"
    )
    assert "OK: every entry and checkpoint verifies" in result.stdout
    started, ended = ledger_sessions(data_dir)
    missing = [s for s in started if s not in ended]
    assert not missing, f"seed {seed}: listens without an end after restart: {missing}"
    reasons: dict[str, int] = {}
    for tracked in rounds:
        for session_id, state in tracked.states.items():
            assert session_id in started, f"seed {seed}: {session_id} answered but not on record"
            reason, duration = ended[session_id]
            allowed = {
                "open": {"node-lost"},
                "stopping": {"node-lost", "stopped"},
                "stopped": {"stopped"},
            }
            assert reason in allowed[state], (
                f"seed {seed}: {session_id} was {state}, ended {reason}"
            )
            assert duration >= 0
            reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


async def wait_for_call(proc: LiveProcess, token: str, call_id: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def on_roster() -> bool:
            async with http.get(
                f"{proc.base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                calls = (await response.json())["calls"]
            return any(c["call_id"] == call_id for c in calls)

        await wait_for(on_roster, 30, f"{call_id} on the roster")


async def churn(
    proc: LiveProcess,
    token: str,
    call_id: str,
    tracked: Tracked,
    rng: random.Random,
    dead: asyncio.Event,
) -> None:
    """Start a listen, keep it a random moment, stop it; again, until the server is gone."""
    while not dead.is_set():
        listener = Listener(proc.base_url, token)
        try:
            answer = await listener.listen(call_id, purpose=rng.choice(["quality", "coaching"]))
            session_id = answer["session_id"]
            tracked.states[session_id] = "open"
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            tracked.states[session_id] = "stopping"
            status = await listener.stop()
            assert status == 200, status
            tracked.states[session_id] = "stopped"
        except (aiohttp.ClientError, ConnectionError, RuntimeError, TimeoutError):
            if not dead.is_set():
                raise
        finally:
            await listener.close()


async def one_round(proc: LiveProcess, token: str, number: int, rng: random.Random) -> Tracked:
    tracked = Tracked()
    call_id = f"CA-crash-{number}"
    sender = TwilioSender(f"{proc.ws_url}/ingest/twilio", call_id, LOUD, QUIET, agent="agent-1")
    await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
    steady = Listener(proc.base_url, token)
    dead = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    try:
        await wait_for_call(proc, token, call_id)
        # One listen that is surely running at the kill, and two that come and go.
        tracked.states[(await steady.listen(call_id))["session_id"]] = "open"
        workers = [
            asyncio.create_task(churn(proc, token, call_id, tracked, rng, dead)) for _ in range(2)
        ]
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        for worker in workers:
            if worker.done():
                worker.result()  # a churn failure before the kill is a real failure
        dead.set()  # from here on, failing requests are expected
        proc.process.kill()  # SIGKILL: no shutdown path runs
        proc.process.wait(10)
        await asyncio.wait_for(asyncio.gather(*workers), 20)
    finally:
        dead.set()
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await steady.close()
        with contextlib.suppress(Exception):
            await sender.stop()
    return tracked


async def test_kill_9_while_listens_start_and_end(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    live_cli(data_dir, "users", "add", "sup", "--role", "supervisor", "--name", "Sam Supervisor")
    token = live_cli(data_dir, "users", "token", "sup")
    env = {"LIVE_NODE_ID": NODE, "LIVE_INGEST_SECRET": INGEST_SECRET}
    port: int | None = None  # chosen at the first start, kept across restarts
    rounds: list[Tracked] = []
    began = time.monotonic()
    for number in range(ROUNDS):
        proc = start_serve(data_dir, env, port=port)
        port = proc.port
        try:
            if rounds:
                reasons = check_after_restart(data_dir, rounds, seed)
                assert reasons.get("node-lost", 0) >= len(rounds), (seed, reasons)
            rounds.append(await one_round(proc, token, number, rng))
        finally:
            if proc.process.poll() is None:
                proc.process.kill()
                proc.process.wait(10)
    # A last start closes the last round's listens; a clean stop leaves a verifying log.
    proc = start_serve(data_dir, env, port=port)
    try:
        reasons = check_after_restart(data_dir, rounds, seed)
    finally:
        assert proc.stop() == 0, proc.log()
    assert reasons["node-lost"] >= ROUNDS and reasons.get("stopped", 0) >= 1, (seed, reasons)
    final = audit_verify(data_dir)
    assert final.returncode == 0, final.stdout
    started, ended = ledger_sessions(data_dir)
    assert len(started) == len(ended) >= 2 * ROUNDS
    assert time.monotonic() - began < 60, f"seed {seed}: took {time.monotonic() - began:.0f} s"

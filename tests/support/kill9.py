"""``kill -9`` rounds against a real ``live serve``: the shared logic of the CI test
(tests/integration/test_kill9_rounds.py) and the soak (tests/bench/kill9_soak.py).

One round: start (or restart) ``live serve`` on one data directory, check what the previous
round left (below), start a Twilio call and an aiortc listener, and SIGKILL the server at a
random point (seeded) among

* ``start``: while ``POST /api/calls/{id}/listen`` is in flight,
* ``listening``: after the answer, while the listener hears audio,
* ``stop``: while ``DELETE /api/listens/{id}`` is in flight.

After the restart that follows each kill:

* ``live audit verify`` exits 0;
* every ``listen.started`` has exactly one ``listen.ended``;
* no end is dated outside the true bounds the round observed (wall clock, read with
  ``time.time()`` on this machine, the same clock the server uses): a session started no
  earlier than the listen request; its end lies after the start and no later than the
  kill (a ``stopped`` end: between the stop request and the kill); a ``node-lost`` end's
  ``ended_after`` is no later than the kill and its ``ended_before`` lies between the kill
  and the moment the restarted server was ready;
* the agent got a notice (``GET /api/notices``) for every ended listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.g711 import tone
from tests.support.listener import Listener
from tests.support.process import LiveProcess, live_cli, start_serve
from tests.support.twilio import TwilioSender
from tests.support.wait import wait_for

KILL_POINTS = ("start", "listening", "stop")
INGEST_SECRET = "kill9-ingest-secret"
NODE = "kill9-node"
LOUD = tone(440, 2.0, 0.5)
SLACK_S = 0.005  # float rounding of stored times (the ledger keeps at most ms precision)

POLICY = """
version = "kill9-1"
purposes = ["quality"]

[teams.desk]
agents = ["agent"]

[supervisors.sup]
teams = ["desk"]

[quotas]
per_agent_per_month = 100000
per_supervisor_per_day = 100000

[hours]
timezone = "Europe/Berlin"
allowed = ["Mon-Sun 00:00-24:00"]

[consent]
caller = "required"

[notices]
default = "after_call"
unannounced_allowed = true

[disclosure]
listener_names = true

[retention]
days = 30
"""


class RoundFailed(AssertionError):
    """A round's checks failed (the message says which and gives the seed)."""


@dataclass
class Round:
    """What the test observed in one round (wall-clock times, ``time.time()``)."""

    number: int
    point: str
    call_id: str
    requested: float = 0.0  # just before the listen request
    answered: float | None = None  # the answer arrived (None: killed before)
    stop_requested: float | None = None
    stopped: float | None = None  # the DELETE answered (None: killed before)
    killed: float = 0.0  # SIGKILL sent (the true end of anything still running)
    restarting: float = 0.0  # the restart began
    ready: float = 0.0  # the restarted server answered /readyz
    session_id: str | None = None
    width: float | None = None  # ended_before - ended_after of a node-lost end
    reason: str | None = None
    seconds: float = 0.0  # how long the round took, restart and checks included

    @property
    def in_flight(self) -> bool:
        """The kill came before the listen (``start``) or stop (``stop``) request answered."""
        if self.point == "start":
            return self.answered is None
        return self.point == "stop" and self.stopped is None


@dataclass
class Harness:
    """One data directory, users, tokens and a fixed port, reused by every round."""

    data_dir: Path
    seed: int
    rng: random.Random = field(init=False)
    env: dict[str, str] = field(init=False)
    port: int = field(init=False)
    sup: str = field(init=False)
    agent: str = field(init=False)
    proc: LiveProcess | None = None
    listen_s: float = 0.1  # how long a listen request takes (running mean), to aim kills
    stop_s: float = 0.02  # the same for a stop request

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        policy = self.data_dir.parent / "kill9-policy.toml"
        policy.write_text(POLICY, encoding="utf-8")
        live_cli(self.data_dir, "users", "add", "sup", "--role", "supervisor", "--name", "Sam Supervisor")
        live_cli(self.data_dir, "users", "add", "agent", "--role", "agent", "--name", "Alex Agent")
        self.sup = live_cli(self.data_dir, "users", "token", "sup")
        self.agent = live_cli(self.data_dir, "users", "token", "agent")
        self.env = {
            "LIVE_NODE_ID": NODE,
            "LIVE_INGEST_SECRET": INGEST_SECRET,
            "LIVE_POLICY_FILE": str(policy),
        }
        self.port: int | None = None  # chosen at the first start, kept across restarts

    def start(self) -> tuple[float, float]:
        """Start ``live serve``; returns when the start began and when it was ready."""
        began = time.time()
        self.proc = start_serve(self.data_dir, self.env, port=self.port)
        self.port = self.proc.port
        return began, time.time()

    def kill(self) -> float:
        assert self.proc is not None
        killed = time.time()
        self.proc.process.kill()
        self.proc.process.wait(10)
        return killed

    def close(self) -> int | None:
        """Stop a running server cleanly; its exit code."""
        if self.proc is None or self.proc.process.poll() is not None:
            return None
        return self.proc.stop()


async def run_round(h: Harness, number: int, point: str | None = None) -> Round:
    """Start a call and a listen on the running server and kill it at a random point."""
    assert h.proc is not None
    proc = h.proc
    rng = h.rng
    point = point or rng.choice(KILL_POINTS)
    # Aim at the windows: how long listen and stop requests took in earlier rounds here.
    delay = {
        "start": rng.uniform(0.0, 1.2 * h.listen_s),
        "listening": rng.uniform(0.0, 1.2),
        "stop": rng.uniform(0.0, 1.2 * h.stop_s),
    }[point]
    r = Round(number, point, f"CA-k9-{number}")
    sender = TwilioSender(f"{proc.ws_url}/ingest/twilio", r.call_id, LOUD, LOUD, agent="agent")
    await sender.start(headers={"X-Live-Ingest-Secret": INGEST_SECRET})
    listener = Listener(proc.base_url, h.sup)
    try:
        await _wait_roster(proc.base_url, h.sup, r.call_id)
        r.requested = time.time()
        listen = asyncio.create_task(listener.listen(r.call_id, purpose="quality"))
        if point == "start":
            await asyncio.wait({listen}, timeout=delay)
            r.killed = h.kill()
            with contextlib.suppress(Exception):
                answer = await asyncio.wait_for(listen, 10)
                r.session_id = str(answer["session_id"])  # answered just before the kill
                r.answered = r.killed
            return r
        answer = await asyncio.wait_for(listen, 20)
        r.answered = time.time()
        h.listen_s = 0.7 * h.listen_s + 0.3 * (r.answered - r.requested)
        r.session_id = str(answer["session_id"])
        if point == "listening":
            await asyncio.sleep(delay)  # a random moment of listening, not a synchronisation
            r.killed = h.kill()
            return r
        r.stop_requested = time.time()
        stop = asyncio.create_task(listener.stop())
        await asyncio.wait({stop}, timeout=delay)
        if stop.done() and not stop.exception():
            r.stopped = time.time()
            h.stop_s = 0.7 * h.stop_s + 0.3 * (r.stopped - r.stop_requested)
        r.killed = h.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stop, 10)
        return r
    finally:
        if h.proc.process.poll() is None:  # a failure before the kill: do not leak it
            h.kill()
        await listener.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender.stop(), 5)


async def _wait_roster(base_url: str, token: str, call_id: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def on_roster() -> bool:
            async with http.get(
                f"{base_url}/api/calls", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                return any(c["call_id"] == call_id for c in (await response.json())["calls"])

        await wait_for(on_roster, 30, f"{call_id} on the roster")


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


def _ledger(data_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """``listen.started`` fields by session, and every ``listen.ended`` of each session."""
    db = sqlite3.connect(data_dir / "ledger.sqlite3")
    try:
        started = {
            str(s): json.loads(f) | {"_at": at}
            for s, f, at in db.execute(
                "SELECT session_id, fields, at FROM ledger_entries WHERE kind = 'listen.started'"
            )
        }
        ended: dict[str, list[dict[str, Any]]] = {}
        for s, f, at in db.execute(
            "SELECT session_id, fields, at FROM ledger_entries WHERE kind = 'listen.ended' ORDER BY seq"
        ):
            ended.setdefault(str(s), []).append(json.loads(f) | {"_at": at})
        return started, ended
    finally:
        db.close()


async def _notices(base_url: str, token: str) -> set[str]:
    async with aiohttp.ClientSession() as http, http.get(
        f"{base_url}/api/notices", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200, response.status
        return {str(n["session_id"]) for n in (await response.json())["notices"]}


async def check(h: Harness, r: Round) -> None:
    """The checks after the restart that followed round ``r``'s kill (see the module doc)."""
    assert h.proc is not None

    def fail(what: str) -> RoundFailed:
        return RoundFailed(f"seed {h.seed} round {r.number} ({r.point}): {what}\n{r}")

    result = audit_verify(h.data_dir)
    if result.returncode != 0:
        raise fail(f"live audit verify exit {result.returncode}:\n{result.stdout}{result.stderr}")
    started, ended = _ledger(h.data_dir)
    for session_id in started:
        if len(ended.get(session_id, [])) != 1:
            raise fail(f"{session_id} has {len(ended.get(session_id, []))} ends")
    for session_id in ended:
        if session_id not in started:
            raise fail(f"{session_id} ended without a start")
    mine = [s for s, f in started.items() if f.get("call_id") == r.call_id]
    if r.session_id is not None and r.session_id not in mine:
        raise fail(f"{r.session_id} was answered but is not on record")
    if len(mine) > 1:
        raise fail(f"{len(mine)} starts for one listen request: {mine}")
    for session_id in mine:
        r.session_id = session_id
        s, [e] = started[session_id], ended[session_id]
        r.reason = e.get("reason")
        start_at = float(s["started_at"])
        if not r.requested - SLACK_S <= start_at <= r.killed + SLACK_S:
            raise fail(f"started_at {start_at} outside [request {r.requested}, kill {r.killed}]")
        ended_at = float(e["ended_at"])
        if e["_at"] != ended_at:
            raise fail(f"the end's time {e['_at']} is not its ended_at {ended_at}")
        if not start_at - SLACK_S <= ended_at <= r.killed + SLACK_S:
            raise fail(f"ended_at {ended_at} outside [start {start_at}, kill {r.killed}]")
        if r.reason == "stopped":
            if r.stop_requested is None or ended_at < r.stop_requested - SLACK_S:
                raise fail(f"stopped at {ended_at} before the stop request {r.stop_requested}")
        elif r.reason == "node-lost":
            after, before = float(e["ended_after"]), float(e["ended_before"])
            if after != ended_at:
                raise fail(f"ended_after {after} is not ended_at {ended_at}")
            if not r.killed - SLACK_S <= before <= r.ready + SLACK_S:
                raise fail(f"ended_before {before} outside [kill {r.killed}, ready {r.ready}]")
            if r.point == "stop" and r.stop_requested is not None and before < r.stop_requested:
                raise fail("ended before the stop was asked for")
            r.width = before - after
        else:
            raise fail(f"unexpected end reason {r.reason!r}")
    noticed = await _notices(h.proc.base_url, h.agent)
    missing = sorted(set(ended) - noticed)
    if missing:
        raise fail(f"the agent got no notice of {missing}")


async def run_rounds(
    data_dir: Path, seed: int, rounds: int, *, report: Any = None
) -> list[tuple[Round, BaseException | None]]:
    """``rounds`` kill rounds on one data directory, each checked after the restart that
    follows it; a last clean stop at the end. ``report(round, error)`` after each round."""
    h = Harness(data_dir, seed)
    results: list[tuple[Round, BaseException | None]] = []
    h.start()
    try:
        for number in range(rounds):
            began = time.monotonic()
            error: BaseException | None = None
            r = Round(number, "?", "")
            try:
                r = await run_round(h, number)
                r.restarting, r.ready = h.start()
                await check(h, r)
            except (AssertionError, RuntimeError, TimeoutError, OSError, aiohttp.ClientError) as exc:
                error = exc
                if h.proc is None or h.proc.process.poll() is not None:
                    h.start()  # the next round needs a server
            r.seconds = time.monotonic() - began
            results.append((r, error))
            if report is not None:
                report(r, error)
    finally:
        code = h.close()
    if code not in (0, None):
        results.append((Round(rounds, "clean-stop", ""), RoundFailed(f"clean stop exited {code}")))
    return results

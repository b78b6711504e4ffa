"""Stopping ``live demo`` while a supervisor listens: the ledger says ``shutdown``, not
``call-ended`` (the demo's simulated calls end only after the listens are on record)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers import free_port
from tests.support.listener import Listener
from tests.support.server import running_server
from tests.support.wait import wait_for


def read_links(process: subprocess.Popen[str]) -> dict[str, str]:
    links: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while len(links) < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.match(r"^(supervisor|agent|auditor): (http:\S+)$", line.strip())
        if match:
            links[match.group(1)] = match.group(2)
    assert set(links) == {"supervisor", "agent", "auditor"}, links
    return links


def test_stopping_the_demo_records_shutdown(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "live.cli", "demo", "--port", str(port), "--data", str(data),
         "--siprec-port", "0", "--calls", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    async def listen_then_stop_the_demo() -> str:
        token = read_links(process)["supervisor"].split("token=", 1)[1]

        def calls() -> list[dict[str, object]]:
            request = urllib.request.Request(f"{base}/api/calls", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return list(json.load(response)["calls"])

        [call, *_] = await wait_for(lambda: asyncio.to_thread(calls), 30, "a simulated call")
        listener = Listener(base, token)
        try:
            await listener.listen(str(call["call_id"]), purpose="quality")
            await listener.wait_frames(3, legs=("agent",))
            process.terminate()  # SIGTERM, as Ctrl+C or a service manager would stop it
            await asyncio.to_thread(process.wait, 30)
        finally:
            await listener.close()
        assert listener.session_id is not None
        return listener.session_id

    try:
        session_id = asyncio.run(listen_then_stop_the_demo())
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0

    async def ended_reason() -> object:
        async with running_server(data) as server:
            entries = await server.state.node.ledger.entries(session_id=session_id)
            return [e.fields.get("reason") for e in entries if e.kind == "listen.ended"]

    assert asyncio.run(ended_reason()) == ["shutdown"]

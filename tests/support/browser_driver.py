"""Run a browser script of ``tests/browser/scripts`` in Firefox (WebDriver BiDi) or Chromium
(CDP) through ``tests/browser/driver.mjs`` (npm ``puppeteer-core``, which downloads no
browser: Debian's ``firefox-esr`` and ``chromium`` are driven).

Its npm dependencies are installed on first use (``npm ci`` from the committed lock file into
``tests/browser/node_modules``, which git ignores); ``deploy/run-tests.sh`` does so up front.
A missing browser, node or npm fails the test loudly.

A script may hand over to the test between two browser actions (``t.step`` in driver.mjs):
the test then ends a call or restarts the server, and the script goes on.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1] / "browser"
DRIVER = HERE / "driver.mjs"
SCRIPTS = HERE / "scripts"
EXECUTABLES = {"firefox": "/usr/bin/firefox-esr", "chromium": "/usr/bin/chromium"}
BROWSERS = tuple(EXECUTABLES)


@dataclass(frozen=True)
class ScriptResult:
    checks: list[str]
    data: dict[str, Any] = field(default_factory=dict)


#: What the test does at a script's step: called with the step's data, answers with data.
StepHandler = Callable[[Any], Awaitable[Any]]


class BrowserScriptFailed(AssertionError):
    """The script's check failed (its message says which), or the browser did not start."""


def ensure_node_modules(timeout: float = 300) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are needed for the browser tests (deploy/run-tests.sh installs them)"
    marker = HERE / "node_modules" / "puppeteer-core" / "package.json"
    if marker.exists():
        return
    with open(HERE / "node_modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            assert result.returncode == 0, f"npm ci failed in {HERE}:\n{result.stdout}\n{result.stderr}"


async def run_script(
    browser: str,
    script: str,
    args: dict[str, Any],
    timeout: float = 240,
    steps: Mapping[str, StepHandler] | None = None,
) -> ScriptResult:
    """Run ``scripts/<script>.mjs`` in ``browser`` with ``args``; raise ``BrowserScriptFailed``
    with the failed check (and the checks that passed before it).

    At each ``t.step(name, data)`` of the script, ``steps[name](data)`` runs (ending a call,
    restarting the server, ...) and its answer goes back to the script. ``timeout`` bounds
    the whole run, steps included."""
    executable = EXECUTABLES[browser]
    assert Path(executable).exists(), f"{executable} is missing (deploy/run-tests.sh installs it)"
    ensure_node_modules()
    node = shutil.which("node")
    assert node is not None
    handlers = dict(steps or {})
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        browser,
        str(SCRIPTS / f"{script}.mjs"),
        json.dumps(args),
        cwd=HERE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin and process.stdout and process.stderr
    errors = asyncio.create_task(process.stderr.read())
    result: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(timeout):
            while line := await process.stdout.readline():
                if not line.startswith(b"{"):
                    continue
                message = json.loads(line)
                if "step" not in message:
                    result = message
                    continue
                name = message["step"]
                handler = handlers.get(name)
                if handler is None:
                    raise BrowserScriptFailed(f"{script} in {browser} took step {name!r}, which the test does not handle")
                answer = await handler(message.get("data"))
                process.stdin.write(f"{json.dumps({'go': name, 'data': answer})}\n".encode())
                await process.stdin.drain()
            await process.wait()
    except TimeoutError:
        raise BrowserScriptFailed(f"{script} in {browser} did not finish within {timeout} s") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        err = await errors
    if result is None:
        raise BrowserScriptFailed(f"{script} in {browser} printed no result; stderr:\n{err.decode()[-4000:]}")
    if not result["ok"]:
        passed = "".join(f"\n  passed: {c}" for c in result["checks"])
        raise BrowserScriptFailed(f"{script} in {browser}: {result['error']}{passed}")
    return ScriptResult(checks=list(result["checks"]), data=dict(result.get("data") or {}))

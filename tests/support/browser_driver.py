"""Run a browser script of ``tests/browser/scripts`` in Firefox (WebDriver BiDi) or Chromium
(CDP) through ``tests/browser/driver.mjs`` (npm ``puppeteer-core``, which downloads no
browser: Debian's ``firefox-esr`` and ``chromium`` are driven).

Its npm dependencies are installed on first use (``npm ci`` from the committed lock file into
``tests/browser/node_modules``, which git ignores); ``deploy/run-tests.sh`` does so up front.
A missing browser, node or npm fails the test loudly.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import subprocess
from dataclasses import dataclass
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


async def run_script(browser: str, script: str, args: dict[str, Any], timeout: float = 240) -> ScriptResult:
    """Run ``scripts/<script>.mjs`` in ``browser`` with ``args``; raise ``BrowserScriptFailed``
    with the failed check (and the checks that passed before it)."""
    executable = EXECUTABLES[browser]
    assert Path(executable).exists(), f"{executable} is missing (deploy/run-tests.sh installs it)"
    ensure_node_modules()
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        browser,
        str(SCRIPTS / f"{script}.mjs"),
        json.dumps(args),
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BrowserScriptFailed(f"{script} in {browser} did not finish within {timeout} s") from None
    lines = [line for line in out.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    if not lines:
        raise BrowserScriptFailed(f"{script} in {browser} printed no result; stderr:\n{err.decode()[-4000:]}")
    result = json.loads(lines[-1])
    if not result["ok"]:
        passed = "".join(f"\n  passed: {c}" for c in result["checks"])
        raise BrowserScriptFailed(f"{script} in {browser}: {result['error']}{passed}")
    return ScriptResult(checks=list(result["checks"]))

"""Run ``live`` as a real separate process (the way an operator does) in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import port_taken, start_on_free_port
from tests.support.wait import wait_for_blocking

LIVE = [sys.executable, "-m", "live.cli"]


def live_cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*LIVE, *args, "--data", str(data_dir)] if args[0] == "users" else [*LIVE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@dataclass
class LiveProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_serve(
    data_dir: Path,
    env: dict[str, str],
    *,
    port: int | None = None,
    timeout: float = 60,
    command: Sequence[str] = (*LIVE, "serve"),
) -> LiveProcess:
    """``live serve`` (or ``command``, which runs it); returns once ``/readyz`` answers 200.

    Without ``port`` it gets a free one (another one if that was taken meanwhile); with
    ``port`` (a restart on the port it had) a taken port fails loudly.
    """
    if port is None:
        return start_on_free_port(
            lambda free: _start_serve(data_dir, env, free, timeout, command), "live serve"
        )
    return _start_serve(data_dir, env, port, timeout, command)


def _start_serve(
    data_dir: Path, env: dict[str, str], port: int, timeout: float, command: Sequence[str]
) -> LiveProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"serve-{port}.log"
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("LIVE_")
    } | {"LIVE_PORT": str(port), "LIVE_HOST": "127.0.0.1", "LIVE_DATA_DIR": str(data_dir)} | env
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, env=full_env)
    proc = LiveProcess(process, port, data_dir, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            port_taken(proc.log(), port, "live serve")
            raise RuntimeError(f"live serve exited with {process.returncode}:\n{proc.log()}")
        try:
            with urllib.request.urlopen(f"{proc.base_url}/readyz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_for_blocking(ready, timeout, f"live serve on port {port} to be ready", every=0.1)
    except AssertionError as error:
        proc.stop()
        raise AssertionError(f"{error}\n{proc.log()}") from None
    except BaseException:
        proc.stop()
        raise
    return proc

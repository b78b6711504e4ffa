"""The processes a benchmark run starts, each stopped by its own pid only."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One process this benchmark started; stopped by its own pid only."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        control: bool = False,
        capture: bool = True,
    ) -> None:
        self.name = name
        self.capture = capture or control
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.control = control
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 (once per process start)
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.PIPE if self.control else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if self.capture else log,
                stderr=log,
                limit=1 << 20,
            )

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited (see {self.log_path})")
        return dict(json.loads(line))

    async def command(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read(timeout)

    async def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.control:
            try:
                await self.command({"cmd": "quit"}, timeout)
                await asyncio.wait_for(self.proc.wait(), timeout)
                return
            except (TimeoutError, RuntimeError, ConnectionError, ValueError):
                pass
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

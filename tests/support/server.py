"""Run a real ``live`` server (aiohttp on a loopback port of its own) inside a test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from live.auth import UserStore
from live.config import Settings, load_settings
from live.server import create_app
from live.server.state import STATE, ServerState
from live.types import Role
from tests.helpers import listening_socket


@dataclass
class RunningServer:
    base_url: str
    ws_url: str
    settings: Settings
    state: ServerState
    tokens: dict[str, str]
    app: web.Application | None = None

    @property
    def twilio_url(self) -> str:
        return f"{self.ws_url}/ingest/twilio"


PEOPLE = {
    "sup": ("Sam Supervisor", Role.SUPERVISOR),
    "sup2": ("Kim Supervisor", Role.SUPERVISOR),
    "agent": ("Alex Agent", Role.AGENT),
    "auditor": ("Dana Auditor", Role.AUDITOR),
    "admin": ("Ari Admin", Role.ADMIN),
}


@contextlib.asynccontextmanager
async def running_server(data_dir: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    """The server on a port of its own: port 0 read back, or ``port=`` to come back on one."""
    sock = listening_socket(int(overrides.pop("port", 0)))
    port = sock.getsockname()[1]
    runner: web.AppRunner | None = None
    try:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": data_dir,
            "ingest_loopback_trust": True,
            "session_secret": "test-secret",
        }
        values.update(overrides)
        settings = load_settings({}, None, **values)
        users = UserStore(settings.users_path)
        tokens = {}
        for user_id, (name, role) in PEOPLE.items():
            if user_id not in {u.user_id for u in users.list()}:
                users.add(user_id, role, display_name=name)
            tokens[user_id] = users.issue_token(user_id)
        app = create_app(settings, users=users)
        runner = web.AppRunner(app, shutdown_timeout=2)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        yield RunningServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", settings, app[STATE], tokens, app)
    finally:
        if runner is not None:
            await runner.cleanup()
        sock.close()  # a no-op once the server closed it

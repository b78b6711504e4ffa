"""``live serve``: the production server, until SIGINT or SIGTERM (SIGHUP reloads the policy)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..config import Settings
from ..config.private import session_key
from ..errors import ConfigError, LiveError
from .runtime import add_settings_options, settings_of

log = logging.getLogger("live")


class Closeable(Protocol):
    async def aclose(self) -> None: ...


def with_session_key(settings: Settings) -> Settings:
    """Without ``LIVE_SESSION_SECRET``, the key kept in ``DATA_DIR/session.key`` (created
    private at the first start, so restarts keep sessions)."""
    if settings.session.secret.get_secret_value():
        return settings
    return settings.with_session_secret(session_key(settings.data_dir))


async def run_server(
    settings: Settings, on_ready: Callable[[], Awaitable[Closeable]] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready`` starts something that lives as long."""
    from aiohttp import web

    from ..server import create_app
    from ..server.logs import AccessLogger

    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("live.access"),
        access_log_class=AccessLogger,
        shutdown_timeout=5,
    )
    await runner.setup()
    ssl_context = None
    cert, key = settings.tls.cert, settings.tls.key
    if cert and key:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[object]] = set()

    def reload_policy() -> None:
        """SIGHUP: read the policy file again; a bad file keeps the last good policy."""
        from ..server.state import STATE

        async def reload() -> None:
            try:
                await app[STATE].node.policy.reload(actor="system")
            except LiveError as exc:
                log.error("policy not reloaded: %s %s", exc.message, exc.fields.get("problems", ""))

        task = asyncio.create_task(reload(), name="policy-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_policy)
    log.info("live listening on %s (node %s)", settings.base_url, settings.effective_node_id)
    extra = None
    try:
        if on_ready is not None:
            extra = await on_ready()
        await stop.wait()
    finally:
        from ..server.state import STATE
        from ..types import EndReason

        # Listens end as `shutdown` first: closing the demo's simulated calls (or the server's
        # ingest sockets) would otherwise end them as `call-ended`.
        await app[STATE].node.listens.end_all(EndReason.SHUTDOWN)
        if extra is not None:
            await extra.aclose()
        await runner.cleanup()


def listen_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--host`` and ``--port`` as settings (``--port 0``: not given)."""
    return {"host": args.host or None, "port": args.port or None}


def cmd_serve(args: argparse.Namespace) -> int:
    settings = with_session_key(settings_of(args))
    if settings.ingest.loopback_trust:
        # Anything on the machine could otherwise inject calls: only the demo trusts loopback.
        raise ConfigError(
            "ingest_loopback_trust is for `live demo` only; give ingest senders LIVE_INGEST_SECRET",
            setting="ingest_loopback_trust",
        )
    asyncio.run(run_server(settings))
    return 0


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the server (production)")
    add_settings_options(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve, overrides=listen_options)

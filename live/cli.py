"""The ``live`` command: ``demo``, ``serve``, ``users``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .auth import UserStore
from .config import Settings, load_settings
from .errors import ConfigError, LiveError
from .types import Role

log = logging.getLogger("live")

DEMO_USERS = (
    ("supervisor", "demo-supervisor", "Sam Supervisor", Role.SUPERVISOR, ("billing", "support", "sales")),
    ("agent", "agent-1", "Alex Agent", Role.AGENT, ("billing",)),
    ("auditor", "demo-auditor", "Dana Auditor", Role.AUDITOR, ()),
)


def _session_secret(data_dir: Path) -> str:
    """A per-installation cookie key kept in the data directory (so restarts keep sessions)."""
    path = data_dir / "session.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    path.write_text(secret)
    os.chmod(path, 0o600)
    return secret


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    config = Path(args.config) if getattr(args, "config", None) else None
    base = load_settings(os.environ, config)
    data_dir = Path(args.data) if getattr(args, "data", None) else base.data_dir
    values = dict(overrides)
    values.setdefault("data_dir", data_dir)
    if getattr(args, "host", None):
        values["host"] = args.host
    if getattr(args, "port", None):
        values["port"] = args.port
    if not base.session_secret:
        values.setdefault("session_secret", _session_secret(data_dir))
    return load_settings(os.environ, config, **values)


async def _run_server(settings: Settings, on_ready: Any = None) -> None:
    from aiohttp import web

    from .server import create_app

    app = create_app(settings)
    from .server.logs import AccessLogger

    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("live.access"),
        access_log_class=AccessLogger,
        shutdown_timeout=5,
    )
    await runner.setup()
    ssl_context = None
    cert, key = settings.tls_cert, settings.tls_key
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
        from .server.state import STATE

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
        if extra is not None:
            await extra.aclose()
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.ingest_loopback_trust:
        # Anything on the machine could otherwise inject calls: only the demo trusts loopback.
        raise ConfigError(
            "ingest_loopback_trust is for `live demo` only; give ingest senders LIVE_INGEST_SECRET",
            setting="ingest_loopback_trust",
        )
    asyncio.run(_run_server(settings))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.resources import files

    demo_policy = str(files("live.demo").joinpath("policy.toml"))
    siprec: dict[str, str] = {}
    if args.siprec_port:
        # A newcomer can point sipp or an SBC on this machine at it: loopback only.
        siprec = {"siprec_listen": f"127.0.0.1:{args.siprec_port}", "siprec_allow": "127.0.0.0/8,::1"}
    settings = _settings(args, demo=True, ingest_loopback_trust=True, policy_file=demo_policy, **siprec)
    users = UserStore(settings.users_path)
    links = []
    for label, user_id, name, role, teams in DEMO_USERS:
        if any(u.user_id == user_id for u in users.list()):
            users.remove(user_id)
        users.add(user_id, role, display_name=name, teams=teams)
        links.append((label, f"{settings.base_url}/auth/link?token={users.issue_token(user_id)}"))

    async def start_calls() -> Any:
        from .demo.simulator import CallSimulator

        simulator = CallSimulator(f"ws://{settings.host}:{settings.port}/ingest/twilio", calls=args.calls)
        await simulator.start()
        print(f"live demo running at {settings.base_url} with {args.calls} simulated calls")
        for label, link in links:
            print(f"{label}: {link}")
        if settings.siprec_listen:
            print(f"siprec: sip:{settings.siprec_listen}")
        print("Press Ctrl+C to stop.", flush=True)
        return simulator

    asyncio.run(_run_server(settings, on_ready=start_calls))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    settings = _settings(args)
    users = UserStore(settings.users_path)
    if args.action == "list":
        for user in users.list():
            print(f"{user.user_id}\t{user.role.value}\t{','.join(user.teams)}\t{user.display_name}")
    elif args.action == "add":
        password = getpass.getpass("password (empty for token-only): ") if args.password else ""
        users.add(
            args.user,
            Role(args.role),
            display_name=args.name or args.user,
            teams=tuple(t for t in (args.teams or "").split(",") if t),
            password=password,
        )
        print(f"added {args.user}")
    elif args.action == "remove":
        users.remove(args.user)
        _sign_out_everywhere(settings, args.user)
        print(f"removed {args.user}")
    elif args.action == "passwd":
        users.set_password(args.user, getpass.getpass("new password: "))
        _sign_out_everywhere(settings, args.user)
        print(f"password set for {args.user}; their browser sessions are signed out")
    elif args.action == "token":
        print(users.issue_token(args.user))
    elif args.action == "signout":
        users.get(args.user)
        _sign_out_everywhere(settings, args.user)
        withdrawn = users.revoke_tokens(args.user) if args.tokens else 0
        print(f"signed out every session of {args.user}" + (f"; {withdrawn} API token(s) withdrawn" if args.tokens else ""))
    return 0


def _sign_out_everywhere(settings: Settings, user_id: str) -> None:
    """Revoke every browser session of ``user_id`` issued until now, on every node."""
    from .auth import Revocations
    from .server.revocation import RevocationService

    async def revoke() -> None:
        service = RevocationService(Revocations(settings.data_dir / "sessions.sqlite3"), settings.redis_url)
        await service.start()
        try:
            await service.revoke_user(user_id, time.time())
        finally:
            await service.stop()

    asyncio.run(revoke())


def cmd_policy(args: argparse.Namespace) -> int:
    from .policy import check_policy_file, read_policy_file

    problems = check_policy_file(args.file)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    policy = read_policy_file(args.file)
    print(f"{args.file}: policy {policy.version} is valid (sha256 {policy.sha256})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description="Silent monitoring for contact centres.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: LIVE_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML settings file (LIVE_* variables override it)")
        p.add_argument("--data", help="data directory (default: LIVE_DATA_DIR or ./live-data)")

    demo = sub.add_parser("demo", help="one node with simulated calls and demo users")
    common(demo)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--calls", type=int, default=3, help="simulated calls kept running")
    demo.add_argument(
        "--siprec-port", type=int, default=5080, help="SIPREC (UDP and TCP) on 127.0.0.1:PORT; 0 turns it off"
    )
    demo.set_defaults(func=cmd_demo, data_default="live-demo-data")

    serve = sub.add_parser("serve", help="run the server (production)")
    common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="manage the local user store")
    common(users)
    users.add_argument("action", choices=["list", "add", "remove", "passwd", "token", "signout"])
    users.add_argument("user", nargs="?")
    users.add_argument("--role", choices=[r.value for r in Role], default="supervisor")
    users.add_argument("--name", help="display name")
    users.add_argument("--teams", help="comma-separated team names")
    users.add_argument("--password", action="store_true", help="ask for a password")
    users.add_argument("--tokens", action="store_true", help="signout: also withdraw the user's API tokens")
    users.set_defaults(func=cmd_users)
    from .cli_audit import register as register_audit

    register_audit(sub)
    from .cli_witness import register as register_witness

    register_witness(sub)

    policy = sub.add_parser("policy", help="the monitoring policy (works-council profile)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="check a policy file; line-level errors, exit 1 if any")
    check.add_argument("file")
    check.set_defaults(func=cmd_policy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data", None) is None and getattr(args, "data_default", None):
        args.data = args.data_default
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "users" and args.action != "list" and not args.user:
        parser.error("users: this action needs a USER")
    logging.basicConfig(
        level=(args.log_level or os.environ.get("LIVE_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .server.logs import install_redaction

    install_redaction()
    if logging.getLogger().level > logging.DEBUG:  # ICE chatter only when debugging
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except LiveError as exc:
        print(f"live: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

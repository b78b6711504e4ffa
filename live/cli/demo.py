"""``live demo``: one node, embedded defaults, simulated calls and demo sign-in links."""

from __future__ import annotations

import argparse
import asyncio
from importlib.resources import files
from typing import Any

from ..auth import UserStore
from ..types import Role
from .runtime import add_settings_options, settings_of
from .serve import Closeable, listen_options, run_server, with_session_key

DEMO_USERS = (
    ("supervisor", "demo-supervisor", "Sam Supervisor", Role.SUPERVISOR, ("billing", "support", "sales")),
    ("agent", "agent-1", "Alex Agent", Role.AGENT, ("billing",)),
    ("auditor", "demo-auditor", "Dana Auditor", Role.AUDITOR, ()),
)


def demo_options(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {
        **listen_options(args),
        "ingest_loopback_trust": True,
        "policy_file": str(files("live.demo").joinpath("policy.toml")),
    }
    if args.siprec_port:
        # A newcomer can point sipp or an SBC on this machine at it: loopback only.
        values |= {"siprec_listen": f"127.0.0.1:{args.siprec_port}", "siprec_allow": "127.0.0.0/8,::1"}
    return values


def cmd_demo(args: argparse.Namespace) -> int:
    settings = with_session_key(settings_of(args))
    users = UserStore(settings.users_path)
    links = []
    for label, user_id, name, role, teams in DEMO_USERS:
        if any(u.user_id == user_id for u in users.list()):
            users.remove(user_id)
        users.add(user_id, role, display_name=name, teams=teams)
        links.append((label, f"{settings.base_url}/auth/link?token={users.issue_token(user_id)}"))

    async def start_calls() -> Closeable:
        from ..demo.simulator import CallSimulator

        simulator = CallSimulator(f"ws://{settings.host}:{settings.port}/ingest/twilio", calls=args.calls)
        await simulator.start()
        print(f"live demo running at {settings.base_url} with {args.calls} simulated calls")
        for label, link in links:
            print(f"{label}: {link}")
        if settings.siprec.listen:
            print(f"siprec: sip:{settings.siprec.listen}")
        print("Press Ctrl+C to stop.", flush=True)
        return simulator

    asyncio.run(run_server(settings, on_ready=start_calls))
    return 0


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="one node with simulated calls and demo users")
    add_settings_options(demo, data_default="live-demo-data")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--calls", type=int, default=3, help="simulated calls kept running")
    demo.add_argument(
        "--siprec-port", type=int, default=5080, help="SIPREC (UDP and TCP) on 127.0.0.1:PORT; 0 turns it off"
    )
    demo.set_defaults(func=cmd_demo, overrides=demo_options)

"""``live demo``: one node, embedded defaults, simulated calls and demo sign-in links."""

from __future__ import annotations

import argparse
import asyncio
from importlib.resources import files
from typing import Any

from ..auth import UserStore
from ..demo.links import demo_links
from .runtime import add_settings_options, settings_of
from .serve import Closeable, listen_options, run_server, with_session_key


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
    # Sign-in links stable per data directory, each saying whom it signs in as.
    links = demo_links(UserStore(settings.users_path), settings.data_dir, settings.base_url)

    async def start_calls() -> Closeable:
        from ..demo.simulator import CallSimulator

        simulator = CallSimulator(f"ws://{settings.host}:{settings.port}/ingest/twilio", calls=args.calls)
        await simulator.start()
        print(f"live demo running at {settings.base_url} with {args.calls} simulated calls")
        for link in links:
            print(f"{link.person.label}: {link.url}")
            print(f"  {link.who()}")
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

"""The ``live`` command: ``demo``, ``serve``, ``users``, ``audit``, ``witness``, ``policy``.

Each subcommand lives in its own module with its own options (``register(subparsers)``);
``runtime`` is what they share: reading the settings once and setting up logging.
``python -m live.cli ...`` is the same command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config.values import LOG_LEVELS
from ..errors import LiveError
from . import audit, demo, policy, serve, users, witness
from .runtime import configure_logging, read_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description="Silent monitoring for contact centres.")
    parser.add_argument(
        "--log-level",
        default=None,
        type=str.upper,
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING, ERROR (default: LIVE_LOG_LEVEL, else INFO; WARNING for audit)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (demo, serve, users, audit, witness, policy):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        configure_logging(args, read_settings(args))
        return int(args.func(args))
    except LiveError as exc:
        print(f"live: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


__all__ = ["build_parser", "main"]

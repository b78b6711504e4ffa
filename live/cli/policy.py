"""``live policy check FILE``: a monitoring policy file, every problem with its line."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_check(args: argparse.Namespace) -> int:
    from ..policy import check_policy_file, read_policy_file

    problems = check_policy_file(args.file)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    policy = read_policy_file(args.file)
    print(f"{args.file}: policy {policy.version} is valid (sha256 {policy.sha256})")
    return 0


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser("policy", help="the monitoring policy (works-council profile)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="check a policy file; line-level errors, exit 1 if any")
    check.add_argument("file")
    check.set_defaults(func=cmd_check)

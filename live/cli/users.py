"""``live users list | add | remove | passwd | token | signout``: the local user store."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
from typing import Any

from ..auth import UserStore
from ..config import Settings
from ..types import Role
from .runtime import add_settings_options, settings_of


def _users(args: argparse.Namespace) -> tuple[Settings, UserStore]:
    settings = settings_of(args)
    return settings, UserStore(settings.users_path)


def cmd_list(args: argparse.Namespace) -> int:
    _, users = _users(args)
    for user in users.list():
        print(f"{user.user_id}\t{user.role.value}\t{','.join(user.teams)}\t{user.display_name}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    _, users = _users(args)
    password = getpass.getpass("password (empty for token-only): ") if args.password else ""
    users.add(
        args.user,
        Role(args.role),
        display_name=args.name or args.user,
        teams=tuple(t for t in (args.teams or "").split(",") if t),
        password=password,
    )
    print(f"added {args.user}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    settings, users = _users(args)
    tokens = tuple(users.get(args.user).tokens)
    users.remove(args.user)
    sign_out_everywhere(settings, args.user, tokens)
    print(f"removed {args.user}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    settings, users = _users(args)
    users.set_password(args.user, getpass.getpass("new password: "))
    sign_out_everywhere(settings, args.user)
    print(f"password set for {args.user}; their browser sessions are signed out")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    _, users = _users(args)
    print(users.issue_token(args.user))
    return 0


def cmd_signout(args: argparse.Namespace) -> int:
    settings, users = _users(args)
    tokens = tuple(users.get(args.user).tokens) if args.tokens else ()
    sign_out_everywhere(settings, args.user, tokens)
    withdrawn = users.revoke_tokens(args.user) if args.tokens else 0
    print(f"signed out every session of {args.user}" + (f"; {withdrawn} API token(s) withdrawn" if args.tokens else ""))
    return 0


def sign_out_everywhere(settings: Settings, user_id: str, token_digests: tuple[str, ...] = ()) -> None:
    """Revoke every browser session of ``user_id`` issued until now, and the API tokens with
    these SHA-256 digests, on every node (the shared revocations, announced through Redis)."""
    from ..auth.revocation_service import revoke_from_outside
    from ..auth.revocation_store import open_revocation_store
    from ..auth.revocations import token_revoked, user_revoked

    now = time.time()
    revocations = [user_revoked(user_id, now, settings.session.ttl_s)]
    revocations += [token_revoked(digest, now) for digest in token_digests]
    store = open_revocation_store(settings.ledger.url.get_secret_value(), settings.data_dir)
    asyncio.run(revoke_from_outside(store, settings.redis_url.get_secret_value(), revocations))


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="manage the local user store")
    add_settings_options(users)
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    def action(name: str, help: str, func: Any, *, user: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help)
        if user:
            parser.add_argument("user", metavar="USER")
        add_settings_options(parser, nested=True)
        parser.set_defaults(func=func)
        return parser

    action("list", "every user: id, role, teams, name", cmd_list, user=False)
    add = action("add", "add a user", cmd_add)
    add.add_argument("--role", choices=[r.value for r in Role], default="supervisor")
    add.add_argument("--name", help="display name")
    add.add_argument("--teams", help="comma-separated team names")
    add.add_argument("--password", action="store_true", help="ask for a password")
    action("remove", "remove a user and sign out their sessions", cmd_remove)
    action("passwd", "set a user's password and sign out their sessions", cmd_passwd)
    action("token", "issue an API token (printed once)", cmd_token)
    signout = action("signout", "end every browser session of a user, on every node", cmd_signout)
    signout.add_argument("--tokens", action="store_true", help="also withdraw the user's API tokens")

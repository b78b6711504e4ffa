"""``live audit verify | export | verify-bundle | report``: the ledger for the people it serves.

* ``verify``: rebuild the Merkle tree from storage and check every entry, signature and
  checkpoint; names the first bad entry; exit 1 on any problem (warnings do not fail).
* ``export``: one agent's listen sessions, as the verifiable bundle (``jsonl``) or for people
  (``csv``, ``pdf``); every export is recorded first (``export.made``).
* ``verify-bundle``: check a bundle offline with the published verifier key alone.
* ``rotate-key``: replace the signing key; the ``key.rotated`` entry, signed by the old
  key, lets ``verify --key OLD`` follow it.
* ``report``: the works-council report for one month, per team (``pdf`` with a bar chart,
  or ``csv``); recorded like an export.

``register(subparsers)`` adds ``audit`` to the ``live`` command
(``python -m live.cli audit verify --data DIR``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ..audit.checkpoint import CheckpointError
from ..audit.export import verify_bundle
from ..audit.ledger import open_ledger
from ..audit.log import MerkleLedger
from ..audit.proofs import b64
from ..config import Settings
from ..errors import LiveError
from ..l10n import LANGUAGES, check_language
from ..policy import read_policy_file
from ..reports.monthly import load_team_map
from ..reports.periods import parse_month, parse_period, zone_named
from ..reports.service import EXPORT_FORMATS as FORMATS
from ..reports.service import (
    AuditService,
    ExportRequest,
    People,
    ReportRequest,
    Requester,
)
from .runtime import add_settings_options, settings_of

CLI_ROLE = "operator"
"""The ``role`` recorded with exports made on the command line (by whoever runs it)."""


# --------------------------------------------------------------------------- the parser


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``audit`` and its commands to the ``live`` command's subparsers."""
    audit = subparsers.add_parser(
        "audit", help="verify the listen ledger, export disclosures, works-council reports"
    )
    add_commands(audit)
    audit.set_defaults(log_default="WARNING")  # a tool: its output is the result
    return audit  # type: ignore[no-any-return]


def add_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    common = add_settings_options

    def people(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tz", default="UTC", help="time zone of dates and times (default UTC)")
        p.add_argument("--lang", default="en", choices=LANGUAGES, help="language of the PDF")

    verify = sub.add_parser("verify", help="check the whole ledger; exit 1 on any problem")
    common(verify)
    verify.add_argument(
        "--checkpoint",
        action="append",
        metavar="FILE",
        help="a signed checkpoint kept elsewhere (an agent's, a witness's; a witness state "
        "directory works); repeatable",
    )
    verify.add_argument(
        "--key",
        "--trusted-key",
        dest="key",
        action="append",
        metavar="KEY",
        help="a trusted verifier key of the log (repeatable; default LIVE_LEDGER_TRUSTED_KEYS; "
        "without any, the key file beside the log is used, with a warning)",
    )
    verify.add_argument(
        "--witness",
        action="append",
        metavar="NAME+ID+KEY",
        help="a trusted witness key: checkpoints it cosigned count as kept elsewhere "
        "(repeatable; default LIVE_LEDGER_WITNESSES)",
    )
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.set_defaults(func=cmd_verify)

    export = sub.add_parser("export", help="one agent's listen sessions (bundle, CSV or PDF)")
    common(export)
    export.add_argument("--agent", required=True, help="the agent id")
    export.add_argument("--from", dest="start", metavar="DATE", help="YYYY-MM-DD or ISO time")
    export.add_argument("--to", dest="end", metavar="DATE", help="YYYY-MM-DD (inclusive) or ISO")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, metavar="FILE", help="output file, - for stdout")
    export.add_argument(
        "--listener-names",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show listeners by name, or (--no-listener-names) by role only; default: as the "
        "policy in force says ([disclosure] listener_names, LIVE_POLICY_FILE). A bundle "
        "carries the personal details only with an explicit --listener-names",
    )
    people(export)
    export.set_defaults(func=cmd_export)

    bundle = sub.add_parser("verify-bundle", help="check an export bundle offline")
    bundle.add_argument("file", help="the .jsonl bundle, - for stdin")
    keys = bundle.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="VERIFIER_KEY", help="the log's published verifier key")
    keys.add_argument("--key-file", metavar="FILE", help="a file holding the verifier key")
    bundle.set_defaults(func=cmd_verify_bundle)

    rotate = sub.add_parser(
        "rotate-key",
        help="replace the log's signing key (recorded as key.rotated, signed by the old key)",
    )
    common(rotate)
    rotate.add_argument(
        "--new-key", metavar="PEM", help="the new Ed25519 private key (default: a fresh one)"
    )
    rotate.set_defaults(func=cmd_rotate_key)

    report = sub.add_parser("report", help="the works-council report of one month, per team")
    common(report)
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--format", required=True, choices=("pdf", "csv"))
    report.add_argument("--out", required=True, metavar="FILE", help="output file, - for stdout")
    report.add_argument(
        "--team-map",
        "--teams-file",
        dest="team_map",
        metavar="FILE",
        help='TOML: [teams.<name>] agents = [...] (a policy file works) or [agents] id = "team"',
    )
    people(report)
    report.set_defaults(func=cmd_report)


# --------------------------------------------------------------------------- helpers


def _settings(args: argparse.Namespace) -> Settings:
    """Settings as every ``live`` command reads them (``LIVE_*`` over ``--config``; ``--data``
    wins). These commands create no session key: they must not create a data directory
    where there is no ledger."""
    settings = settings_of(args)
    # --- next to a demo: `live demo` keeps its data in ./live-demo-data
    if not getattr(args, "data", None) and _uses_demo_data(settings):
        print(
            f"live: no ledger in ./{settings.data_dir}; using the demo's in ./{DEMO_DATA_DIR} "
            "(give --data to choose)",
            file=sys.stderr,
        )
        return settings.model_copy(update={"data_dir": DEMO_DATA_DIR})
    return settings


DEMO_DATA_DIR = Path("live-demo-data")
"""Where ``live demo`` keeps its data by default."""


def _uses_demo_data(settings: Settings) -> bool:
    """The default data directory holds no ledger but the demo's, beside it, does."""
    return (
        not settings.ledger.url  # the ledger lives in the data directory
        and settings.data_dir == Settings.model_fields["data_dir"].default
        and not settings.ledger_path.exists()
        and (DEMO_DATA_DIR / settings.ledger_path.name).is_file()
    )


@asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[MerkleLedger]:
    """The configured ledger, opened without its checkpoint timer (a tool, not a server).

    Refuses to create a ledger or a signing key that is not there."""
    url = settings.ledger.url.get_secret_value()
    embedded = not url or url.startswith("sqlite:///")
    if embedded and not settings.ledger_path.is_file():
        raise LiveError(f"there is no ledger at {settings.ledger_path}", code="no_ledger")
    if not settings.ledger_key_path.is_file():
        raise LiveError(
            f"the ledger signing key {settings.ledger_key_path} is missing", code="no_key"
        )
    ledger = open_ledger(
        url,
        settings.ledger_path,
        key_path=settings.ledger_key_path,
        origin=settings.ledger.origin or None,
        checkpoint_every=settings.ledger.checkpoint_every,
        checkpoint_interval_s=0,
    )
    async with ledger:
        yield ledger


def _operator() -> str:
    """Who runs the command, for the ``export.made`` entry (a personal detail)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return f"cli:{name}" if name else "cli"


def _write(out: str, data: str | bytes) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if out == "-":
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    try:
        Path(out).write_bytes(raw)
    except OSError as exc:
        raise LiveError(f"cannot write {out}: {exc.strerror or exc}", code="io_error") from exc


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LiveError(f"cannot read {path}: {exc}", code="io_error") from exc


def _people(settings: Settings) -> People:
    """Roles and names from the user store beside the ledger (none if there is no store)."""
    from ..auth import UserStore

    if not settings.users_path.is_file():
        return People.nobody()
    return People.of(UserStore(settings.users_path).list)


def _say(*lines: str) -> None:
    # Results go to stderr when the document itself goes to stdout.
    for line in lines:
        print(line, file=sys.stderr)


# --------------------------------------------------------------------------- commands


FALLBACK_WARNING = (
    "WARNING: no trusted key was given (--key or LIVE_LEDGER_TRUSTED_KEYS), so the log was "
    "checked with the key file stored beside it. Whoever can rewrite the log can replace "
    "that file and re-sign everything: this result proves nothing unless that key is the "
    "one the operator published, or a witness's or agent's checkpoint is checked too."
)


def _held_checkpoint(path: str) -> str:
    """A checkpoint file, or the ``checkpoint`` file of a witness's state directory."""
    if path != "-" and Path(path).is_dir():
        path = str(Path(path) / "checkpoint")
    return _read(path)


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    settings = _settings(args)
    held = [_held_checkpoint(path) for path in args.checkpoint or ()]
    keys = tuple(args.key or settings.ledger.trusted_keys)
    witnesses = tuple(args.witness or settings.ledger.witnesses)

    async def run() -> tuple[Any, str, str]:
        async with _opened(settings) as ledger:
            try:
                report = await ledger.verify(
                    trusted_keys=keys,
                    trust_key_file=not keys,
                    held_checkpoints=held,
                    witnesses=witnesses,
                    checkpoint_interval_s=float(settings.ledger.checkpoint_interval_s),
                )
            except CheckpointError as exc:
                raise LiveError(f"bad --key or --witness: {exc.message}", code="bad_key") from exc
            return report, ledger.verifier_key(), ledger.store.description

    report, key, where = asyncio.run(run())
    if not keys:
        _say(FALLBACK_WARNING)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0 if report.ok else 1
    print(f"ledger       {report.origin} ({where})")
    print(f"entries      {report.entries} (tree size {report.tree_size})")
    print(f"checkpoints  {report.checkpoints}")
    print(f"root         {b64(report.root)} (hex {report.root.hex()})")
    print(f"details      {report.details_checked} checked, {report.details_erased} erased")
    print(f"key          {key}")  # the key file beside the log
    for trusted in report.keys:
        print(f"trusted key  {trusted}")
    for witness in witnesses:
        print(f"witness      {witness}")
    if not keys:
        print(FALLBACK_WARNING)
    elif key not in report.keys:
        print(
            "warning: the key file beside the log is not a trusted key (nor reached by a "
            "key.rotated entry): it was replaced, or the log's key was rotated off the record"
        )
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.ok:
        print("OK: every entry and checkpoint verifies")
        return 0
    first = report.first_bad_seq
    where_bad = f"first bad entry: {first}" if first is not None else "no entry named"
    print(f"FAILED: {len(report.problems)} problem(s); {where_bad}")
    for problem in report.problems:
        print(f"  [{problem.code}] {problem.message}")
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    zone = zone_named(args.tz)
    lang = check_language(args.lang)
    since, until = parse_period(args.start, args.end, zone)
    names = (
        args.listener_names
        if args.listener_names is not None
        else read_policy_file(settings.policy_path).listener_names
    )
    asked = ExportRequest(
        agent_id=args.agent,
        format=args.format,
        zone=zone,
        lang=lang,
        since=since,
        until=until,
        listener_names=names,
        include_details=bool(args.listener_names),
    )

    async def run() -> tuple[bytes, int, int]:
        async with _opened(settings) as ledger:
            service = AuditService(ledger, _people(settings))
            document = await service.export(asked, Requester(_operator(), CLI_ROLE))
            return document.body, document.entries, document.tree_size

    data, count, size = asyncio.run(run())
    _write(args.out, data)
    what = "entries" if args.format == "jsonl" else "listen sessions"
    _say(f"exported {count} {what} of agent {args.agent} at tree size {size} to {args.out}")
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    text = _read(args.file)
    key = args.key or (_read(args.key_file).strip() if args.key_file else None)
    if key is None:
        trusted = settings_of(args).ledger.trusted_keys
        key = trusted[0] if trusted else None
    report = verify_bundle(text, key)
    print(report.summary())
    if report.tree_size:
        print(
            f"checkpoint   {report.origin}, tree size {report.tree_size}, root {b64(report.root)}"
        )
        print(f"key          {report.verifier_key}")
    if report.key_from_bundle:
        message = (
            "warning: checked with the key inside the bundle, which whoever made the bundle "
            "chose, because no trusted key was given (--key, --key-file or "
            "LIVE_LEDGER_TRUSTED_KEYS). Compare it with the key the log's operator publishes."
        )
        print(message)
        _say(message)
    for problem in report.problems:
        print(f"  {problem.message}")
    if report.ok:
        kinds: dict[str, int] = {}
        for entry in report.entries:
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        for kind, count in sorted(kinds.items()):
            print(f"  {count:5d} {kind}")
    return 0 if report.ok else 1


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    settings = _settings(args)
    if args.new_key:
        try:
            pem = Path(args.new_key).read_bytes()
        except OSError as exc:
            raise LiveError(f"cannot read {args.new_key}: {exc}", code="io_error") from exc
    else:
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    async def run() -> tuple[str, int, str]:
        async with _opened(settings) as ledger:
            old = ledger.verifier_key()
            try:
                seq, new = await ledger.rotate_key(pem, actor=_operator())
            except CheckpointError as exc:
                raise LiveError(f"the new key: {exc.message}", code="bad_key") from exc
            return old, seq, new

    old, seq, new = asyncio.run(run())
    print(f"old key      {old}")
    print(f"new key      {new}")
    print(f"recorded     key.rotated at entry {seq}, signed and checkpointed by the old key")
    _say("restart every node of this log so that they sign with the new key")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    settings = _settings(args)
    zone = zone_named(args.tz)
    lang = check_language(args.lang)
    month = parse_month(args.month, zone)
    team_map = load_team_map(Path(args.team_map)) if args.team_map else {}
    source = Path(args.team_map).name if args.team_map else "recorded"
    asked = ReportRequest(
        month=month, format=args.format, lang=lang, team_map=team_map, team_source=source
    )

    async def run() -> tuple[bytes, int]:
        async with _opened(settings) as ledger:
            service = AuditService(ledger, _people(settings))
            document, figures = await service.report_with_figures(
                asked, Requester(_operator(), CLI_ROLE)
            )
            return document.body, len(figures.teams)

    data, teams = asyncio.run(run())
    _write(args.out, data)
    _say(f"report for {month.label}: {teams} team(s) written to {args.out}")
    return 0

"""``/api/audit/…``: checkpoints, proofs, listen sessions, verification, exports, reports.

Who may do what (roles from ``live.types.Role``):

=============================  =============================================================
``GET /api/audit/checkpoint``  auditor, admin, agent: the latest signed checkpoint and the
                               verifier key (what anyone keeps to check the log later)
``…/proof/inclusion``          auditor, admin; an agent only for entries about themself
``…/proof/consistency``        auditor, admin, agent
``…/sessions``                 auditor, admin: listen sessions, start joined with end
``…/verify``                   auditor, admin: the whole log checked now
``…/export``                   auditor, admin for any agent; an agent only for themself
``…/report``                   auditor, admin: the works-council report of one month
``POST …/inconsistency``       agent: their page found the log inconsistent with the
                               checkpoint it kept (ARCHITECTURE.md decision 10); on record
                               as ``checkpoint.inconsistent`` and logged for auditors
``POST …/cosignatures``        auditor, admin: a witness (``live witness``, run with an
                               auditor's token) hands in its C2SP cosignature of a checkpoint
=============================  =============================================================

The checkpoint is served with the cosignature lines of every witness that cosigned that very
checkpoint, and a ``witnesses`` list: each witness's newest cosigned size (``witnessed``).

Exports and reports are put on record (``export.made``) before they are handed out. Bad
parameters are 400 with a code (``bad_seq``, ``bad_size``, ``out_of_range``, ``bad_format``,
``bad_date``, ``bad_month``, ``bad_timezone``, ``bad_lang``, ``missing_agent``,
``bad_flag``, ``bad_problem``, ``bad_checkpoint``); an unknown entry is 404 ``unknown_entry``; a role that may not is 403
``role_forbidden``, an agent asking about someone else 403 ``not_your_entry`` /
``not_your_export``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..audit.checkpoint import CheckpointError, parse_checkpoint, parse_note, parse_verifier_key, verify_note
from ..audit.disclosure import (
    FORMATS,
    check_language,
    collect_disclosure,
    disclosure_csv,
    disclosure_pdf,
    join_sessions,
    local,
    parse_period,
    record_export,
    zone_named,
)
from ..audit.export import MEDIA_TYPE, export_bundle, verify_bundle
from ..audit.log import MerkleLedger
from ..audit.proofs import b64
from ..audit.report import collect_report, parse_month, report_csv, report_pdf
from ..audit.witnessed import BOOK_FILE, CosignatureBook, with_cosignatures
from ..auth import Identity
from ..errors import BadRequest, Conflict, Forbidden, LedgerUnavailable, NotFound
from ..types import Role
from .api import read_json
from .security import require
from .state import STATE

log = logging.getLogger(__name__)

AUDITORS = (Role.AUDITOR, Role.ADMIN)
INCONSISTENCY_PROBLEMS = (
    "key_changed",  # the verifier key differs from the one the page pinned
    "bad_signature",  # the served checkpoint is not signed by the served key
    "origin_changed",  # the served checkpoint is of another log
    "shrunk",  # the served tree is smaller than the kept one
    "inconsistent",  # the consistency proof does not link the kept root to the served one
)
"""What an agent's page may report (web/agent/ledger-check.js)."""
MAX_NOTE_CHARS = 8192
COSIGNATURES = web.AppKey("cosignatures", CosignatureBook)
COSIGNATURES_LOCK = web.AppKey("cosignatures_lock", asyncio.Lock)
MEDIA_TYPES = {"jsonl": MEDIA_TYPE, "csv": "text/csv", "pdf": "application/pdf"}


def _ledger(request: web.Request) -> MerkleLedger:
    ledger = request.app[STATE].node.ledger
    if not isinstance(ledger, MerkleLedger):  # the service is built with a MerkleLedger
        raise LedgerUnavailable("this ledger cannot serve proofs or exports")
    return ledger


def _int(query: Mapping[str, str], name: str, code: str, *, required: bool) -> int | None:
    raw = query.get(name, "").strip()
    if not raw:
        if required:
            raise BadRequest(f"{name} is required", code=code)
        return None
    if not re.fullmatch(r"[0-9]{1,18}", raw):  # 18 digits: always fits a 64-bit column
        raise BadRequest(f"{name} must be a non-negative integer below 10^18", code=code)
    return int(raw)


def _flag(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise BadRequest(f"{name} must be true or false", code="bad_flag")


def _choice(query: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = query.get(name, default).strip().lower()
    if value not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}", code=f"bad_{name}")
    return value


def _attachment(body: str | bytes, fmt: str, name: str) -> web.Response:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]
    response = web.Response(
        body=body.encode("utf-8") if isinstance(body, str) else body,
        content_type=MEDIA_TYPES[fmt],
        charset="utf-8" if fmt != "pdf" else None,
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.{fmt}"'
    return response


# --------------------------------------------------------------------------- checkpoint, proofs


async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint note, its parsed head, and the verifier key."""
    require(request, (*AUDITORS, Role.AGENT))
    ledger = _ledger(request)
    note = await ledger.checkpoint()
    key = ledger.verifier_key()
    cp = verify_note(note, key)
    witnessed = await asyncio.to_thread(request.app[COSIGNATURES].read)
    return web.json_response(
        {
            "checkpoint": with_cosignatures(note, witnessed),
            "verifier_key": key,
            "origin": cp.origin,
            "tree_size": cp.size,
            "root": b64(cp.root),
            "witnesses": [
                {
                    "witness": w.name,
                    "witness_key": w.witness_key,
                    "tree_size": w.tree_size,
                    "timestamp": w.timestamp,
                }
                for w in sorted(witnessed, key=lambda w: w.name)
            ],
        }
    )


async def add_cosignature(request: web.Request) -> web.Response:
    """``{checkpoint, cosignature, witness_key}``: store a witness's cosignature line
    (c2sp.org/tlog-cosignature) of a checkpoint this node signed. 400 ``bad_checkpoint``
    when it does not verify; 403 ``unknown_witness`` when ``LIVE_LEDGER_WITNESSES`` lists
    witnesses and this is not one; 409 ``witness_rollback`` when the witness had cosigned a
    larger tree."""
    require(request, AUDITORS)
    body = await read_json(request)
    note, line, witness_key = (body.get(k) for k in ("checkpoint", "cosignature", "witness_key"))
    if not all(isinstance(v, str) and v for v in (note, line, witness_key)):
        raise BadRequest(
            "checkpoint, cosignature and witness_key are required strings", code="bad_cosignature"
        )
    assert isinstance(note, str) and isinstance(line, str) and isinstance(witness_key, str)
    allowed = request.app[STATE].settings.witness_list
    if allowed and witness_key.strip() not in allowed:
        raise Forbidden("this witness key is not in LIVE_LEDGER_WITNESSES", code="unknown_witness")
    ledger = _ledger(request)
    log_key = parse_verifier_key(ledger.verifier_key())
    book = request.app[COSIGNATURES]
    async with request.app[COSIGNATURES_LOCK]:
        try:
            entry = await asyncio.to_thread(book.add, note, line, witness_key, log_key)
        except CheckpointError as exc:
            if exc.fields.get("rollback"):
                raise Conflict(exc.message, code="witness_rollback") from exc
            raise
    return web.json_response(
        {"witness": entry.name, "tree_size": entry.tree_size, "timestamp": entry.timestamp}
    )


async def inclusion_proof(request: web.Request) -> web.Response:
    """``?seq=&size=``: RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size``
    entries, with the entry's leaf. Without ``size``, against a current checkpoint, which
    the answer then carries."""
    identity = require(request, (*AUDITORS, Role.AGENT))
    seq = _int(request.query, "seq", "bad_seq", required=True)
    size = _int(request.query, "size", "bad_size", required=False)
    assert seq is not None
    ledger = _ledger(request)
    found = await ledger.entries(start=seq, stop=seq + 1)
    if not found:
        raise NotFound(f"there is no entry {seq}", code="unknown_entry")
    entry = found[0]
    if identity.role is Role.AGENT and entry.public_fields.get("agent_id") != identity.user_id:
        raise Forbidden("agents may only prove entries about themselves", code="not_your_entry")
    note = None
    if size is None:
        note = await ledger.checkpoint()
        size = verify_note(note, ledger.verifier_key()).size
    proof = await ledger.inclusion_proof(seq, size)
    body: dict[str, Any] = {**proof.to_json(), "leaf": entry.leaf().decode("utf-8")}
    if note is not None:
        body["checkpoint"] = note
    return web.json_response(body)


async def consistency_proof(request: web.Request) -> web.Response:
    """``?from=&to=``: RFC 9162 consistency proof between two tree sizes. Without ``to``,
    to a current checkpoint, which the answer then carries."""
    require(request, (*AUDITORS, Role.AGENT))
    old = _int(request.query, "from", "bad_size", required=True)
    new = _int(request.query, "to", "bad_size", required=False)
    assert old is not None
    ledger = _ledger(request)
    note = None
    if new is None:
        note = await ledger.checkpoint()
        new = verify_note(note, ledger.verifier_key()).size
    proof = await ledger.consistency_proof(old, new)
    body: dict[str, Any] = proof.to_json()
    if note is not None:
        body["checkpoint"] = note
    return web.json_response(body)


def _note_size(body: Mapping[str, Any], name: str, *, optional: bool = False) -> tuple[str | None, int | None]:
    """A signed checkpoint note from the body, and its tree size. Parsed, not verified: the
    kept one may be signed by a key the log no longer uses, which is what is reported."""
    note = body.get(name)
    if note is None and optional:
        return None, None
    if not isinstance(note, str) or not note or len(note) > MAX_NOTE_CHARS:
        raise BadRequest(
            f"{name} must be a signed checkpoint note of at most {MAX_NOTE_CHARS} characters",
            code="bad_checkpoint",
        )
    try:
        size = parse_checkpoint(parse_note(note).text).size
    except CheckpointError as exc:
        raise BadRequest(f"{name}: {exc}", code="bad_checkpoint") from None
    return note, size


async def report_inconsistency(request: web.Request) -> web.Response:
    """``{problem, kept, served}``: the agent's page holds the signed checkpoint ``kept`` from
    an earlier visit (``null`` on a first visit), and what this node served now (``served``)
    does not extend it or does not verify (the ``problem`` says how). Logged, and appended as ``checkpoint.inconsistent`` (a log that
    was rewritten may lose that entry again; the log line and the page's banner remain).
    Answers 202 with the entry's ``seq``."""
    identity = require(request, (Role.AGENT,))
    body = await read_json(request)
    problem = body.get("problem")
    if problem not in INCONSISTENCY_PROBLEMS:
        raise BadRequest(
            f"problem must be one of {', '.join(INCONSISTENCY_PROBLEMS)}", code="bad_problem"
        )
    kept, kept_size = _note_size(body, "kept", optional=True)
    served, served_size = _note_size(body, "served")
    log.warning(
        "agent %s reports the ledger inconsistent with a checkpoint they kept: %s "
        "(kept size %s, served size %s)",
        identity.user_id,
        problem,
        kept_size,
        served_size,
    )
    fields = {
        "kept_checkpoint": kept,
        "served_checkpoint": served,
        "kept_size": kept_size,
        "served_size": served_size,
    }
    seq = await _ledger(request).append(
        "checkpoint.inconsistent",
        actor=identity.user_id,
        at=time.time(),
        agent_id=identity.user_id,
        problem=problem,
        **{k: v for k, v in fields.items() if v is not None},
    )
    return web.json_response({"recorded": seq}, status=202)


# --------------------------------------------------------------------------- sessions, verify


async def sessions(request: web.Request) -> web.Response:
    """``?agent=&supervisor=&from=&to=&tz=``: listen sessions started in the period, newest
    first. ``supervisor`` matches the listener's user id, a personal detail: sessions whose
    details were erased (retention) no longer match it."""
    require(request, AUDITORS)
    query = request.query
    zone = zone_named(query.get("tz") or None)
    since, until = parse_period(query.get("from") or None, query.get("to") or None, zone)
    agent = query.get("agent", "").strip() or None
    supervisor = query.get("supervisor", "").strip() or None
    ledger = _ledger(request)
    started = await ledger.entries(kind="listen.started", agent_id=agent, since=since, until=until)
    ended = await ledger.entries(kind="listen.ended", agent_id=agent, since=since)
    records = [
        r
        for r in join_sessions([*started, *ended])
        if supervisor is None or r.listener_id == supervisor
    ]
    records.reverse()
    return web.json_response(
        {
            "sessions": [
                {**r.to_json(), "started_local": local(r.started_at, zone).isoformat()}
                for r in records
            ],
            "count": len(records),
            "timezone": zone.key,
        }
    )


async def verify(request: web.Request) -> web.Response:
    """The whole log rebuilt and checked now (``VerifyReport``), with the verifier key.

    Also trusted: ``LIVE_LEDGER_TRUSTED_KEYS`` (so rotations are followed from the first
    key) and, with ``LIVE_LEDGER_WITNESSES``, the checkpoints those witnesses cosigned."""
    require(request, AUDITORS)
    ledger = _ledger(request)
    settings = request.app[STATE].settings
    interval = float(settings.ledger_checkpoint_interval_s)
    witnesses = settings.witness_list
    witnessed = await asyncio.to_thread(request.app[COSIGNATURES].read) if witnesses else []
    report = await ledger.verify(
        trusted_keys=settings.trusted_key_list,
        held_checkpoints=[w.note for w in witnessed if w.witness_key in witnesses],
        witnesses=witnesses,
        checkpoint_interval_s=interval,
    )
    return web.json_response({**report.to_json(), "verifier_key": ledger.verifier_key()})


# --------------------------------------------------------------------------- exports, reports


def _role_of(request: web.Request) -> Any:
    users = request.app[STATE].users

    def role_of(user_id: str) -> str | None:
        return next((u.role.value for u in users.list() if u.user_id == user_id), None)

    return role_of


def _export_agent(identity: Identity, query: Mapping[str, str]) -> str:
    agent = query.get("agent", "").strip()
    if identity.role is Role.AGENT:
        if agent and agent != identity.user_id:
            raise Forbidden("agents may only export their own listens", code="not_your_export")
        return identity.user_id
    if not agent:
        raise BadRequest("agent is required", code="missing_agent")
    return agent


async def export(request: web.Request) -> web.Response:
    """``?agent=&format=jsonl|csv|pdf&from=&to=&tz=&lang=&listener_names=``: one agent's
    listen sessions as a verifiable bundle (jsonl) or for people (csv, pdf).

    Listeners are shown by name when the policy's ``[disclosure] listener_names`` says so,
    else by role; auditors and admins may override it with ``listener_names=true|false``,
    and their bundle with names carries the personal details."""
    identity = require(request, (*AUDITORS, Role.AGENT))
    query = request.query
    agent = _export_agent(identity, query)
    fmt = _choice(query, "format", FORMATS, "pdf")
    zone = zone_named(query.get("tz") or None)
    lang = check_language(query.get("lang") or None)
    since, until = parse_period(query.get("from") or None, query.get("to") or None, zone)
    # The policy's [disclosure] listener_names decides what an agent sees of who listened,
    # and is the default for everyone; auditors and admins may ask either way.
    disclosed = request.app[STATE].node.policy.current().listener_names
    names = _flag(query, "listener_names") if "listener_names" in query else disclosed
    if names and identity.role is Role.AGENT and not disclosed:
        raise Forbidden("the monitoring policy does not disclose listener names", code="role_forbidden")
    ledger = _ledger(request)
    now = time.time()
    body: str | bytes
    if fmt == "jsonl":
        # A bundle with details carries every personal field (callers' too): auditors only.
        body = await export_bundle(
            ledger,
            agent_id=agent,
            since=since,
            until=until,
            include_details=names and identity.role is not Role.AGENT,
        )
        checked = verify_bundle(body, ledger.verifier_key())
        count, size = len(checked.entries), checked.tree_size
    else:
        disclosure = await collect_disclosure(
            ledger,
            agent,
            since=since,
            until=until,
            listener_names=names,
            role_of=_role_of(request),
            generated_at=now,
        )
        body = (
            disclosure_csv(disclosure, zone)
            if fmt == "csv"
            else await asyncio.to_thread(disclosure_pdf, disclosure, zone, lang)
        )
        count, size = len(disclosure.rows), disclosure.checkpoint.size
    await record_export(
        ledger,
        actor=identity.user_id,
        role=identity.role.value,
        format=fmt,
        scope="agent",
        agent_id=agent,
        entries=count,
        tree_size=size,
        since=since,
        until=until,
        at=now,
    )
    return _attachment(body, fmt, f"live-listens-{agent}")


async def report(request: web.Request) -> web.Response:
    """``?month=YYYY-MM&format=pdf|csv&tz=&lang=``: the works-council report. Teams come
    from the policy in force, else from what each listen recorded."""
    identity = require(request, AUDITORS)
    query = request.query
    fmt = _choice(query, "format", ("pdf", "csv"), "pdf")
    zone = zone_named(query.get("tz") or None)
    lang = check_language(query.get("lang") or None)
    month = parse_month(query.get("month"), zone)
    policy = request.app[STATE].node.policy.loaded
    team_map = dict(policy.agent_teams) if policy is not None else {}
    ledger = _ledger(request)
    now = time.time()
    collected = await collect_report(
        ledger,
        month,
        team_map=team_map,
        team_source="policy" if team_map else "recorded",
        generated_at=now,
    )
    body: str | bytes = (
        report_csv(collected)
        if fmt == "csv"
        else await asyncio.to_thread(report_pdf, collected, lang)
    )
    await record_export(
        ledger,
        actor=identity.user_id,
        role=identity.role.value,
        format=fmt,
        scope="team-report",
        entries=collected.entries,
        tree_size=collected.checkpoint.size,
        since=month.since,
        until=month.until,
        at=now,
    )
    return _attachment(body, fmt, f"live-report-{month.label}")


def setup(app: web.Application) -> None:
    app[COSIGNATURES] = CosignatureBook(app[STATE].settings.data_dir / BOOK_FILE)
    app[COSIGNATURES_LOCK] = asyncio.Lock()
    app.router.add_get("/api/audit/checkpoint", checkpoint)
    app.router.add_post("/api/audit/cosignatures", add_cosignature)
    app.router.add_get("/api/audit/proof/inclusion", inclusion_proof)
    app.router.add_get("/api/audit/proof/consistency", consistency_proof)
    app.router.add_post("/api/audit/inconsistency", report_inconsistency)
    app.router.add_get("/api/audit/sessions", sessions)
    app.router.add_get("/api/audit/verify", verify)
    app.router.add_get("/api/audit/export", export)
    app.router.add_get("/api/audit/report", report)

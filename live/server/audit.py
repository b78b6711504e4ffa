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

from ..audit.checkpoint import (
    CheckpointError,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    verify_note,
)
from ..audit.log import MerkleLedger
from ..audit.proofs import b64
from ..audit.witnessed import BOOK_FILE, CosignatureBook, with_cosignatures
from ..auth import Identity
from ..errors import BadRequest, Conflict, Forbidden, LedgerUnavailable, LiveError, NotFound
from ..l10n import LanguageError, check_language
from ..reports.periods import PeriodError, local, parse_month, parse_period, zone_named
from ..reports.service import (
    EXPORT_FORMATS,
    REPORT_FORMATS,
    AuditService,
    Document,
    ExportRequest,
    FormatError,
    People,
    ReportRequest,
    Requester,
)
from ..reports.sessions import join_sessions
from ..types import Role
from .bodies import answer
from .route import AUDITORS
from .schemas_audit import (
    Checkpoint,
    ConsistencyProof,
    CosignatureIn,
    Cosigned,
    InclusionProof,
    InconsistencyReport,
    ListenRecord,
    Recorded,
    Sessions,
    Verified,
    Witnessed,
)
from .security import require
from .state import STATE

log = logging.getLogger(__name__)

COSIGNATURES = web.AppKey("cosignatures", CosignatureBook)
COSIGNATURES_LOCK = web.AppKey("cosignatures_lock", asyncio.Lock)
REQUEST_ERRORS = (PeriodError, LanguageError, FormatError)
"""Domain errors about what was asked for: answered 400 with their code."""


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


def _attachment(document: Document) -> web.Response:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", document.name)[:120]
    response = web.Response(
        body=document.body,
        content_type=document.media_type,
        charset="utf-8" if document.format != "pdf" else None,
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}.{document.format}"'
    return response


def _bad_request(exc: LiveError) -> BadRequest:
    """A domain error about the request's parameters, as the 400 it is over HTTP."""
    return BadRequest(exc.message, code=exc.code, **exc.fields)


# --------------------------------------------------------------------------- checkpoint, proofs


async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint note, its parsed head, and the verifier key."""
    require(request, (*AUDITORS, Role.AGENT))
    ledger = _ledger(request)
    note = await ledger.checkpoint()
    key = ledger.verifier_key()
    cp = verify_note(note, key)
    witnessed = await asyncio.to_thread(request.app[COSIGNATURES].read)
    return answer(
        Checkpoint(
            checkpoint=with_cosignatures(note, witnessed),
            verifier_key=key,
            origin=cp.origin,
            tree_size=cp.size,
            root=b64(cp.root),
            witnesses=[
                Witnessed(witness=w.name, witness_key=w.witness_key, tree_size=w.tree_size, timestamp=w.timestamp)
                for w in sorted(witnessed, key=lambda w: w.name)
            ],
        )
    )


async def add_cosignature(request: web.Request, body: CosignatureIn) -> web.Response:
    """``{checkpoint, cosignature, witness_key}``: store a witness's cosignature line
    (c2sp.org/tlog-cosignature) of a checkpoint this node signed. 400 ``bad_checkpoint``
    when it does not verify; 403 ``unknown_witness`` when ``LIVE_LEDGER_WITNESSES`` lists
    witnesses and this is not one; 409 ``witness_rollback`` when the witness had cosigned a
    larger tree."""
    require(request, AUDITORS)
    note, line, witness_key = body.checkpoint, body.cosignature, body.witness_key
    allowed = request.app[STATE].settings.ledger.witnesses
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
    return answer(Cosigned(witness=entry.name, tree_size=entry.tree_size, timestamp=entry.timestamp))


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
    return answer(InclusionProof.model_validate(body))


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
    return answer(ConsistencyProof.model_validate(body))


def _note_size(note: str | None, name: str) -> tuple[str | None, int | None]:
    """A signed checkpoint note from the body, and its tree size. Parsed, not verified: the
    kept one may be signed by a key the log no longer uses, which is what is reported."""
    if note is None:
        return None, None
    try:
        size = parse_checkpoint(parse_note(note).text).size
    except CheckpointError as exc:
        raise BadRequest(f"{name}: {exc}", code="bad_checkpoint") from None
    return note, size


async def report_inconsistency(request: web.Request, body: InconsistencyReport) -> web.Response:
    """``{problem, kept, served}``: the agent's page holds the signed checkpoint ``kept`` from
    an earlier visit (``null`` on a first visit), and what this node served now (``served``)
    does not extend it or does not verify (the ``problem`` says how). Logged, and appended as ``checkpoint.inconsistent`` (a log that
    was rewritten may lose that entry again; the log line and the page's banner remain).
    Answers 202 with the entry's ``seq``."""
    identity = require(request, (Role.AGENT,))
    problem = body.problem
    kept, kept_size = _note_size(body.kept, "kept")
    served, served_size = _note_size(body.served, "served")
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
    return answer(Recorded(recorded=seq), status=202)


# --------------------------------------------------------------------------- sessions, verify


async def sessions(request: web.Request) -> web.Response:
    """``?agent=&supervisor=&from=&to=&tz=``: listen sessions started in the period, newest
    first. ``supervisor`` matches the listener's user id, a personal detail: sessions whose
    details were erased (retention) no longer match it."""
    require(request, AUDITORS)
    query = request.query
    try:
        zone = zone_named(query.get("tz") or None)
        since, until = parse_period(query.get("from") or None, query.get("to") or None, zone)
    except PeriodError as exc:
        raise _bad_request(exc) from exc
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
    return answer(
        Sessions(
            sessions=[
                ListenRecord.model_validate({**r.to_json(), "started_local": local(r.started_at, zone).isoformat()})
                for r in records
            ],
            count=len(records),
            timezone=zone.key,
        )
    )


async def verify(request: web.Request) -> web.Response:
    """The whole log rebuilt and checked now (``VerifyReport``), with the verifier key.

    Also trusted: ``LIVE_LEDGER_TRUSTED_KEYS`` (so rotations are followed from the first
    key) and, with ``LIVE_LEDGER_WITNESSES``, the checkpoints those witnesses cosigned."""
    require(request, AUDITORS)
    ledger = _ledger(request)
    settings = request.app[STATE].settings
    interval = float(settings.ledger.checkpoint_interval_s)
    witnesses = settings.ledger.witnesses
    witnessed = await asyncio.to_thread(request.app[COSIGNATURES].read) if witnesses else []
    report = await ledger.verify(
        trusted_keys=settings.ledger.trusted_keys,
        held_checkpoints=[w.note for w in witnessed if w.witness_key in witnesses],
        witnesses=witnesses,
        checkpoint_interval_s=interval,
    )
    return answer(Verified.model_validate({**report.to_json(), "verifier_key": ledger.verifier_key()}))


# --------------------------------------------------------------------------- exports, reports


def _service(request: web.Request) -> AuditService:
    users = request.app[STATE].users
    return AuditService(_ledger(request), People.of(users.list))


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
    fmt = _choice(query, "format", EXPORT_FORMATS, "pdf")
    try:
        zone = zone_named(query.get("tz") or None)
        lang = check_language(query.get("lang") or None)
        since, until = parse_period(query.get("from") or None, query.get("to") or None, zone)
    except REQUEST_ERRORS as exc:
        raise _bad_request(exc) from exc
    # The policy's [disclosure] listener_names decides what an agent sees of who listened,
    # and is the default for everyone; auditors and admins may ask either way.
    disclosed = request.app[STATE].node.policy.current().listener_names
    names = _flag(query, "listener_names") if "listener_names" in query else disclosed
    if names and identity.role is Role.AGENT and not disclosed:
        raise Forbidden("the monitoring policy does not disclose listener names", code="role_forbidden")
    asked = ExportRequest(
        agent_id=agent,
        format=fmt,
        zone=zone,
        lang=lang,
        since=since,
        until=until,
        listener_names=names,
        # A bundle with details carries every personal field (callers' too): auditors only.
        include_details=names and identity.role is not Role.AGENT,
    )
    document = await _service(request).export(
        asked, Requester(identity.user_id, identity.role.value)
    )
    return _attachment(document)


async def report(request: web.Request) -> web.Response:
    """``?month=YYYY-MM&format=pdf|csv&tz=&lang=``: the works-council report. Teams come
    from the policy in force, else from what each listen recorded."""
    identity = require(request, AUDITORS)
    query = request.query
    fmt = _choice(query, "format", REPORT_FORMATS, "pdf")
    try:
        zone = zone_named(query.get("tz") or None)
        lang = check_language(query.get("lang") or None)
        month = parse_month(query.get("month"), zone)
    except REQUEST_ERRORS as exc:
        raise _bad_request(exc) from exc
    policy = request.app[STATE].node.policy.loaded
    team_map = dict(policy.agent_teams) if policy is not None else {}
    asked = ReportRequest(
        month=month,
        format=fmt,
        lang=lang,
        team_map=team_map,
        team_source="policy" if team_map else "recorded",
    )
    document = await _service(request).report(
        asked, Requester(identity.user_id, identity.role.value)
    )
    return _attachment(document)


def setup(app: web.Application) -> None:
    """The cosignature book the checkpoint and cosignature routes share."""
    app[COSIGNATURES] = CosignatureBook(app[STATE].settings.data_dir / BOOK_FILE)
    app[COSIGNATURES_LOCK] = asyncio.Lock()

"""The route table's ``/api/audit/…`` part: the handlers of ``live.server.audit`` as data."""

from __future__ import annotations

from types import MappingProxyType

from ..types import Role
from .audit import (
    add_cosignature,
    checkpoint,
    consistency_proof,
    export,
    inclusion_proof,
    report,
    report_inconsistency,
    sessions,
    verify,
)
from .route import AUDITORS, Param, Reply, Route, roles, takes
from .schemas_audit import (
    Checkpoint,
    ConsistencyProof,
    CosignatureIn,
    Cosigned,
    InclusionProof,
    InconsistencyReport,
    Recorded,
    Sessions,
    Verified,
)

SIZE = MappingProxyType({"type": "string", "pattern": "^[0-9]{1,19}$"})
PERIOD = (
    Param("from", "Start date `YYYY-MM-DD` or ISO 8601 date-time (in `tz` unless it names a zone)."),
    Param("to", "End date (inclusive) or date-time."),
    Param("tz", "IANA time zone (default UTC)."),
)
LANG = Param("lang", "Language of a PDF.", MappingProxyType({"enum": ["en", "de"]}))
ATTACHMENT = MappingProxyType({"Content-Disposition": {"schema": {"type": "string"}, "description": "attachment; filename=..."}})
PDF = MappingProxyType({"type": "string", "contentMediaType": "application/pdf"})
TEXT = MappingProxyType({"type": "string"})
PROVERS = roles(*AUDITORS, Role.AGENT)  # agents only their own: the handlers narrow it

ROUTES = (
    Route(
        method="GET",
        path="/api/audit/checkpoint",
        handler=checkpoint,
        rule=PROVERS,
        operation_id="checkpoint",
        summary="The latest signed checkpoint and the verifier key.",
        tag="audit",
        replies=(Reply(200, "OK", Checkpoint),),
        errors=(503,),
    ),
    Route(
        method="POST",
        path="/api/audit/cosignatures",
        handler=takes(CosignatureIn, add_cosignature),
        rule=roles(*AUDITORS),
        operation_id="addCosignature",
        summary="A witness's cosignature of a checkpoint (`live witness`).",
        tag="audit",
        description="The cosignature line must verify under `witness_key` over a checkpoint "
        "this node signed: else 400 `bad_checkpoint`. 403 `unknown_witness` when "
        "`LIVE_LEDGER_WITNESSES` is set and does not list the key; 409 `witness_rollback` "
        "when the witness had cosigned a larger tree.",
        replies=(Reply(200, "OK", Cosigned),),
        errors=(409, 503),
    ),
    Route(
        method="GET",
        path="/api/audit/proof/inclusion",
        handler=inclusion_proof,
        rule=PROVERS,
        operation_id="inclusionProof",
        summary="RFC 9162 inclusion proof of one entry.",
        tag="audit",
        description="An agent only for entries about themself (403 `not_your_entry`); 404 `unknown_entry`.",
        params=(
            Param("seq", "The entry's sequence number.", SIZE, required=True),
            Param("size", "Tree size (default: a current checkpoint).", SIZE),
        ),
        replies=(Reply(200, "OK", InclusionProof),),
        errors=(400, 404, 503),
    ),
    Route(
        method="GET",
        path="/api/audit/proof/consistency",
        handler=consistency_proof,
        rule=PROVERS,
        operation_id="consistencyProof",
        summary="RFC 9162 consistency proof.",
        tag="audit",
        params=(
            Param("from", "The older tree size.", SIZE, required=True),
            Param("to", "The newer tree size (default: a current checkpoint).", SIZE),
        ),
        replies=(Reply(200, "OK", ConsistencyProof),),
        errors=(400, 503),
    ),
    Route(
        method="POST",
        path="/api/audit/inconsistency",
        handler=takes(InconsistencyReport, report_inconsistency),
        rule=roles(Role.AGENT),  # what the agent's page found
        operation_id="reportInconsistency",
        summary="Report a log that does not extend a checkpoint the agent's page kept.",
        tag="audit",
        description="The agent page's own check (ARCHITECTURE.md decision 10). 400 `bad_problem`, "
        "`bad_checkpoint` (a note that does not parse).",
        replies=(Reply(202, "On record as `checkpoint.inconsistent`.", Recorded),),
        errors=(400, 503),
    ),
    Route(
        method="GET",
        path="/api/audit/sessions",
        handler=sessions,
        rule=roles(*AUDITORS),
        operation_id="auditSessions",
        summary="Listen sessions started in a period, newest first.",
        tag="audit",
        params=(
            Param("agent", "Only this agent's."),
            Param("supervisor", "Only this listener's (user id; erased details no longer match)."),
            *PERIOD,
        ),
        replies=(Reply(200, "OK", Sessions),),
        errors=(400, 503),
    ),
    Route(
        method="GET",
        path="/api/audit/verify",
        handler=verify,
        rule=roles(*AUDITORS),
        operation_id="auditVerify",
        summary="The whole log rebuilt and checked now.",
        tag="audit",
        replies=(Reply(200, "OK", Verified),),
        errors=(503,),
    ),
    Route(
        method="GET",
        path="/api/audit/export",
        handler=export,
        rule=PROVERS,
        operation_id="auditExport",
        summary="One agent's listen sessions, verifiable or for people.",
        tag="audit",
        description="Auditors and admins for any agent (`agent` required); an agent only for "
        "themself (403 `not_your_export`). `listener_names=true` (not for agents) shows names.",
        params=(
            Param("agent", "The agent (required for auditors and admins)."),
            Param("format", "Bundle (jsonl), CSV or PDF (default).", MappingProxyType({"enum": ["jsonl", "csv", "pdf"]})),
            *PERIOD,
            LANG,
            Param(
                "listener_names",
                "Show listeners' names.",
                MappingProxyType({"enum": ["true", "false", "1", "0", "yes", "no"]}),
            ),
        ),
        replies=(
            Reply(
                200,
                "An attachment; the export is on record (`export.made`).",
                media={"application/jsonl": TEXT, "text/csv": TEXT, "application/pdf": PDF},
                headers=ATTACHMENT,
            ),
        ),
        errors=(400, 503),
    ),
    Route(
        method="GET",
        path="/api/audit/report",
        handler=report,
        rule=roles(*AUDITORS),
        operation_id="auditReport",
        summary="The works-council report of one month.",
        tag="audit",
        params=(
            Param("month", "`YYYY-MM`.", MappingProxyType({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}), required=True),
            Param("format", "PDF (default) or CSV.", MappingProxyType({"enum": ["pdf", "csv"]})),
            Param("tz", "IANA time zone (default UTC)."),
            LANG,
        ),
        replies=(
            Reply(
                200,
                "An attachment; the report is on record (`export.made`).",
                media={"text/csv": TEXT, "application/pdf": PDF},
                headers=ATTACHMENT,
            ),
        ),
        errors=(400, 503),
    ),
)

"""Labels of the ids people see: purposes, roles, legs, refusal and end reasons, in EN/DE.

The one server-side table: the purpose labels are those of the pages
(``web/shared/purposes.js``; a test holds the two equal), so a purpose reads the same in the
console, on the agent page, in notices, exports and reports. An id without a label is shown as it is (a site's
own purpose from its policy file).
"""

from __future__ import annotations

from collections.abc import Mapping

LABELS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "purpose.quality": "Quality assurance",
        "purpose.training": "Training",
        "purpose.coaching": "Coaching",
        "purpose.onboarding": "Onboarding",
        "purpose.complaint": "Complaint review",
        "purpose.compliance": "Compliance check",
        "purpose.escalation": "Escalation support",
        "purpose.fraud": "Fraud investigation",
        "role.supervisor": "supervisor",
        "role.admin": "administrator",
        "role.auditor": "auditor",
        "role.agent": "agent",
        "role.listener": "listener",
        "role.operator": "operator",
        "leg.agent": "agent",
        "leg.caller": "caller",
        "leg.none": "none",
        "refusal.role_forbidden": "role may not listen",
        "refusal.call_unknown": "unknown call",
        "refusal.purpose_required": "no purpose given",
        "refusal.purpose_not_allowed": "purpose not allowed",
        "refusal.call_private": "private call",
        "refusal.excluded": "excluded call",
        "refusal.outside_team": "outside the listener's teams",
        "refusal.outside_hours": "outside allowed hours",
        "refusal.quota_supervisor_day": "listener's daily quota",
        "refusal.quota_agent_month": "agent's monthly quota",
        "refusal.ledger_unavailable": "could not be logged",
        "end.stopped": "stopped by the listener",
        "end.call-ended": "call ended",
        "end.peer-closed": "browser closed",
        "end.peer-failed": "connection failed",
        "end.shutdown": "server shutdown",
        "end.node-lost": "server lost",
        "end.setup-failed": "setup failed",
    },
    "de": {
        "purpose.quality": "Qualitätssicherung",
        "purpose.training": "Schulung",
        "purpose.coaching": "Coaching",
        "purpose.onboarding": "Einarbeitung",
        "purpose.complaint": "Beschwerdeprüfung",
        "purpose.compliance": "Compliance-Prüfung",
        "purpose.escalation": "Unterstützung bei Eskalation",
        "purpose.fraud": "Betrugsermittlung",
        "role.supervisor": "Teamleitung",
        "role.admin": "Administrator/in",
        "role.auditor": "Prüfer/in",
        "role.agent": "Agent/in",
        "role.listener": "mithörende Person",
        "role.operator": "Betreiber/in",
        "leg.agent": "Agent/in",
        "leg.caller": "Anrufer/in",
        "leg.none": "keine",
        "refusal.role_forbidden": "Rolle darf nicht mithören",
        "refusal.call_unknown": "unbekanntes Gespräch",
        "refusal.purpose_required": "kein Zweck angegeben",
        "refusal.purpose_not_allowed": "Zweck nicht erlaubt",
        "refusal.call_private": "privates Gespräch",
        "refusal.excluded": "ausgeschlossenes Gespräch",
        "refusal.outside_team": "außerhalb der eigenen Teams",
        "refusal.outside_hours": "außerhalb der erlaubten Zeiten",
        "refusal.quota_supervisor_day": "Tageskontingent der Teamleitung",
        "refusal.quota_agent_month": "Monatskontingent je Agent/in",
        "refusal.ledger_unavailable": "konnte nicht protokolliert werden",
        "end.stopped": "von der mithörenden Person beendet",
        "end.call-ended": "Gespräch beendet",
        "end.peer-closed": "Browser geschlossen",
        "end.peer-failed": "Verbindung fehlgeschlagen",
        "end.shutdown": "Server heruntergefahren",
        "end.node-lost": "Server ausgefallen",
        "end.setup-failed": "Aufbau fehlgeschlagen",
    },
}
"""``<kind>.<id>`` → label, per language; English where German lacks one."""


def label(kind: str, value: str | None, lang: str = "en", default: str = "-") -> str:
    """The label of id ``value`` of ``kind`` (``purpose``, ``role``, ``leg``, ``refusal``,
    ``end``) in ``lang``; the id itself when it has none; ``default`` when it is empty."""
    if not value:
        return default
    key = f"{kind}.{value}"
    return LABELS.get(lang, {}).get(key) or LABELS["en"].get(key) or value


def plural_form(count: int) -> str:
    """The plural category of ``count`` in English and German (CLDR): ``one`` for exactly
    one, else ``other``. String tables hold ``<key>.one`` and ``<key>.other``."""
    return "one" if count == 1 else "other"

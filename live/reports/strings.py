"""The words of the documents ``live`` hands to people (disclosures, works-council reports),
in English and German. Labels of ids (purposes, roles, legs, refusal reasons) come from the
one table in ``live.l10n.labels``; durations from ``live.l10n.durations``."""

from __future__ import annotations

from collections.abc import Mapping

from ..l10n import label, plural_form

STRINGS: Mapping[str, Mapping[str, str]] = {
    "en": {
        # --- the agent's disclosure
        "title": "Listening in on the calls of {agent}",
        "intro": (
            "This statement lists every time someone listened in on the calls of {agent}, as "
            "the monitoring ledger holds it for the period (right of access, GDPR Art. 15). "
            "Each listen session is an entry of a signed, append-only log. The "
            "machine-readable export (JSON Lines) of the same period carries proofs that "
            "anyone can check offline with <font face='Courier'>live audit verify-bundle</font> "
            "and the verifier key below."
        ),
        "period": "Period",
        "all": "all entries",
        "generated": "Generated",
        "zone": "Times in",
        "shown": "Listener shown as",
        "shown.names": "name",
        "shown.roles": "role",
        "summary.one": "{count} listen session, {duration} in all.",
        "summary.other": "{count} listen sessions, {duration} in all.",
        "none": "Nobody listened in on these calls in this period.",
        "col.date": "Date",
        "col.time": "Time",
        "col.duration": "Duration",
        "col.legs": "Legs heard",
        "col.purpose": "Purpose",
        "col.listener": "Listener",
        "col.policy": "Policy version",
        "col.entry": "Entry",
        "running": "running",
        "attempt": "attempt, nothing heard",
        # --- the checkpoint section of both
        "cp.heading": "Signed checkpoint",
        "cp.text": (
            "Read from the log <b>{origin}</b> at tree size <b>{size}</b>{signed}. "
            "Root hash (base64, the third line of the checkpoint):"
        ),
        "cp.signed": ", checkpoint signed {at}",
        "cp.note": "The checkpoint (c2sp.org/signed-note):",
        "cp.key": "Verifier key (compare it with the key the operator publishes):",
        "page": "Page {page}",
        # --- the works-council report
        "report.title": "Monitoring report for the works council: {month}",
        "report.intro": (
            "Listen sessions started in {month}, per team: how many, their minutes, how many "
            "agents were listened to, for which purposes, and how many listen requests were "
            "refused and why; then the policy versions in force, the policy changes and the "
            "exports made in the month. The figures are read from the signed listen ledger at "
            "the checkpoint below; they name no one."
        ),
        "month": "Month",
        "teams.from": "Teams from",
        "teams.recorded": 'the team recorded with each listen, else "all"',
        "teams.policy": "the monitoring policy in force, else the team recorded with each listen",
        "overview": "Overview",
        "chart": "Listens and refused requests per team",
        "chart.listens": "Listens",
        "chart.refused": "Refused requests",
        "chart.empty": "No listens and no refused requests in this month.",
        "col.team": "Team",
        "col.listens": "Listens",
        "col.minutes": "Minutes",
        "col.agents": "Agents",
        "col.running": "Running",
        "col.attempts": "Attempts",
        "col.end_unknown": "End unknown",
        "col.refused": "Refused",
        "col.other": "Others",
        "purposes": "Purposes",
        "reasons": "Why requests were refused",
        "none.short": "None.",
        "team.all": "all",
        "team.total": "Total",
        "policy": "Monitoring policy",
        "policy.versions": "Versions in force",
        "policy.unknown": "not on record",
        "policy.changes.none": "The policy did not change in this month.",
        "policy.changes.one": "The policy changed once in this month:",
        "policy.changes.other": "The policy changed {count} times in this month:",
        "col.when": "When",
        "col.from": "From version",
        "col.to": "To version",
        "exports": "Exports made",
        "exports.none": "No exports or reports were made in this month.",
        "exports.one": "1 export or report was made in this month:",
        "exports.other": "{count} exports and reports were made in this month:",
        "col.scope": "What",
        "col.format": "Format",
        "col.role": "Made by (role)",
        "col.entries": "Entries",
        "scope.agent": "an agent's listens",
        "scope.team-report": "works-council report",
    },
    "de": {
        "title": "Mithören bei den Gesprächen von {agent}",
        "intro": (
            "Diese Aufstellung nennt jeden Mithör-Vorgang bei den Gesprächen von {agent}, den "
            "das Mithör-Protokoll für den Zeitraum enthält (Auskunftsrecht, Art. 15 DSGVO). "
            "Jeder Vorgang ist ein Eintrag in einem signierten, nur fortschreibbaren Protokoll. "
            "Der maschinenlesbare Export (JSON Lines) desselben Zeitraums enthält Nachweise, die "
            "jede Person offline mit <font face='Courier'>live audit verify-bundle</font> und "
            "dem unten stehenden Prüfschlüssel prüfen kann."
        ),
        "period": "Zeitraum",
        "all": "alle Einträge",
        "generated": "Erstellt",
        "zone": "Zeiten in",
        "shown": "Mithörende Person angezeigt als",
        "shown.names": "Name",
        "shown.roles": "Rolle",
        "summary.one": "{count} Mithör-Vorgang, insgesamt {duration}.",
        "summary.other": "{count} Mithör-Vorgänge, insgesamt {duration}.",
        "none": "In diesem Zeitraum hat niemand bei diesen Gesprächen mitgehört.",
        "col.date": "Datum",
        "col.time": "Uhrzeit",
        "col.duration": "Dauer",
        "col.legs": "Gehörte Seiten",
        "col.purpose": "Zweck",
        "col.listener": "Mithörende Person",
        "col.policy": "Richtlinie",
        "col.entry": "Eintrag",
        "running": "läuft",
        "attempt": "Versuch, nichts gehört",
        "cp.heading": "Signierter Prüfpunkt",
        "cp.text": (
            "Gelesen aus dem Protokoll <b>{origin}</b> bei Baumgröße <b>{size}</b>{signed}. "
            "Wurzel-Hash (Base64, die dritte Zeile des Prüfpunkts):"
        ),
        "cp.signed": ", Prüfpunkt signiert {at}",
        "cp.note": "Der Prüfpunkt (c2sp.org/signed-note):",
        "cp.key": "Prüfschlüssel (mit dem vom Betreiber veröffentlichten Schlüssel vergleichen):",
        "page": "Seite {page}",
        "report.title": "Bericht zum Mithören für den Betriebsrat: {month}",
        "report.intro": (
            "Mithör-Vorgänge, die im Monat {month} begonnen haben, je Team: wie viele, ihre "
            "Minuten, bei wie vielen Agent/innen mitgehört wurde, zu welchen Zwecken, und wie "
            "viele Anfragen abgelehnt wurden und warum; dann die geltenden Fassungen der "
            "Richtlinie, ihre Änderungen und die Exporte des Monats. Die Zahlen stammen aus dem "
            "signierten Mithör-Protokoll beim unten genannten Prüfpunkt; sie nennen keine Namen."
        ),
        "month": "Monat",
        "teams.from": "Teams laut",
        "teams.recorded": 'Team im Eintrag des Vorgangs, sonst "alle"',
        "teams.policy": "geltender Richtlinie, sonst Team im Eintrag des Vorgangs",
        "overview": "Übersicht",
        "chart": "Mithör-Vorgänge und abgelehnte Anfragen je Team",
        "chart.listens": "Mithör-Vorgänge",
        "chart.refused": "Abgelehnte Anfragen",
        "chart.empty": "In diesem Monat gab es keine Mithör-Vorgänge und keine Ablehnungen.",
        "col.team": "Team",
        "col.listens": "Vorgänge",
        "col.minutes": "Minuten",
        "col.agents": "Agent/innen",
        "col.running": "Laufend",
        "col.attempts": "Versuche",
        "col.end_unknown": "Ende offen",
        "col.refused": "Abgelehnt",
        "col.other": "Weitere",
        "purposes": "Zwecke",
        "reasons": "Gründe der Ablehnungen",
        "none.short": "Keine.",
        "team.all": "alle",
        "team.total": "Summe",
        "policy": "Richtlinie zum Mithören",
        "policy.versions": "Geltende Fassungen",
        "policy.unknown": "nicht protokolliert",
        "policy.changes.none": "Die Richtlinie wurde in diesem Monat nicht geändert.",
        "policy.changes.one": "Die Richtlinie wurde in diesem Monat einmal geändert:",
        "policy.changes.other": "Die Richtlinie wurde in diesem Monat {count}-mal geändert:",
        "col.when": "Zeitpunkt",
        "col.from": "Von Fassung",
        "col.to": "Zu Fassung",
        "exports": "Erstellte Exporte",
        "exports.none": "In diesem Monat wurden keine Exporte oder Berichte erstellt.",
        "exports.one": "In diesem Monat wurde 1 Export oder Bericht erstellt:",
        "exports.other": "In diesem Monat wurden {count} Exporte und Berichte erstellt:",
        "col.scope": "Was",
        "col.format": "Format",
        "col.role": "Erstellt von (Rolle)",
        "col.entries": "Einträge",
        "scope.agent": "Mithör-Vorgänge einer Person",
        "scope.team-report": "Bericht für den Betriebsrat",
    },
}


class Words:
    """The document strings of one language; English where a translation is missing."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in STRINGS else "en"
        self._own = STRINGS[self.lang]
        self._en = STRINGS["en"]

    def __call__(self, key: str, **params: object) -> str:
        text = self._own.get(key, self._en.get(key, key))
        return text.format(**params) if params else text

    def count(self, key: str, count: int, **params: object) -> str:
        """``key.one`` or ``key.other`` by ``count`` (``live.l10n.plural_form``)."""
        return self(f"{key}.{plural_form(count)}", count=count, **params)

    def label(self, kind: str, value: str | None, default: str = "-") -> str:
        """The label of an id (``purpose``, ``role``, ``leg``, ``refusal``, ``end``) from the
        one table, or of a document id (``team``, ``teams``, ``scope``) from these strings."""
        if kind in ("team", "teams", "scope"):
            if not value:
                return default
            return self._own.get(f"{kind}.{value}", self._en.get(f"{kind}.{value}", value))
        return label(kind, value, self.lang, default)

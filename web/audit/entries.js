// The audit page's list of every ledger entry, of every kind, newest first: filters (kind,
// actor, agent, period), a page at a time ("Show older entries"). Data:
// GET /api/audit/entries (auditors and admins).

import { clock } from "../shared/duration.js";

export const ENTRY_STRINGS = {
  en: {
    "entries.heading": "Every entry of the ledger",
    "entries.kind": "Kind",
    "entries.anyKind": "Any kind",
    "entries.actor": "Actor",
    "entries.agent": "Agent",
    "entries.from": "From",
    "entries.to": "To",
    "entries.submit": "Show",
    "entries.more": "Show older entries",
    "entries.count": "{count} entries shown, newest first (the ledger holds {total})",
    "entries.countOne": "1 entry shown (the ledger holds {total})",
    "entries.none": "No entries match.",
    "entries.error": "The entries could not be listed ({error}).",
    "entries.erased": "personal details erased",
    "ecol.seq": "Entry",
    "ecol.at": "Time",
    "ecol.kind": "Kind",
    "ecol.actor": "Actor",
    "ecol.agent": "Agent",
    "ecol.details": "Details",
    "kind.listen.started": "Listen started",
    "kind.listen.ended": "Listen ended",
    "kind.listen.refused": "Listen refused",
    "kind.leg.muted": "Side muted",
    "kind.leg.unmuted": "Side audible again",
    "kind.notice.delivered": "Notice delivered",
    "kind.notice.seen": "Notice seen",
    "kind.policy.changed": "Policy changed",
    "kind.export.made": "Export made",
    "kind.purge.done": "Personal details erased",
    "kind.consent.changed": "Consent changed",
    "kind.key.rotated": "Signing key replaced",
    "kind.pci.paused": "Payment pause started",
    "kind.pci.resumed": "Payment pause ended",
    "kind.checkpoint.inconsistent": "Log inconsistency reported",
    "actor.system": "the server",
    "actor.user": "a person (details erased)",
    "field.session_id": "session",
    "field.call_id": "call",
    "field.node_id": "node",
    "field.user_id": "listener",
    "field.display_name": "name",
    "field.purpose": "purpose",
    "field.legs": "sides",
    "field.leg": "side",
    "field.reason": "reason",
    "field.code": "code",
    "field.role": "role",
    "field.policy_version": "policy",
    "field.started_at": "started",
    "field.ended_at": "ended",
    "field.duration_s": "duration",
    "field.version": "version",
    "field.previous_version": "previous version",
    "field.format": "format",
    "field.scope": "scope",
    "field.entries": "entries",
    "field.tree_size": "log size",
    "field.since": "from",
    "field.until": "until",
    "field.before": "older than",
    "field.erased": "erased",
    "field.retention_days": "retention (days)",
    "field.consent": "consent",
    "field.source": "source",
    "field.problem": "problem",
    "field.mode": "mode",
    "field.channel": "channel",
    "field.notice_id": "notice",
    "field.seen_at": "seen",
    "field.export_id": "export",
  },
  de: {
    "entries.heading": "Alle Einträge des Protokolls",
    "entries.kind": "Art",
    "entries.anyKind": "Jede Art",
    "entries.actor": "Handelnde Person",
    "entries.agent": "Agent/in",
    "entries.from": "Von",
    "entries.to": "Bis",
    "entries.submit": "Anzeigen",
    "entries.more": "Ältere Einträge anzeigen",
    "entries.count": "{count} Einträge angezeigt, neueste zuerst (das Protokoll enthält {total})",
    "entries.countOne": "1 Eintrag angezeigt (das Protokoll enthält {total})",
    "entries.none": "Keine passenden Einträge.",
    "entries.error": "Die Einträge konnten nicht angezeigt werden ({error}).",
    "entries.erased": "personenbezogene Angaben gelöscht",
    "ecol.seq": "Eintrag",
    "ecol.at": "Zeit",
    "ecol.kind": "Art",
    "ecol.actor": "Handelnde Person",
    "ecol.agent": "Agent/in",
    "ecol.details": "Angaben",
    "kind.listen.started": "Mithören begonnen",
    "kind.listen.ended": "Mithören beendet",
    "kind.listen.refused": "Mithören abgelehnt",
    "kind.leg.muted": "Seite stummgeschaltet",
    "kind.leg.unmuted": "Seite wieder hörbar",
    "kind.notice.delivered": "Hinweis zugestellt",
    "kind.notice.seen": "Hinweis gelesen",
    "kind.policy.changed": "Richtlinie geändert",
    "kind.export.made": "Auszug erstellt",
    "kind.purge.done": "Personenbezogene Angaben gelöscht",
    "kind.consent.changed": "Einwilligung geändert",
    "kind.key.rotated": "Signaturschlüssel ersetzt",
    "kind.pci.paused": "Zahlungspause begonnen",
    "kind.pci.resumed": "Zahlungspause beendet",
    "kind.checkpoint.inconsistent": "Unstimmigkeit des Protokolls gemeldet",
    "actor.system": "der Server",
    "actor.user": "eine Person (Angaben gelöscht)",
    "field.session_id": "Vorgang",
    "field.call_id": "Gespräch",
    "field.node_id": "Knoten",
    "field.user_id": "mithörende Person",
    "field.display_name": "Name",
    "field.purpose": "Zweck",
    "field.legs": "Seiten",
    "field.leg": "Seite",
    "field.reason": "Grund",
    "field.code": "Code",
    "field.role": "Rolle",
    "field.policy_version": "Richtlinie",
    "field.started_at": "Beginn",
    "field.ended_at": "Ende",
    "field.duration_s": "Dauer",
    "field.version": "Version",
    "field.previous_version": "vorige Version",
    "field.format": "Format",
    "field.scope": "Umfang",
    "field.entries": "Einträge",
    "field.tree_size": "Protokollgröße",
    "field.since": "von",
    "field.until": "bis",
    "field.before": "älter als",
    "field.erased": "gelöscht",
    "field.retention_days": "Aufbewahrung (Tage)",
    "field.consent": "Einwilligung",
    "field.source": "Quelle",
    "field.problem": "Problem",
    "field.mode": "Art",
    "field.channel": "Weg",
    "field.notice_id": "Hinweis",
    "field.seen_at": "gelesen",
    "field.export_id": "Auszug",
  },
};

const TIME_FIELDS = new Set(["started_at", "ended_at", "seen_at", "since", "until", "before", "ended_after", "ended_before"]);
const SHOWN_IN_COLUMNS = new Set(["agent_id", "actor"]);
const MAX_VALUE = 60;

/** The entries section: call once with the page's i18n and JSON getter. */
export class EntryList {
  constructor({ i18n, getJson, $, onForbidden }) {
    this.i18n = i18n;
    this.getJson = getJson;
    this.$ = $;
    this.onForbidden = onForbidden;
    this.entries = null;
    this.next = null;
    this.total = 0;
    this.kinds = [];
    this.error = null;
  }

  mount() {
    this.$("entries-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.load(false);
    });
    this.$("entries-more").addEventListener("click", () => this.load(true));
  }

  query(older) {
    const params = new URLSearchParams();
    for (const name of ["kind", "actor", "agent", "from", "to"]) {
      const value = this.$(`entries-${name}`).value.trim();
      if (value) params.set(name, value);
    }
    params.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
    if (older && this.next !== null) params.set("before", String(this.next));
    return params;
  }

  async load(older) {
    this.error = null;
    try {
      const page = await this.getJson(`/api/audit/entries?${this.query(older)}`);
      this.entries = older && this.entries ? [...this.entries, ...page.entries] : page.entries;
      this.next = page.next_before;
      this.total = page.tree_size;
      this.kinds = page.kinds;
    } catch (error) {
      if (error.status === 403) this.onForbidden();
      this.error = error.message;
    }
    this.render();
  }

  renderKinds() {
    const select = this.$("entries-kind");
    const chosen = select.value;
    select.replaceChildren(new Option(this.i18n.t("entries.anyKind"), ""));
    for (const kind of this.kinds) select.append(new Option(this.i18n.label("kind", kind), kind));
    select.value = this.kinds.includes(chosen) ? chosen : "";
  }

  time(seconds) {
    return new Date(seconds * 1000).toLocaleString(this.i18n.lang, { dateStyle: "medium", timeStyle: "medium" });
  }

  value(name, value) {
    if (value === null || value === undefined) return "-";
    if (TIME_FIELDS.has(name) && typeof value === "number") return this.time(value);
    if (name === "duration_s" && typeof value === "number") return clock(value);
    if (name === "purpose") return this.i18n.label("purpose", value);
    if (name === "reason") return this.i18n.label("reason", value);
    if (name === "legs" && Array.isArray(value)) return value.map((leg) => this.i18n.label("leg", leg)).join(", ");
    if (name === "leg") return this.i18n.label("leg", value);
    const text = typeof value === "object" ? JSON.stringify(value) : String(value);
    return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
  }

  details(entry) {
    const list = document.createElement("dl");
    list.className = "entry-fields";
    for (const [name, value] of Object.entries(entry.fields || {})) {
      if (SHOWN_IN_COLUMNS.has(name)) continue;
      const term = document.createElement("dt");
      term.textContent = this.i18n.label("field", name);
      const data = document.createElement("dd");
      data.textContent = this.value(name, value);
      if (typeof value === "string" && value.length > MAX_VALUE) data.title = value;
      list.append(term, data);
    }
    if (entry.details_erased) {
      const note = document.createElement("dd");
      note.className = "muted";
      note.textContent = this.i18n.t("entries.erased");
      list.append(note);
    }
    return list;
  }

  render() {
    const { i18n, $ } = this;
    this.renderKinds();
    const body = $("entries-body");
    const summary = $("entries-summary");
    body.replaceChildren();
    $("entries-more").hidden = this.error !== null || this.next === null || this.next === undefined;
    if (this.error) {
      summary.textContent = i18n.t("entries.error", { error: this.error });
      return;
    }
    if (this.entries === null) {
      summary.textContent = "";
      return;
    }
    const count = this.entries.length;
    summary.textContent = count === 0
      ? i18n.t("entries.none")
      : i18n.t(count === 1 ? "entries.countOne" : "entries.count", { count, total: this.total });
    for (const entry of this.entries) {
      const row = body.insertRow();
      row.dataset.testid = "entry-row";
      row.dataset.kind = entry.kind;
      row.dataset.seq = String(entry.seq);
      const cells = {
        seq: String(entry.seq),
        at: this.time(entry.at),
        kind: i18n.label("kind", entry.kind),
        actor: i18n.has(`actor.${entry.actor}`) ? i18n.t(`actor.${entry.actor}`) : entry.actor,
        agent: entry.agent_id ?? "",
      };
      for (const [column, text] of Object.entries(cells)) {
        const cell = row.insertCell();
        cell.dataset.col = column;
        cell.dataset.label = i18n.t(`ecol.${column}`);
        cell.textContent = text;
        if (column === "seq" || column === "actor" || column === "agent") cell.classList.add("id");
      }
      const details = row.insertCell();
      details.dataset.col = "details";
      details.dataset.label = i18n.t("ecol.details");
      details.append(this.details(entry));
    }
  }
}

// The audit page: does the listen ledger verify (and if not, its first bad entry), the signed
// checkpoint to keep, a search of listen sessions by agent, supervisor and dates, and
// downloads: an agent's export (PDF, CSV, JSON Lines with proofs) and the monthly
// works-council report. Data: GET /api/me, /api/audit/verify, /api/audit/checkpoint,
// /api/audit/sessions, /api/audit/entries (./entries.js: every entry of every kind);
// downloads are plain links to /api/audit/export and /api/audit/report.
// The page only reads (GET), so it needs no CSRF token.

import { clock } from "../shared/duration.js";
import { I18n } from "../shared/i18n.js";
import { EntryList } from "./entries.js";
import { STRINGS } from "./strings.js";

const i18n = new I18n(STRINGS);
const $ = (id) => document.getElementById(id);
let verifyResult = null;
let verifyError = null;
let witnessed = null; // GET /api/audit/checkpoint: { tree_size, witnesses: [...] }
let sessions = null;
let searchError = null;
const entryList = new EntryList({ i18n, getJson, $, onForbidden: () => { $("forbidden").hidden = false; } });

class HttpError extends Error {
  constructor(status, code) {
    super(code || `HTTP ${status}`);
    this.status = status;
  }
}

async function getJson(path) {
  const response = await fetch(path, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 401) {
    $("signed-out").hidden = false;
  }
  if (!response.ok) {
    let code = null;
    try {
      code = (await response.json()).error?.code ?? null;
    } catch {
      /* not JSON */
    }
    throw new HttpError(response.status, code);
  }
  return response.json();
}

function localDateTime(seconds) {
  return new Date(seconds * 1000).toLocaleString(i18n.lang, { dateStyle: "medium", timeStyle: "medium" });
}

// --- integrity ------------------------------------------------------------------------------

function renderWitnesses() {
  const list = $("witnesses");
  const none = $("witnesses-none");
  list.replaceChildren();
  const witnesses = (witnessed && witnessed.witnesses) || [];
  for (const w of witnesses) {
    const item = document.createElement("li");
    item.dataset.witness = w.witness;
    item.dataset.treeSize = w.tree_size;
    item.textContent = i18n.t("witnesses.seen", {
      witness: w.witness,
      size: w.tree_size,
      total: witnessed.tree_size,
      time: localDateTime(w.timestamp),
    });
    item.title = w.witness_key;
    list.append(item);
  }
  list.hidden = witnesses.length === 0;
  none.hidden = !witnessed || witnesses.length > 0;
}

function renderIntegrity() {
  renderWitnesses();
  const box = $("integrity");
  const mark = $("integrity-mark");
  const text = $("integrity-text");
  const problems = $("problems");
  const warnings = $("warnings");
  problems.replaceChildren();
  warnings.replaceChildren();
  problems.hidden = true;
  warnings.hidden = true;
  if (verifyError) {
    box.dataset.state = "error";
    mark.textContent = "!";
    text.textContent = i18n.t("integrity.error", { error: verifyError });
    return;
  }
  if (!verifyResult) {
    box.dataset.state = "checking";
    mark.textContent = "…";
    text.textContent = i18n.t("integrity.checking");
    return;
  }
  const report = verifyResult;
  box.dataset.state = report.ok ? "ok" : "bad";
  box.dataset.firstBadSeq = report.first_bad_seq ?? "";
  mark.textContent = report.ok ? "✓" : "✗";
  if (report.ok) {
    text.textContent = i18n.t("integrity.ok", {
      entries: report.entries,
      checkpoints: report.checkpoints,
      root: report.root.slice(0, 16) + "…",
    });
  } else if (report.first_bad_seq !== null && report.first_bad_seq !== undefined) {
    text.textContent = i18n.t("integrity.bad", { seq: report.first_bad_seq });
  } else {
    text.textContent = i18n.t("integrity.badNoEntry", { count: report.problems.length });
  }
  for (const problem of report.problems || []) {
    const item = document.createElement("li");
    item.textContent = problem.message;
    problems.append(item);
  }
  problems.hidden = problems.childElementCount === 0;
  for (const warning of report.warnings || []) {
    const item = document.createElement("li");
    item.textContent = warning;
    warnings.append(item);
  }
  warnings.hidden = warnings.childElementCount === 0;
}

async function verify() {
  const button = /** @type {HTMLButtonElement} */ ($("verify-again"));
  button.disabled = true;
  verifyResult = null;
  verifyError = null;
  renderIntegrity();
  try {
    const [report, checkpoint] = await Promise.all([
      getJson("/api/audit/verify"),
      getJson("/api/audit/checkpoint"),
    ]);
    verifyResult = report;
    $("checkpoint-note").textContent = checkpoint.checkpoint;
    $("verifier-key").textContent = checkpoint.verifier_key;
    witnessed = checkpoint;
  } catch (error) {
    if (error.status === 403) $("forbidden").hidden = false;
    verifyError = error.message;
  } finally {
    button.disabled = false;
    renderIntegrity();
  }
}

// --- sessions -------------------------------------------------------------------------------

function filters() {
  const params = new URLSearchParams();
  for (const name of ["agent", "supervisor", "from", "to"]) {
    const value = /** @type {HTMLInputElement} */ ($(name)).value.trim();
    if (value) params.set(name, value);
  }
  params.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  return params;
}

function legsText(legs) {
  if (!legs || legs.length === 0) return i18n.t("leg.none");
  return legs.map((leg) => i18n.label("leg", leg)).join(", ");
}

function renderSessions() {
  const body = /** @type {HTMLTableSectionElement} */ ($("sessions-body"));
  const summary = $("search-summary");
  body.replaceChildren();
  if (searchError) {
    summary.textContent = i18n.t("search.error", { error: searchError });
    return;
  }
  if (sessions === null) {
    summary.textContent = "";
    return;
  }
  const many = sessions.length === 1 ? "search.countOne" : "search.count";
  summary.textContent = sessions.length ? i18n.t(many, { count: sessions.length }) : i18n.t("search.none");
  for (const s of sessions) {
    const row = body.insertRow();
    row.dataset.testid = "session-row";
    row.dataset.sessionId = s.session_id;
    row.dataset.running = String(s.ended_seq === null);
    row.insertCell().textContent = localDateTime(s.started_at);
    const duration = row.insertCell();
    duration.className = "number";
    duration.textContent = s.duration_s === null ? i18n.t("running") : clock(s.duration_s);
    const agent = row.insertCell();
    agent.className = "id";
    agent.textContent = s.agent_id ?? "";
    const who = s.listener_name || s.listener_id;
    row.insertCell().textContent = who ? (s.listener_name && s.listener_id ? `${s.listener_name} (${s.listener_id})` : who) : i18n.t("erased");
    row.insertCell().textContent = i18n.label("purpose", s.purpose) || "-";
    row.insertCell().textContent = legsText(s.legs);
    row.insertCell().textContent = s.end_reason ? i18n.label("reason", s.end_reason) : "";
    const policy = row.insertCell();
    policy.className = "id";
    policy.textContent = s.policy_version || "-";
    const entry = row.insertCell();
    entry.className = "number id";
    entry.textContent = String(s.started_seq);
  }
  // Each cell carries its column's heading, shown beside it on a narrow screen (audit.css).
  const heads = [...document.querySelectorAll('[data-testid="sessions"] thead th')].map((th) => th.textContent);
  for (const row of body.rows) [...row.cells].forEach((cell, i) => { cell.dataset.label = heads[i] ?? ""; });
}

async function search(event) {
  if (event) event.preventDefault();
  searchError = null;
  try {
    sessions = (await getJson(`/api/audit/sessions?${filters()}`)).sessions;
  } catch (error) {
    if (error.status === 403) $("forbidden").hidden = false;
    sessions = null;
    searchError = error.message;
  }
  renderSessions();
}

// --- downloads ------------------------------------------------------------------------------

function updateExportLinks() {
  const params = filters();
  params.delete("supervisor");
  params.set("lang", i18n.lang);
  const agent = params.get("agent");
  $("export-links").hidden = !agent;
  $("export-missing").hidden = Boolean(agent);
  for (const format of ["pdf", "csv", "jsonl"]) {
    params.set("format", format);
    /** @type {HTMLAnchorElement} */ ($(`export-${format}`)).href = `/api/audit/export?${params}`;
  }
}

function currentMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
}

function updateReportLinks() {
  const month = /** @type {HTMLInputElement} */ ($("month")).value || currentMonth();
  const params = new URLSearchParams({
    month,
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    lang: i18n.lang,
  });
  for (const format of ["pdf", "csv"]) {
    params.set("format", format);
    /** @type {HTMLAnchorElement} */ ($(`report-${format}`)).href = `/api/audit/report?${params}`;
  }
}

// --- start ----------------------------------------------------------------------------------

function render() {
  renderIntegrity();
  renderSessions();
  entryList.render();
  updateExportLinks();
  updateReportLinks();
}

async function main() {
  i18n.apply();
  i18n.mountSwitch($("lang-switch"));
  i18n.onChange(render);
  /** @type {HTMLInputElement} */ ($("month")).value = currentMonth();
  $("search").addEventListener("submit", search);
  $("search").addEventListener("input", updateExportLinks);
  $("report").addEventListener("submit", (event) => event.preventDefault());
  $("month").addEventListener("input", updateReportLinks);
  $("verify-again").addEventListener("click", verify);
  entryList.mount();
  render();
  let me;
  try {
    me = await getJson("/api/me");
  } catch {
    $("signed-out").hidden = false;
    return;
  }
  $("user").hidden = false;
  $("user-name").textContent = me.display_name || me.user_id;
  $("user-role").textContent = i18n.label("role", me.role);
  if (me.role !== "auditor" && me.role !== "admin") {
    $("forbidden").hidden = false;
    return;
  }
  await Promise.all([verify(), search(), entryList.load(false)]);
}

main();

// The agent page: the live monitoring indicator, notices with a "seen" button, and the
// history of listens on the agent's calls. Data: GET /api/me, /api/notices,
// /api/agent/history, and the /api/agent/events WebSocket (reconnects with backoff); on
// every visit, the ledger check of ./ledger-check.js.

import { clock, clockSpan, spoken } from "../shared/duration.js";
import { I18n } from "../shared/i18n.js";
import { checkLedger } from "./ledger-check.js";
import { STRINGS } from "./strings.js";

const i18n = new I18n(STRINGS);
const $ = (id) => document.getElementById(id);
let csrfToken = null;
let monitoring = { active: false, listeners: [], listening: [] };
let notices = [];
let listens = [];
let ledger = { state: "checking" };

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  /** @type {RequestInit} */
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    signedOut();
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function signedOut() {
  $("signed-out").hidden = false;
}

function localTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString(i18n.lang, { hour: "2-digit", minute: "2-digit" });
}

function localDate(seconds) {
  return new Date(seconds * 1000).toLocaleString(i18n.lang, { dateStyle: "medium", timeStyle: "short" });
}

function sameDay(a, b) {
  return new Date(a * 1000).toDateString() === new Date(b * 1000).toDateString();
}

// Every duration on this page follows one rule (web/shared/duration.js): m:ss in the
// history, words in sentences.
function durationWords(seconds) {
  return spoken(seconds, i18n.lang);
}

function known(value) {
  return value !== null && value !== undefined;
}

// A listen cut by a server crash has no known end, only bounds (ended_after, ended_before):
// its duration is shown as the shortest and longest it can have been.
function durationText(item) {
  if (known(item.ended_before) && item.started_at) {
    const longest = Math.max(0, item.ended_before - item.started_at);
    return clockSpan(item.duration_s, longest);
  }
  return clock(item.duration_s);
}

// The end of a listen: its time (with the date when another day than the start), the
// bounds of an end cut by a crash, or "running".
function endText(listen) {
  const at = (seconds) => (sameDay(seconds, listen.started_at) ? localTime(seconds) : localDate(seconds));
  if (known(listen.ended_before)) {
    return i18n.t("history.endBetween", { after: at(listen.ended_after ?? listen.started_at), before: at(listen.ended_before) });
  }
  if (known(listen.ended_at)) return at(listen.ended_at);
  return listen.duration_s === null || listen.duration_s === undefined ? i18n.t("history.running") : "";
}

// A listen whose browser never connected (setup-failed) is an attempt: nothing was heard.
function listenText(item) {
  return i18n.t(item.reason === "setup-failed" ? "notice.attempt" : "notice.after_call", {
    time: localTime(item.call_started_at),
    duration: durationText(item),
    purpose: i18n.label("purpose", item.purpose),
    listener: i18n.label("listener", item.listener),
  });
}

function noticeText(notice) {
  if (notice.mode === "after_call") return listenText(notice);
  if (notice.mode === "digest") {
    const items = notice.listens || [];
    const heard = items.filter((item) => item.reason !== "setup-failed");
    const total = heard.reduce((sum, item) => sum + Number(item.duration_s || 0), 0);
    const key = items.length === 1 ? "notice.digest.one" : "notice.digest";
    const head = i18n.t(key, { count: items.length, duration: durationWords(total) });
    const lines = items.map(listenText);
    return [head, ...lines.map((line) => `– ${line}`)].join("\n");
  }
  return notice.text;
}

// Who listens and why: one "Sam Supervisor (purpose: Quality assurance)" per listen.
function listeningText() {
  const listening = Array.isArray(monitoring.listening)
    ? monitoring.listening
    : (monitoring.listeners || []).map((listener) => ({ listener, purpose: null }));
  return listening
    .map(({ listener, purpose }) => {
      const who = i18n.label("listener", listener);
      return purpose ? i18n.t("indicator.item", { listener: who, purpose: i18n.label("purpose", purpose) }) : who;
    })
    .join("; ");
}

function renderIndicator() {
  const box = $("indicator");
  box.dataset.active = String(Boolean(monitoring.active));
  const purposes = (monitoring.listening || []).map((item) => item.purpose).filter(Boolean);
  box.dataset.purposes = [...new Set(purposes)].join(" ");
  $("indicator-text").textContent = monitoring.active
    ? i18n.t("indicator.on", { listening: listeningText() })
    : i18n.t("indicator.off");
}

function renderNotices() {
  const list = $("notices");
  list.replaceChildren();
  $("notices-empty").hidden = notices.length > 0;
  for (const notice of [...notices].reverse()) {
    const item = document.createElement("li");
    item.className = "notice-item";
    item.dataset.testid = "notice";
    item.dataset.noticeId = notice.id;
    item.dataset.seen = String(Boolean(notice.seen_at));
    const text = document.createElement("span");
    text.className = "notice-text";
    text.textContent = noticeText(notice);
    item.append(text);
    if (notice.seen_at) {
      const seen = document.createElement("span");
      seen.className = "muted";
      seen.textContent = i18n.t("notices.seenAt");
      item.append(seen);
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button";
      button.dataset.testid = "seen-button";
      button.textContent = i18n.t("notices.seen");
      button.addEventListener("click", () => markSeen(notice.id, button));
      item.append(button);
    }
    list.append(item);
  }
}

const HISTORY_COLUMNS = ["start", "end", "duration", "purpose", "listener"];

function historyCells(listen) {
  return {
    start: localDate(listen.started_at),
    end: endText(listen),
    duration: listen.attempt
      ? i18n.t("history.attempt")
      : listen.duration_s === null || listen.duration_s === undefined
        ? i18n.t("history.running")
        : durationText(listen),
    purpose: i18n.label("purpose", listen.purpose),
    // As the policy discloses it: the server sends the name, or only the role.
    listener: i18n.label("listener", listen.listener),
  };
}

function renderHistory() {
  const body = /** @type {HTMLTableSectionElement} */ ($("history-body"));
  body.replaceChildren();
  if (listens.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = HISTORY_COLUMNS.length;
    cell.className = "muted";
    cell.textContent = i18n.t("history.empty");
    return;
  }
  for (const listen of listens) {
    const row = body.insertRow();
    row.dataset.testid = "history-row";
    row.dataset.attempt = String(Boolean(listen.attempt));
    row.dataset.purpose = listen.purpose || "";
    const cells = historyCells(listen);
    for (const column of HISTORY_COLUMNS) {
      const cell = row.insertCell();
      cell.dataset.col = column;
      cell.dataset.label = i18n.t(`history.${column}`);
      cell.textContent = cells[column];
    }
  }
}

function renderLedger() {
  const status = $("ledger-status");
  status.dataset.state = ledger.state;
  const failed = ledger.state === "failed";
  $("ledger-failed").hidden = !failed;
  if (failed) {
    const params = { kept: ledger.kept, served: ledger.served };
    $("ledger-failed-text").textContent = i18n.t(`ledger.failed.${ledger.problem}`, params, i18n.t("ledger.failed"));
    $("ledger-failed-reported").textContent = i18n.t(ledger.reported ? "ledger.failed.reported" : "ledger.failed.notReported");
    $("ledger-failed").dataset.problem = ledger.problem;
    status.textContent = i18n.t("ledger.failed");
  } else {
    status.textContent = i18n.t(`ledger.${ledger.state}`, { size: ledger.size });
  }
}

function render() {
  renderIndicator();
  renderNotices();
  renderHistory();
  renderLedger();
}

async function runLedgerCheck(agentId) {
  try {
    ledger = await checkLedger({
      agentId,
      get: (path) => request("GET", path),
      post: (path, body) => request("POST", path, body),
    });
  } catch {
    ledger = { state: "unavailable" };
  }
  renderLedger();
}

async function loadNotices() {
  notices = (await request("GET", "/api/notices")).notices;
  renderNotices();
}

async function loadHistory() {
  listens = (await request("GET", "/api/agent/history")).listens;
  renderHistory();
}

async function markSeen(id, button) {
  button.disabled = true;
  try {
    await request("POST", `/api/notices/${encodeURIComponent(id)}/seen`);
    await loadNotices();
  } catch {
    button.disabled = false;
  }
}

function connect(attempt = 0) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${window.location.host}/api/agent/events`);
  ws.addEventListener("open", () => {
    attempt = 0;
  });
  ws.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "monitoring") {
      monitoring = event;
      renderIndicator();
      loadHistory().catch(() => {});
    } else if (event.type === "notice") {
      loadNotices().catch(() => {});
      loadHistory().catch(() => {});
    }
  });
  ws.addEventListener("close", (event) => {
    monitoring = { active: false, listeners: [], listening: [] };
    renderIndicator();
    if (event.code === 4401 || event.code === 4403) {
      signedOut();
      return;
    }
    const delay = Math.min(30, 2 ** attempt);
    window.setTimeout(() => connect(attempt + 1), delay * 1000);
  });
}

async function main() {
  i18n.apply();
  i18n.mountSwitch($("lang-switch"));
  i18n.onChange(render);
  let me;
  try {
    me = await request("GET", "/api/me");
  } catch {
    signedOut();
    return;
  }
  csrfToken = me.csrf_token;
  $("user").hidden = false;
  $("user-name").textContent = me.display_name || me.user_id;
  $("user-role").textContent = i18n.label("role", me.role);
  /** @type {HTMLAnchorElement} */ ($("export-link")).href = `/api/audit/export?agent=${encodeURIComponent(me.user_id)}&format=pdf`;
  render();
  await Promise.all([loadNotices(), loadHistory()]).catch(() => {});
  connect();
  await runLedgerCheck(me.user_id);
}

main();

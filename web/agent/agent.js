// The agent page: the live monitoring indicator, notices with a "seen" button, and the
// history of listens on the agent's calls. Data: GET /api/me, /api/notices,
// /api/agent/history, and the /api/agent/events WebSocket (reconnects with backoff).

import { I18n, formatDuration } from "../shared/i18n.js";
import { STRINGS } from "./strings.js";

const i18n = new I18n(STRINGS);
const $ = (id) => document.getElementById(id);
let csrfToken = null;
let monitoring = { active: false, listeners: [] };
let notices = [];
let listens = [];

async function request(method, path) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store" });
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

// A listen cut by a server crash has no known end, only bounds (ended_after, ended_before):
// its duration is shown as the shortest and longest it can have been.
function durationText(item) {
  if (item.ended_before !== null && item.ended_before !== undefined && item.started_at) {
    const longest = Math.max(0, item.ended_before - item.started_at);
    return `${formatDuration(item.duration_s)}–${formatDuration(longest)}`;
  }
  return formatDuration(item.duration_s);
}

function noticeText(notice) {
  if (notice.mode === "after_call") {
    return i18n.t("notice.after_call", {
      time: localTime(notice.call_started_at),
      duration: durationText(notice),
      purpose: i18n.label("purpose", notice.purpose),
      listener: notice.listener,
    });
  }
  if (notice.mode === "digest") {
    const items = notice.listens || [];
    const total = items.reduce((sum, item) => sum + Number(item.duration_s || 0), 0);
    const head = i18n.t("notice.digest", { count: items.length, duration: formatDuration(total) });
    const lines = items.map((item) =>
      i18n.t("notice.after_call", {
        time: localTime(item.call_started_at),
        duration: durationText(item),
        purpose: i18n.label("purpose", item.purpose),
        listener: item.listener,
      }),
    );
    return [head, ...lines.map((line) => `– ${line}`)].join("\n");
  }
  return notice.text;
}

function renderIndicator() {
  const box = $("indicator");
  box.dataset.active = String(Boolean(monitoring.active));
  $("indicator-text").textContent = monitoring.active
    ? i18n.t("indicator.on", { listeners: monitoring.listeners.join(", ") })
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

function renderHistory() {
  const body = $("history-body");
  body.replaceChildren();
  if (listens.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 4;
    cell.className = "muted";
    cell.textContent = i18n.t("history.empty");
    return;
  }
  for (const listen of listens) {
    const row = body.insertRow();
    row.dataset.testid = "history-row";
    row.insertCell().textContent = localDate(listen.started_at);
    row.insertCell().textContent =
      listen.duration_s === null ? i18n.t("history.running") : durationText(listen);
    row.insertCell().textContent = i18n.label("purpose", listen.purpose);
    row.insertCell().textContent = listen.listener;
  }
}

function render() {
  renderIndicator();
  renderNotices();
  renderHistory();
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
    monitoring = { active: false, listeners: [] };
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
  $("export-link").href = `/api/audit/export?agent=${encodeURIComponent(me.user_id)}&format=pdf`;
  render();
  await Promise.all([loadNotices(), loadHistory()]).catch(() => {});
  connect();
}

main();

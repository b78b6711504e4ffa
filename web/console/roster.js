// The roster table: one row per running call, updated in place from `/api/events` so that
// keyboard focus survives updates. Durations tick from the call's `started_at`.

import { formatDuration } from "../shared/i18n.js";

const CONSENT_BADGE = { granted: "badge-ok", denied: "badge-danger", unknown: "badge" };
const COLUMNS = 7;

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{className?: string, text?: string, attrs?: Record<string, string>}} [options]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, { className, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function byStart(a, b) {
  return a.started_at - b.started_at || String(a.call_id).localeCompare(String(b.call_id));
}

export class RosterView {
  /**
   * @param {object} options
   * @param {HTMLTableSectionElement} options.tbody
   * @param {HTMLElement} options.count element showing "n running"
   * @param {HTMLElement} options.container element marked stale while disconnected
   * @param {import("../shared/i18n.js").I18n} options.i18n
   * @param {(call: object, button: HTMLButtonElement) => void} options.onListen
   */
  constructor({ tbody, count, container, i18n, onListen }) {
    this.tbody = tbody;
    this.countEl = count;
    this.container = container;
    this.i18n = i18n;
    this.onListen = onListen;
    this.calls = new Map();
    /** call_id -> {row, cells} */
    this.rows = new Map();
    this.me = null;
    this.active = { callId: null, busy: false };
    this.loaded = false;
    this.emptyRow = null;
  }

  get(callId) {
    return this.calls.get(callId);
  }

  setMe(me) {
    this.me = me;
    this.render();
  }

  /** A snapshot replaces everything we knew. */
  replaceAll(calls) {
    this.loaded = true;
    this.calls = new Map((calls || []).map((call) => [call.call_id, call]));
    for (const [callId, { row }] of this.rows) {
      if (!this.calls.has(callId)) {
        row.remove();
        this.rows.delete(callId);
      }
    }
    this.render();
  }

  upsert(call) {
    this.calls.set(call.call_id, call);
    this._renderRow(call);
    this._renderSummary();
  }

  remove(callId) {
    this.calls.delete(callId);
    this.rows.get(callId)?.row.remove();
    this.rows.delete(callId);
    this._renderSummary();
  }

  addListener(callId, listener) {
    const call = this.calls.get(callId);
    if (!call || !listener) return;
    const others = (call.listeners || []).filter((l) => l.session_id !== listener.session_id);
    this.upsert({ ...call, listeners: [...others, listener] });
  }

  removeListener(callId, sessionId) {
    const call = this.calls.get(callId);
    if (!call) return;
    this.upsert({
      ...call,
      listeners: (call.listeners || []).filter((l) => l.session_id !== sessionId),
    });
  }

  /** Which call we listen to (if any) and whether a session is in progress. */
  setActive(callId, busy) {
    if (this.active.callId === callId && this.active.busy === busy) return;
    this.active = { callId, busy };
    for (const call of this.calls.values()) this._renderButton(call);
  }

  setStale(stale) {
    this.container.classList.toggle("is-stale", stale);
    this.container.setAttribute("aria-busy", String(stale));
  }

  /** Update the ticking durations (once a second). */
  tick() {
    const now = Date.now() / 1000;
    for (const [callId, { cells }] of this.rows) {
      const call = this.calls.get(callId);
      if (call) cells.duration.textContent = formatDuration(now - call.started_at);
    }
  }

  render() {
    for (const call of this.calls.values()) this._renderRow(call);
    this._renderSummary();
  }

  _renderSummary() {
    const count = this.calls.size;
    this.countEl.textContent = this.loaded ? this.i18n.t("roster.count", { count }) : "";
    if (count === 0) {
      if (!this.emptyRow) {
        this.emptyRow = el("tr", { className: "roster-empty" });
        this.emptyRow.append(el("td", { attrs: { colspan: String(COLUMNS) } }));
      }
      this.emptyRow.cells[0].textContent = this.i18n.t(
        this.loaded ? "roster.empty" : "roster.waiting",
      );
      if (!this.emptyRow.isConnected) this.tbody.append(this.emptyRow);
    } else if (this.emptyRow) {
      this.emptyRow.remove();
    }
  }

  _createRow(call) {
    const row = el("tr", { attrs: { "data-testid": "call-row" } });
    row.dataset.callId = call.call_id;
    const agentCell = el("th", { attrs: { scope: "row" } });
    const agentName = el("span", { className: "agent-id" });
    const source = el("span", { className: "call-source" });
    agentCell.append(agentName, source);
    const cells = {
      agent: agentName,
      source,
      queue: el("td"),
      duration: el("td", { className: "duration" }),
      consent: el("td"),
      payment: el("td"),
      listeners: el("td", { className: "listeners" }),
      action: el("td", { className: "actions" }),
    };
    const button = el("button", {
      className: "button button-secondary",
      attrs: { type: "button", "data-testid": "listen-button" },
    });
    button.addEventListener("click", () => {
      const current = this.calls.get(call.call_id);
      if (current) this.onListen(current, button);
    });
    cells.action.append(button);
    cells.button = button;
    row.append(
      agentCell,
      cells.queue,
      cells.duration,
      cells.consent,
      cells.payment,
      cells.listeners,
      cells.action,
    );
    return { row, cells };
  }

  _insertInOrder(row, call) {
    const later = [...this.calls.values()]
      .filter((other) => other.call_id !== call.call_id && byStart(other, call) > 0)
      .sort(byStart)
      .map((other) => this.rows.get(other.call_id)?.row)
      .find((other) => other && other.isConnected);
    this.tbody.insertBefore(row, later || null);
  }

  _renderRow(call) {
    const t = this.i18n.t.bind(this.i18n);
    let entry = this.rows.get(call.call_id);
    if (!entry) {
      entry = this._createRow(call);
      this.rows.set(call.call_id, entry);
      this._insertInOrder(entry.row, call);
    }
    const { row, cells } = entry;
    cells.agent.textContent = call.agent_id || "—";
    cells.source.textContent = call.source || "";
    cells.queue.textContent = call.queue || t("roster.noQueue");
    cells.duration.textContent = formatDuration(Date.now() / 1000 - call.started_at);

    const consent = ["granted", "denied", "unknown"].includes(call.consent)
      ? call.consent
      : "unknown";
    cells.consent.replaceChildren(
      el("span", {
        className: `badge ${CONSENT_BADGE[consent]}`,
        text: t(`consent.${consent}`),
        attrs: { "data-consent": consent },
      }),
    );

    if (call.pci_paused) {
      cells.payment.replaceChildren(
        el("span", {
          className: "badge badge-warn",
          text: t("pci.paused"),
          attrs: { "data-testid": "pci-badge" },
        }),
      );
    } else {
      cells.payment.replaceChildren(
        el("span", { className: "muted", text: t("pci.none") }),
      );
    }

    const listeners = call.listeners || [];
    if (listeners.length === 0) {
      cells.listeners.replaceChildren(el("span", { className: "muted", text: t("roster.nobody") }));
    } else {
      const list = el("ul", { className: "listener-list" });
      for (const listener of listeners) {
        const isMe = this.me && listener.user_id === this.me.user_id;
        const name = listener.display_name || listener.user_id || "?";
        const item = el("li", { text: isMe ? `${name} (${t("roster.you")})` : name });
        if (isMe) item.classList.add("is-me");
        if (listener.purpose) {
          item.title = t("roster.purposeOf", {
            name,
            purpose: this.i18n.label("purpose", listener.purpose),
          });
        }
        list.append(item);
      }
      cells.listeners.replaceChildren(list);
    }
    this._renderButton(call);
  }

  _renderButton(call) {
    const entry = this.rows.get(call.call_id);
    if (!entry) return;
    const { row, cells } = entry;
    const t = this.i18n.t.bind(this.i18n);
    const button = cells.button;
    const mine = this.active.callId === call.call_id && this.active.busy;
    row.classList.toggle("is-active", mine);
    button.textContent = mine ? t("roster.listeningNow") : t("roster.listen");
    button.disabled = this.active.busy;
    button.setAttribute(
      "aria-label",
      mine ? t("roster.listeningNow") : t("roster.listenTo", { agent: call.agent_id }),
    );
    button.title = this.active.busy && !mine ? t("roster.busy") : "";
  }
}

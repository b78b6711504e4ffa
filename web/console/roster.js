// The roster table: one row per running call, updated in place from `/api/events`, so that
// keyboard focus survives updates and a live update touches only the row it is about.
//
// Order: rows are placed once, by binary search on keys a call keeps for its life
// (rosterquery.js), and move only when the supervisor picks another sort. Filters hide rows
// (`hidden`), they never rebuild the table. Durations tick only in rows on screen.
//
// `stats` counts the DOM work (rows created, rendered, removed, ticked) for the e2e test
// that measures a roster of 500 calls.

import { clock } from "../shared/duration.js";
import {
  CONSENTS,
  LISTENED,
  SORTS,
  agentLabel,
  comparator,
  emptyFilter,
  insertionIndex,
  matches,
  searchText,
  summarise,
} from "./rosterquery.js";

const CONSENT_BADGE = { granted: "badge-ok", denied: "badge-danger", unknown: "badge" };
const COLUMNS = 8;
const SORT_KEY = "live.console.sort";

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

function storedSort() {
  try {
    const value = window.localStorage.getItem(SORT_KEY);
    return SORTS.includes(value) ? value : "started";
  } catch {
    return "started";
  }
}

export class RosterView {
  /**
   * @param {object} options
   * @param {HTMLTableSectionElement} options.tbody
   * @param {HTMLElement} options.count element showing "n running"
   * @param {HTMLElement} options.shown element showing "showing n of m" while filtered
   * @param {HTMLElement} options.container element marked stale while disconnected
   * @param {HTMLElement} options.teamCounts list of calls per team (buttons filter by team)
   * @param {{search, team, queue, consent, listened, sort}} options.controls form controls
   * @param {import("../shared/i18n.js").I18n} options.i18n
   * @param {(call: object, button: HTMLButtonElement) => void} options.onListen
   * @param {(call: object, button: HTMLButtonElement) => void} options.onSwitch
   */
  constructor({ tbody, count, shown, container, teamCounts, controls, i18n, onListen, onSwitch }) {
    this.tbody = tbody;
    this.container = container;
    this.teamCounts = teamCounts;
    this.controls = controls;
    this.i18n = i18n;
    this.onListen = onListen;
    this.onSwitch = onSwitch;
    this.countEl = count;
    this.shownEl = shown;
    this.calls = new Map();
    /** call_id -> {row, cells, call (as placed: its sort keys), text, signature} */
    this.rows = new Map();
    /** The placed calls in display order. */
    this.order = [];
    this.me = null;
    /** What the supervisor is doing: calls listened to, and whether every slot is taken. */
    this.activity = { listening: new Set(), full: false, switchable: false };
    this.filter = emptyFilter();
    this.sort = storedSort();
    this.loaded = false;
    this.emptyRow = null;
    this.visibleCount = 0;
    this.stats = { rowsCreated: 0, rowsRendered: 0, rowsRemoved: 0, rowsTicked: 0, reorders: 0, snapshotMs: 0, lastTickRows: 0 };
    this.inView = new Set();
    this.observer =
      typeof IntersectionObserver === "function"
        ? new IntersectionObserver((entries) => this._seen(entries), { rootMargin: "200px 0px" })
        : null;
    this._bindControls();
    this._bindKeys();
  }

  get(callId) {
    return this.calls.get(callId);
  }

  setMe(me) {
    this.me = me;
    this.render();
  }

  /** A snapshot replaces everything we knew; rows still running keep their place. */
  replaceAll(calls) {
    const t0 = performance.now();
    const fresh = new Map((calls || []).map((call) => [call.call_id, call]));
    for (const callId of [...this.rows.keys()]) if (!fresh.has(callId)) this._drop(callId);
    this.calls = fresh;
    const first = !this.loaded || this.rows.size === 0;
    this.loaded = true;
    if (first) {
      // Build the whole table once, off-document, in order.
      const compare = this._compare();
      this.order = [...fresh.values()].sort(compare);
      const fragment = document.createDocumentFragment();
      for (const call of this.order) fragment.append(this._place(call).row);
      this.tbody.append(fragment);
    } else {
      for (const call of fresh.values()) if (!this.rows.has(call.call_id)) this._insert(call);
    }
    for (const call of fresh.values()) this._renderRow(call);
    this._renderSummary();
    this.stats.snapshotMs = Math.round((performance.now() - t0) * 10) / 10;
  }

  upsert(call) {
    const isNew = !this.calls.has(call.call_id);
    this.calls.set(call.call_id, call);
    if (!this.rows.has(call.call_id)) this._insert(call);
    this._renderRow(call);
    if (isNew || this._summaryChanged(call)) this._renderSummary();
    else this._renderShown();
  }

  remove(callId) {
    if (!this.calls.has(callId)) return;
    this.calls.delete(callId);
    this._drop(callId);
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
    this.upsert({ ...call, listeners: (call.listeners || []).filter((l) => l.session_id !== sessionId) });
  }

  /** `listening`: call ids with a session of ours; `full`: no slot left; `switchable`:
   *  a session exists that Switch would replace. */
  setActivity({ listening, full, switchable }) {
    const same =
      this.activity.full === full &&
      this.activity.switchable === switchable &&
      this.activity.listening.size === listening.size &&
      [...listening].every((id) => this.activity.listening.has(id));
    if (same) return;
    this.activity = { listening: new Set(listening), full, switchable };
    for (const call of this.calls.values()) this._renderButtons(call);
  }

  setStale(stale) {
    this.container.classList.toggle("is-stale", stale);
    this.container.setAttribute("aria-busy", String(stale));
  }

  /** Update the ticking durations (once a second), only in rows that are on screen. */
  tick() {
    const now = Date.now() / 1000;
    const ids = this.observer ? this.inView : this.rows.keys();
    let ticked = 0;
    for (const callId of ids) {
      const entry = this.rows.get(callId);
      const call = this.calls.get(callId);
      if (!entry || !call || entry.row.hidden) continue;
      entry.cells.duration.textContent = clock(now - call.started_at);
      ticked += 1;
    }
    this.stats.rowsTicked += ticked;
    this.stats.lastTickRows = ticked;
  }

  /** Everything again (language change): labels, rows, filters, summary. */
  render() {
    this._fillControls();
    for (const entry of this.rows.values()) entry.signature = "";
    for (const call of this.calls.values()) this._renderRow(call);
    this._renderSummary();
  }

  focusSearch() {
    this.controls.search.focus();
    this.controls.search.select();
  }

  /**
   * The first visible row's Listen button (mobile test, keyboard start).
   * @returns {HTMLButtonElement | null}
   */
  firstButton() {
    return this._visibleRows()[0]?.querySelector('[data-testid="listen-button"]') || null;
  }

  // --- filters and sort ----------------------------------------------------------------

  _bindControls() {
    const { search, team, queue, consent, listened, sort } = this.controls;
    search.addEventListener("input", () => this._setFilter({ text: search.value }));
    search.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && search.value) {
        event.stopPropagation(); // Esc here clears the search; it stops nothing
        search.value = "";
        this._setFilter({ text: "" });
      } else if (event.key === "ArrowDown" || event.key === "Enter") {
        const first = this.firstButton();
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    team.addEventListener("change", () => this._setFilter({ team: team.value }));
    queue.addEventListener("change", () => this._setFilter({ queue: queue.value }));
    consent.addEventListener("change", () => this._setFilter({ consent: consent.value }));
    listened.addEventListener("change", () => this._setFilter({ listened: listened.value }));
    sort.addEventListener("change", () => this._setSort(sort.value));
    this.teamCounts.addEventListener("click", (event) => {
      /** @type {HTMLButtonElement | null} */
      const button = /** @type {Element} */ (event.target).closest("button[data-team]");
      if (!button) return;
      const value = this.filter.team === button.dataset.team ? "" : button.dataset.team;
      this.controls.team.value = value;
      this._setFilter({ team: value });
    });
  }

  _setFilter(change) {
    this.filter = { ...this.filter, ...change };
    for (const call of this.calls.values()) this._applyFilter(call);
    this._renderSummary();
  }

  _setSort(key) {
    this.sort = SORTS.includes(key) ? key : "started";
    try {
      window.localStorage.setItem(SORT_KEY, this.sort);
    } catch {
      /* not kept */
    }
    const compare = this._compare();
    this.order.sort(compare);
    const fragment = document.createDocumentFragment();
    for (const placed of this.order) fragment.append(this.rows.get(placed.call_id).row);
    this.tbody.prepend(fragment);
    this.stats.reorders += 1;
  }

  _compare() {
    return comparator(this.sort, this.i18n.lang);
  }

  _option(select, value, label) {
    const option = new Option(label, value);
    option.selected = value === select.value;
    return option;
  }

  _fillControls() {
    const t = this.i18n.t.bind(this.i18n);
    const { consent, listened, sort } = this.controls;
    consent.replaceChildren(...CONSENTS.map((v) => new Option(t(`filter.consent.${v}`), v)));
    consent.value = this.filter.consent;
    listened.replaceChildren(...LISTENED.map((v) => new Option(t(`filter.listened.${v}`), v)));
    listened.value = this.filter.listened;
    sort.replaceChildren(...SORTS.map((v) => new Option(t(`sort.${v}`), v)));
    sort.value = this.sort;
    this._fillChoices();
  }

  /** Team and queue choices follow the calls running now (a chosen one stays). */
  _fillChoices() {
    const t = this.i18n.t.bind(this.i18n);
    const { teams, queues } = summarise(this.calls.values());
    const fill = (select, values, current, allKey) => {
      const list = values.filter(Boolean);
      if (current && !list.includes(current)) list.push(current);
      select.replaceChildren(new Option(t(allKey), ""), ...list.map((v) => new Option(v, v)));
      select.value = current;
    };
    fill(this.controls.team, teams.map(([team]) => team), this.filter.team, "filter.team.all");
    fill(this.controls.queue, queues, this.filter.queue, "filter.queue.all");
    return teams;
  }

  _summaryChanged(call) {
    const entry = this.rows.get(call.call_id);
    return !entry || entry.call.team !== call.team || entry.call.queue !== call.queue;
  }

  // --- keyboard ------------------------------------------------------------------------

  _bindKeys() {
    this.tbody.addEventListener("keydown", (event) => {
      if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
      const rows = this._visibleRows();
      const current = /** @type {Element} */ (event.target).closest("tr");
      let index = rows.indexOf(current);
      if (event.key === "ArrowDown") index = Math.min(rows.length - 1, index + 1);
      else if (event.key === "ArrowUp") {
        if (index <= 0) {
          event.preventDefault();
          this.focusSearch();
          return;
        }
        index -= 1;
      } else index = event.key === "Home" ? 0 : rows.length - 1;
      const target = rows[index];
      if (!target) return;
      event.preventDefault();
      /** @type {HTMLButtonElement | null} */
      const button = target.querySelector("button:not([hidden]):not(:disabled)") || target.querySelector("button");
      button?.focus();
    });
  }

  _visibleRows() {
    return [...this.tbody.querySelectorAll('tr[data-testid="call-row"]:not([hidden])')];
  }

  // --- rows ----------------------------------------------------------------------------

  _seen(entries) {
    for (const entry of entries) {
      const callId = entry.target.dataset.callId;
      if (entry.isIntersecting) this.inView.add(callId);
      else this.inView.delete(callId);
    }
  }

  /** Put a new call's row where its sort keys say, without moving any other row. */
  _insert(call) {
    const index = insertionIndex(this.order, call, this._compare());
    const next = this.order[index];
    this.order.splice(index, 0, call);
    const { row } = this._place(call);
    this.tbody.insertBefore(row, next ? this.rows.get(next.call_id).row : this.emptyRow?.isConnected ? this.emptyRow : null);
  }

  _place(call) {
    const entry = this._createRow(call);
    entry.call = call;
    this.rows.set(call.call_id, entry);
    this.observer?.observe(entry.row);
    this.stats.rowsCreated += 1;
    return entry;
  }

  _drop(callId) {
    const entry = this.rows.get(callId);
    if (!entry) return;
    this.observer?.unobserve(entry.row);
    this.inView.delete(callId);
    entry.row.remove();
    this.rows.delete(callId);
    const index = this.order.findIndex((c) => c.call_id === callId);
    if (index >= 0) this.order.splice(index, 1);
    this.stats.rowsRemoved += 1;
  }

  _applyFilter(call) {
    const entry = this.rows.get(call.call_id);
    if (!entry) return;
    const hidden = !matches(call, this.filter, this.me?.user_id, entry.text);
    if (entry.row.hidden !== hidden) entry.row.hidden = hidden;
  }

  _renderSummary() {
    const t = this.i18n.t.bind(this.i18n);
    const count = this.calls.size;
    this.countEl.textContent = this.loaded ? t("roster.count", { count }) : "";
    const teams = this._fillChoices();
    this.teamCounts.replaceChildren(
      ...teams.map(([team, n]) => {
        const item = el("li");
        const button = el("button", {
          className: "team-count",
          text: t("roster.teamCount", { team: team || t("roster.noTeam"), count: n }),
          attrs: { type: "button", "data-team": team, "aria-pressed": String(this.filter.team === team && !!team) },
        });
        item.append(button);
        return item;
      }),
    );
    this.teamCounts.hidden = teams.length === 0 || (teams.length === 1 && !teams[0][0]);
    this._renderShown();
    if (count === 0) {
      if (!this.emptyRow) {
        this.emptyRow = el("tr", { className: "roster-empty" });
        this.emptyRow.append(el("td", { attrs: { colspan: String(COLUMNS) } }));
      }
      this.emptyRow.cells[0].textContent = t(this.loaded ? "roster.empty" : "roster.waiting");
      if (!this.emptyRow.isConnected) this.tbody.append(this.emptyRow);
    } else if (this.emptyRow) {
      this.emptyRow.remove();
    }
  }

  _renderShown() {
    let shown = 0;
    for (const entry of this.rows.values()) if (!entry.row.hidden) shown += 1;
    this.visibleCount = shown;
    const filtered = shown !== this.calls.size;
    this.shownEl.hidden = !filtered;
    this.shownEl.textContent = filtered ? this.i18n.t("roster.shown", { shown, count: this.calls.size }) : "";
  }

  _createRow(call) {
    const row = el("tr", { attrs: { "data-testid": "call-row" } });
    row.dataset.callId = call.call_id;
    const agentCell = el("th", { attrs: { scope: "row" } });
    const agentName = el("span", { className: "agent-name", attrs: { "data-testid": "agent-name" } });
    const detail = el("span", { className: "call-source" });
    agentCell.append(agentName, detail);
    const cells = {
      agent: agentName,
      detail,
      team: el("td", { className: "team" }),
      queue: el("td", { className: "queue" }),
      duration: el("td", { className: "duration" }),
      consent: el("td", { className: "consent" }),
      payment: el("td", { className: "payment" }),
      listeners: el("td", { className: "listeners" }),
      action: el("td", { className: "actions" }),
    };
    const listen = el("button", {
      className: "button button-secondary",
      attrs: { type: "button", "data-testid": "listen-button" },
    });
    const swap = el("button", {
      className: "button button-secondary switch",
      attrs: { type: "button", "data-testid": "switch-button" },
    });
    swap.hidden = true;
    listen.addEventListener("click", () => {
      const current = this.calls.get(call.call_id);
      if (current) this.onListen(current, listen);
    });
    swap.addEventListener("click", () => {
      const current = this.calls.get(call.call_id);
      if (current) this.onSwitch(current, swap);
    });
    cells.action.append(listen, swap);
    cells.listen = listen;
    cells.swap = swap;
    row.append(
      agentCell,
      cells.team,
      cells.queue,
      cells.duration,
      cells.consent,
      cells.payment,
      cells.listeners,
      cells.action,
    );
    return { row, cells, text: searchText(call), signature: "" };
  }

  _renderRow(call) {
    const entry = this.rows.get(call.call_id);
    if (!entry) return;
    entry.text = searchText(call);
    this._applyFilter(call);
    const listeners = call.listeners || [];
    const signature = JSON.stringify([
      call.agent_name,
      call.agent_id,
      call.source,
      call.team,
      call.queue,
      call.consent,
      call.pci_paused,
      listeners.map((l) => [l.session_id, l.display_name, l.purpose]),
    ]);
    if (signature !== entry.signature) {
      entry.signature = signature;
      this._fillRow(entry, call);
      this.stats.rowsRendered += 1;
    }
    this._renderButtons(call);
  }

  _fillRow({ row, cells }, call) {
    const t = this.i18n.t.bind(this.i18n);
    row.dataset.team = call.team || "";
    row.dataset.queue = call.queue || "";
    cells.agent.textContent = agentLabel(call);
    cells.detail.textContent = [call.agent_name ? call.agent_id : "", call.source].filter(Boolean).join(" · ");
    const label = (cell, key, value) => {
      cell.dataset.label = t(key);
      cell.textContent = value;
    };
    label(cells.team, "col.team", call.team || t("roster.noTeam"));
    label(cells.queue, "col.queue", call.queue || t("roster.noQueue"));
    cells.duration.dataset.label = t("col.duration");
    cells.duration.textContent = clock(Date.now() / 1000 - call.started_at);

    const consent = ["granted", "denied", "unknown"].includes(call.consent) ? call.consent : "unknown";
    cells.consent.dataset.label = t("col.consent");
    cells.consent.replaceChildren(
      el("span", {
        className: `badge ${CONSENT_BADGE[consent]}`,
        text: t(`consent.${consent}`),
        attrs: { "data-consent": consent },
      }),
    );
    cells.payment.dataset.label = t("col.payment");
    cells.payment.classList.toggle("is-paused", !!call.pci_paused);
    cells.payment.replaceChildren(
      call.pci_paused
        ? el("span", { className: "badge badge-warn", text: t("pci.paused"), attrs: { "data-testid": "pci-badge" } })
        : el("span", { className: "muted", text: t("pci.none") }),
    );

    const listeners = call.listeners || [];
    cells.listeners.dataset.label = t("col.listeners");
    cells.listeners.classList.toggle("is-empty", listeners.length === 0);
    if (listeners.length === 0) {
      cells.listeners.replaceChildren(el("span", { className: "muted", text: t("roster.nobody") }));
      return;
    }
    const list = el("ul", { className: "listener-list" });
    for (const listener of listeners) {
      const isMe = this.me && listener.user_id === this.me.user_id;
      const name = listener.display_name || listener.user_id || "?";
      const item = el("li", { text: isMe ? `${name} (${t("roster.you")})` : name });
      if (isMe) item.classList.add("is-me");
      if (listener.purpose) {
        item.title = t("roster.purposeOf", { name, purpose: this.i18n.label("purpose", listener.purpose) });
      }
      list.append(item);
    }
    cells.listeners.replaceChildren(list);
  }

  _renderButtons(call) {
    const entry = this.rows.get(call.call_id);
    if (!entry) return;
    const { row, cells } = entry;
    const t = this.i18n.t.bind(this.i18n);
    const agent = agentLabel(call);
    const mine = this.activity.listening.has(call.call_id);
    const { full, switchable } = this.activity;
    row.classList.toggle("is-active", mine);
    const listenText = mine ? t("roster.listeningNow") : t("roster.listen");
    if (cells.listen.textContent !== listenText) cells.listen.textContent = listenText;
    cells.listen.disabled = mine || full;
    cells.listen.setAttribute("aria-label", mine ? t("roster.listeningNow") : t("roster.listenTo", { agent }));
    cells.listen.title = full && !mine ? t("roster.busy") : "";
    // Switch: stop the listen in the newest panel and listen here instead, in one step.
    cells.swap.hidden = mine || !switchable;
    cells.swap.textContent = t("roster.switch");
    cells.swap.setAttribute("aria-label", t("roster.switchTo", { agent }));
  }
}

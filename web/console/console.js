// Supervisor console: who am I (/api/me), the live roster (/api/events), and up to
// `listens_at_once` listen sessions, each in its own panel (panel.js, listen.js).
// Everything the user sees is translated through i18n.
//
// A listen cut by a server restart or a lost connection keeps its panel, says which of the
// two happened and offers to resume: a new listen with the same purpose, on record as
// resuming the old one (`resumes`).
//
// For automated tests the page keeps `window.liveConsole` current. Its top-level fields
// describe the newest session: { pc, sessionId, legs, state, timings, callId, purpose,
// endReason, error, levels, lastSessionId }; besides: me, connection, sessions (every
// panel: {callId, sessionId, state, purpose, interrupted}), roster (render counters),
// quality ({session_id: {agent, caller, dropped}}).

import { I18n } from "../shared/i18n.js";
import { Api, ApiError, EventStream } from "./api.js";
import { ListenSession } from "./listen.js";
import { ListenPanel } from "./panel.js";
import { PurposeDialog } from "./purpose.js";
import { QualityProbe } from "./quality.js";
import { RosterView } from "./roster.js";
import { agentLabel } from "./rosterquery.js";
import { STRINGS } from "./strings.js";

const i18n = new I18n(STRINGS);
const api = new Api();
const byId = (id) => document.getElementById(id);

const ui = {
  status: byId("status"),
  conn: byId("conn"),
  connText: byId("conn-text"),
  user: byId("user"),
  userName: byId("user-name"),
  userRole: byId("user-role"),
  signedOut: byId("signed-out"),
  rosterSection: byId("roster-section"),
  panels: byId("panels"),
  template: byId("panel-template"),
};

const purposeDialog = new PurposeDialog({
  dialog: byId("purpose-dialog"),
  form: byId("purpose-form"),
  callText: byId("dialog-call"),
  select: byId("purpose-select"),
  error: byId("purpose-error"),
  cancel: byId("purpose-cancel"),
  i18n,
  onConfirm: (call, purpose) => startListening(roster.get(call.call_id) || call, purpose),
});

const QUALITY_EVERY_MS = 2000;
/** Ends that mean the server went away (restart, node lost), not the call. */
const RESTART_ENDS = new Set(["shutdown", "node-lost"]);
/** Ends that mean the audio path broke: a restart when the server said so, else lost. */
const BROKEN_ENDS = new Set(["connection-failed", "peer-closed", "connection-lost"]);
/** Leg reasons that mean "payment pause" (the server says payment-pause). */
const PAUSE_REASONS = new Set(["payment-pause", "pci-paused", "pci"]);
/** Close codes of /api/events that announce a restart (RFC 6455 §7.4.1: 1001 going away,
 *  1012 service restart). */
const RESTART_CODES = new Set([1001, 1012]);

const hooks = {
  pc: null,
  sessionId: null,
  lastSessionId: null,
  legs: [],
  state: "idle",
  timings: { requestSent: null, answerReceived: null, connected: null, firstAudio: null },
  callId: null,
  purpose: null,
  endReason: null,
  error: null,
  levels: { agent: 0, caller: 0 },
  me: null,
  connection: "connecting",
  sessions: [],
  roster: null,
  quality: {},
};
window.liveConsole = hooks;

let me = null;
let audioContext = null;
let signedOut = false;
let everConnected = false;
let disconnectedSince = null;
let restarting = false;
let retryAt = null;
let status = { kind: "info", text: () => i18n.t("status.loading") };
/** Panels, newest first: {panel, session, cut: null | {cause, resumable, previous, purpose, call}}. */
const slots = [];
let sinkId = "";
/** The newest session: what the top-level test hooks describe. */
let current = null;

const roster = new RosterView({
  tbody: /** @type {HTMLTableSectionElement} */ (byId("roster-body")),
  count: byId("roster-count"),
  shown: byId("roster-shown"),
  container: ui.rosterSection,
  teamCounts: byId("team-counts"),
  controls: {
    search: byId("roster-search"),
    team: byId("filter-team"),
    queue: byId("filter-queue"),
    consent: byId("filter-consent"),
    listened: byId("filter-listened"),
    sort: byId("roster-sort"),
  },
  i18n,
  onListen: openPurposeDialog,
  onSwitch: switchTo,
});
hooks.roster = roster.stats;

// --- status line ------------------------------------------------------------------------

/** `text` is a function so the message can be re-rendered after a language switch. */
function setStatus(kind, text) {
  status = { kind, text };
  renderStatus();
}

function renderStatus() {
  ui.status.className = `status notice notice-${status.kind}`;
  ui.status.dataset.kind = status.kind;
  ui.status.textContent = status.text();
}

/** The user-facing words for an error: ours for a known code (in the page's language),
 * else the server's message, else the HTTP status. */
function describeError(err) {
  if (err instanceof ApiError) {
    if (err.code !== "http" && i18n.has(`error.${err.code}`)) return i18n.t(`error.${err.code}`);
    if (err.serverMessage) return err.serverMessage;
    return i18n.t("error.http", { status: err.status });
  }
  return (err && err.message) || String(err);
}

// --- who am I ---------------------------------------------------------------------------

function renderUser() {
  if (!me) return;
  ui.user.hidden = false;
  ui.userName.textContent = me.display_name || me.user_id;
  ui.userRole.textContent = i18n.label("role", me.role);
}

function showSignedOut() {
  if (signedOut) return;
  signedOut = true;
  ui.signedOut.hidden = false;
  ui.rosterSection.hidden = true;
  ui.user.hidden = true;
  purposeDialog.close();
  stream.stop();
  for (const slot of liveSlots()) slot.session.stop("signed-out", { notifyServer: false });
  setStatus("warn", () => i18n.t("auth.signedOut"));
}

async function loadMe() {
  setStatus("info", () => i18n.t("status.loading"));
  for (let attempt = 0; ; attempt += 1) {
    try {
      me = await api.me();
      break;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showSignedOut();
        return;
      }
      const message = describeError(err);
      setStatus("error", () => i18n.t("status.meFailed", { message }));
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 1000 * 2 ** attempt)));
    }
  }
  me.purposes = Array.isArray(me.purposes) ? me.purposes : [];
  hooks.me = me;
  renderUser();
  roster.setMe(me);
  stream.start();
}

// --- live roster ------------------------------------------------------------------------

const stream = new EventStream({
  onMessage: handleEvent,
  onState: handleStreamState,
  onClose: async ({ code, opened }) => {
    // Signed out shows as 4401 (4000 + HTTP 401) on an open socket, or as a failed upgrade
    // (the server answers the handshake with HTTP 401; browsers report 1006). Ask /api/me.
    if (opened && code !== 4401 && code !== 4403) return true;
    try {
      await api.me();
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        showSignedOut();
        return false;
      }
      return true;
    }
  },
});

function renderConnection() {
  const state = hooks.connection;
  ui.conn.dataset.state = state;
  if (state === "waiting" && retryAt) {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    ui.connText.textContent = i18n.t("conn.retry", { seconds });
  } else {
    const key = state === "open" || state === "stopped" ? state : "connecting";
    ui.connText.textContent = i18n.t(`conn.${key}`);
  }
}

function handleStreamState({ state, delayMs, code, reason }) {
  hooks.connection = state;
  retryAt = state === "waiting" ? Date.now() + delayMs : null;
  renderConnection();
  refreshResumable();
  if (state !== "waiting") return;
  if (RESTART_CODES.has(code)) restarting = true;
  disconnectedSince ??= Date.now();
  roster.setStale(true);
  if (signedOut) return;
  const seconds = Math.round(delayMs / 1000);
  if (restarting) {
    setStatus("warn", () => i18n.t("status.restarting", { seconds }));
    return;
  }
  const detail = [code, reason].filter((x) => x !== undefined && x !== null && x !== "").join(": ");
  setStatus("warn", () =>
    i18n.t("status.disconnected", { detail: detail || i18n.t("conn.stopped"), seconds }),
  );
}

function handleEvent(message) {
  switch (message.type) {
    case "snapshot":
      stream.markHealthy();
      roster.replaceAll(Array.isArray(message.calls) ? message.calls : []);
      roster.setStale(false);
      afterSnapshot();
      break;
    case "call.started":
    case "call.updated":
      if (message.call && message.call.call_id) {
        roster.upsert(message.call);
        for (const slot of liveSlots()) {
          if (slot.session.call.call_id === message.call.call_id) callChanged(slot.session, message.call);
        }
        refreshResumable();
      }
      break;
    case "call.ended":
      roster.remove(message.call_id);
      closeStaleDialog();
      for (const slot of liveSlots()) {
        if (slot.session.call.call_id === message.call_id) slot.session.stop("call-ended", { notifyServer: false });
      }
      refreshResumable();
      break;
    case "listen.started":
      roster.addListener(message.call_id, message.listener);
      break;
    case "listen.ended": {
      roster.removeListener(message.call_id, message.session_id);
      if (RESTART_ENDS.has(message.reason)) restarting = true;
      const slot = liveSlots().find((x) => x.session.sessionId && x.session.sessionId === message.session_id);
      slot?.session.stop(message.reason || "stopped", { notifyServer: false });
      break;
    }
    case "listen.updated":
      // Optional, if the server reports per-leg audibility changes itself:
      // {"type":"listen.updated","session_id","legs":[{leg,audible,reason}]}.
      for (const slot of liveSlots()) {
        if (slot.session.sessionId !== message.session_id) continue;
        slot.session.serverReportsLegs = true;
        for (const leg of message.legs || []) {
          slot.session.setLegState(leg.leg, { audible: leg.audible !== false, reason: leg.reason ?? null });
        }
      }
      break;
    default:
      break; // notices and future events are not the console's business
  }
}

/** A fresh snapshot: sessions the server no longer serves were cut while we were away. */
async function afterSnapshot() {
  const wasDisconnected = disconnectedSince !== null;
  disconnectedSince = null;
  closeStaleDialog();
  const running = liveSlots().filter((slot) => slot.session.sessionId);
  let served = null;
  if (wasDisconnected && running.length) {
    try {
      served = new Set(((await api.myListens()).listens || []).map((l) => l.session_id));
    } catch {
      served = null; // cannot tell: leave them, the peer connection tells if audio stops
    }
  }
  for (const slot of running) {
    const s = slot.session;
    const call = roster.get(s.call.call_id);
    if (served && !served.has(s.sessionId)) {
      const reason = restarting ? "shutdown" : call ? "connection-lost" : "call-ended";
      s.stop(reason, { notifyServer: false });
    } else if (call) {
      callChanged(s, call);
    }
  }
  if (wasDisconnected && !liveSlots().length && !slots.some((slot) => slot.cut)) {
    setStatus("ok", () => i18n.t("status.reconnected"));
  } else if (wasDisconnected) {
    restingStatus();
  } else if (!everConnected) {
    setStatus("info", () => i18n.t("status.ready"));
  }
  restarting = false;
  everConnected = true;
  refreshResumable();
}

/**
 * Keep a panel's call details and leg audibility in step with the roster. The server is the
 * authority on what is audible: it answered `legs` (and may send `listen.updated`). Without
 * such updates we follow its documented rules (COMPLIANCE.md items 4 and 5): a payment pause
 * mutes both legs; the caller is heard only with consent granted.
 */
function callChanged(session, call) {
  session.call = call;
  slotOf(session)?.panel.render();
  if (session.answeredLegs.length === 0) return;
  if (Array.isArray(call.legs)) {
    // The legs the telephony sends (a one-track stream sends one; a second stream adds one).
    for (const answered of session.answeredLegs) {
      session.setLegAvailable(answered.leg, call.legs.includes(answered.leg));
    }
  }
  if (session.serverReportsLegs) return;
  for (const answered of session.answeredLegs) {
    const answeredForPause = PAUSE_REASONS.has(answered.reason);
    let next;
    if (call.pci_paused) {
      next = { audible: false, reason: "payment-pause" };
    } else if (answered.leg === "agent") {
      next = answeredForPause ? { audible: true, reason: null } : answered;
    } else if (call.consent === session.consentAtStart && !answeredForPause) {
      next = answered;
    } else if (call.consent === "granted") {
      next = { audible: true, reason: null };
    } else {
      next = { audible: false, reason: `consent-${call.consent === "denied" ? "denied" : "unknown"}` };
    }
    session.setLegState(answered.leg, { audible: next.audible, reason: next.reason ?? null });
  }
}

// --- panels -----------------------------------------------------------------------------

function liveSlots() {
  return slots.filter((slot) => slot.session && !slot.session.done);
}

function slotOf(session) {
  return slots.find((slot) => slot.session === session) || null;
}

function maxListens() {
  return Math.max(1, Number(me?.listens_at_once) || 1);
}

function newSlot() {
  const slot = { panel: null, session: null, cut: null };
  slot.panel = new ListenPanel({
    template: ui.template,
    container: ui.panels,
    i18n,
    onStop: () => slot.session?.stop(slot.session.sessionId ? "stopped" : "cancelled"),
    onResume: () => resume(slot),
    onDismiss: () => dropSlot(slot, true),
    onVolume: (leg, value) => slot.session?.setVolume(leg, value),
    onOutput: (deviceId) => {
      sinkId = deviceId;
      for (const other of slots) other.session?.setSink(deviceId);
    },
  });
  slots.unshift(slot);
  return slot;
}

function dropSlot(slot, focusRoster) {
  const index = slots.indexOf(slot);
  if (index >= 0) slots.splice(index, 1);
  slot.panel.remove();
  if (focusRoster) {
    const button = rowButton(slot.session?.call.call_id);
    (button || ui.rosterSection).focus();
  }
  renderActivity();
}

/** @returns {HTMLButtonElement | null} */
function rowButton(callId) {
  if (!callId) return null;
  return document.querySelector(
    `[data-testid="call-row"][data-call-id="${CSS.escape(callId)}"] [data-testid="listen-button"]`,
  );
}

/** What the roster's buttons offer, and the test hooks, after any session change. */
function renderActivity() {
  const live = liveSlots();
  roster.setActivity({
    listening: new Set(live.map((slot) => slot.session.call.call_id)),
    full: live.length >= maxListens(),
    switchable: live.length > 0,
  });
  hooks.sessions = slots.map((slot) => ({
    callId: slot.session?.call.call_id ?? null,
    sessionId: slot.session?.sessionId ?? null,
    state: slot.cut ? "interrupted" : (slot.session?.state ?? "idle"),
    purpose: slot.session?.purpose ?? null,
    interrupted: slot.cut ? slot.cut.cause : null,
    resumable: slot.cut ? slot.cut.resumable : null,
  }));
}

/** A cut listen can be resumed once its call is in the roster and the roster is live. */
function refreshResumable() {
  for (const slot of slots) {
    if (!slot.cut) continue;
    slot.panel.setResumable(hooks.connection === "open" && !!roster.get(slot.cut.call.call_id));
  }
  renderActivity();
}

function resume(slot) {
  const cut = slot.cut;
  const call = cut && roster.get(cut.call.call_id);
  if (!call || liveSlots().length >= maxListens()) return;
  startListening(call, cut.purpose, { slot, resumes: cut.previous });
}

// --- choosing a purpose -----------------------------------------------------------------

function ensureAudioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!audioContext && Context) {
    try {
      audioContext = new Context({ latencyHint: "interactive" });
    } catch {
      audioContext = null;
    }
  }
  // Called from a click, so the browser lets the context start.
  if (audioContext && audioContext.state === "suspended") audioContext.resume().catch(() => {});
  return audioContext;
}

function openPurposeDialog(call, button) {
  if (!me || liveSlots().length >= maxListens()) return;
  if (me.purposes.length === 0) {
    setStatus("error", () => i18n.t("status.noPurposes"));
    return;
  }
  ensureAudioContext();
  purposeDialog.open(call, button, me.purposes);
}

/** The call the open purpose dialog is about has ended: close it and say so. */
function closeStaleDialog() {
  const agent = purposeDialog.closeIfGone((callId) => !!roster.get(callId));
  if (agent === null) return;
  setStatus("warn", () => i18n.t("status.dialogCallEnded", { agent }));
  if (!ui.rosterSection.contains(document.activeElement)) ui.rosterSection.focus();
}

// --- listening --------------------------------------------------------------------------

/** Stop the newest listen and listen to `call` instead, with the same purpose: one step. */
async function switchTo(call, button) {
  const slot = liveSlots()[0];
  if (!slot) {
    openPurposeDialog(call, button);
    return;
  }
  ensureAudioContext();
  const previous = slot.session;
  const purpose = previous.purpose;
  slot.session = null; // its end belongs to no panel now; the panel shows the new call
  // Stopped first, so the new listen never counts against the server's limit twice.
  await previous.stop(previous.sessionId ? "stopped" : "cancelled");
  if (slots.includes(slot)) startListening(roster.get(call.call_id) || call, purpose, { slot });
}

function startListening(call, purpose, { slot = null, resumes = null } = {}) {
  ensureAudioContext();
  const target = slot || newSlot();
  target.cut = null;
  /** @type {ListenSession & {consentAtStart?: string, lastState?: string | null}} */
  const session = new ListenSession({
    api,
    call,
    purpose,
    resumes,
    sinkId,
    iceServers: me.ice_servers,
    audioContext,
    audioContainer: target.panel.audioContainer,
    onChange: sessionChanged,
    onLevels: (s) => {
      if (s === current) hooks.levels = { ...s.levels };
      slotOf(s)?.panel.renderLevels(s.levels);
    },
    onEnd: sessionEnded,
  });
  session.consentAtStart = call.consent;
  session.lastState = null;
  target.session = session;
  current = session;
  hooks.timings = session.timings;
  hooks.endReason = null;
  hooks.error = null;
  target.panel.attach(session);
  renderActivity();
  sessionChanged(session);
  // Focus the panel heading, not the Stop button: the Enter that confirmed the dialog would
  // otherwise go on to press Stop. Screen readers announce the panel from its heading.
  target.panel.focus();
  session.start();
}

function exportSession(s) {
  if (s !== current) return;
  hooks.pc = s.done ? null : s.pc;
  hooks.sessionId = s.done ? null : s.sessionId;
  if (s.sessionId) hooks.lastSessionId = s.sessionId;
  hooks.legs = s.legs.map((leg) => ({ ...leg }));
  hooks.state = s.state;
  hooks.timings = s.timings;
  hooks.callId = s.call.call_id;
  hooks.purpose = s.purpose;
  hooks.endReason = s.endReason;
  hooks.error = s.error
    ? { status: s.error.status ?? 0, code: s.error.code ?? "error", message: describeError(s.error) }
    : null;
}

function restingStatus() {
  const live = liveSlots().filter((slot) => slot.session.state === "listening");
  const cut = slots.find((slot) => slot.cut);
  if (cut) {
    setStatus("warn", () => i18n.t(`interrupted.${cut.cut.cause}`));
  } else if (live.length) {
    const agents = live.map((slot) => agentLabel(slot.session.call)).join(", ");
    setStatus("ok", () => i18n.t("status.listening", { agent: agents }));
  } else {
    setStatus("info", () => i18n.t("status.ready"));
  }
}

function sessionChanged(s) {
  exportSession(s);
  const slot = slotOf(s);
  if (!slot) return;
  slot.panel.render();
  renderActivity();
  if (s.done) return;
  const agent = agentLabel(s.call);
  const key = s.interrupted ? "interrupted" : s.state;
  if (key === s.lastState) return;
  s.lastState = key;
  if (key === "starting") setStatus("info", () => i18n.t("status.starting", { agent }));
  else if (key === "listening") {
    restingStatus();
    checkAudioAllowed();
  } else if (key === "stopping") setStatus("info", () => i18n.t("status.stopping"));
  else if (key === "interrupted") setStatus("warn", () => i18n.t("status.connInterrupted"));
}

/** Why a session that was really listening was cut, if a restart or the network did it. */
function interruptionOf(s) {
  if (!s.sessionId || !s.startedAt) return null;
  if (RESTART_ENDS.has(s.endReason)) return "restart";
  if (BROKEN_ENDS.has(s.endReason)) return restarting ? "restart" : "connection";
  return null;
}

function sessionEnded(s) {
  exportSession(s);
  const slot = slotOf(s);
  if (!slot) {
    renderActivity(); // replaced by a switch: its panel already shows the next call
    return;
  }
  const active = document.activeElement;
  const focusWasInPanel = !active || active === document.body || slot.panel.contains(active);
  if (s === current) hooks.levels = { agent: 0, caller: 0 };
  const cause = interruptionOf(s);
  if (cause) {
    slot.cut = { cause, resumable: false, previous: s.sessionId, purpose: s.purpose, call: s.call };
    slot.panel.interrupt(slot.cut);
    refreshResumable();
    setStatus("warn", () => i18n.t(`interrupted.${cause}`));
    return;
  }
  dropSlot(slot, false);
  if (s.error instanceof ApiError && s.error.status === 401) {
    showSignedOut();
  } else if (s.endReason) {
    const reason = s.endReason;
    const ended = () => i18n.t("status.ended", { reason: i18n.label("end", reason) });
    if (s.error) {
      const message = describeError(s.error);
      setStatus("warn", () => `${ended()} ${i18n.t("status.stopFailed", { message })}`);
    } else {
      setStatus(reason === "stopped" || reason === "cancelled" ? "info" : "warn", ended);
    }
  } else if (s.error) {
    const message = describeError(s.error);
    const refused = s.error instanceof ApiError && s.error.status >= 400 && s.error.status < 600;
    setStatus("error", () => i18n.t(refused ? "status.refused" : "status.failed", { message }));
  }
  if (focusWasInPanel) (rowButton(s.call.call_id) || ui.rosterSection).focus();
}

/** Autoplay rules can refuse playback or keep the meter's AudioContext suspended; the next
 *  click on the page resumes both. */
function checkAudioAllowed() {
  const blocked = () =>
    (audioContext && audioContext.state !== "running") ||
    [...ui.panels.querySelectorAll("audio")].some((audio) => audio.paused);
  setTimeout(() => {
    if (!blocked() || !liveSlots().length) return;
    setStatus("warn", () => i18n.t("status.audioBlocked"));
    document.addEventListener(
      "click",
      () => {
        audioContext?.resume().catch(() => {});
        for (const audio of ui.panels.querySelectorAll("audio")) audio.play().catch(() => {});
        if (liveSlots().length) restingStatus();
      },
      { once: true, capture: true },
    );
  }, 500);
}

/** Loss and jitter per leg (getStats) and the server's dropped packets, every 2 s. */
async function sampleQuality() {
  const live = liveSlots().filter((slot) => slot.session.state === "listening" && slot.session.pc);
  if (!live.length) return;
  let dropped = new Map();
  try {
    dropped = new Map(((await api.myListens()).listens || []).map((l) => [l.session_id, l.dropped_packets]));
  } catch {
    /* shown again at the next sample */
  }
  for (const slot of live) {
    const s = slot.session;
    s.probe ??= new QualityProbe(s.pc, () => s.legs);
    let quality = {};
    try {
      quality = await s.probe.sample();
    } catch {
      continue; // closed meanwhile
    }
    slot.panel.setQuality(quality);
    if (dropped.has(s.sessionId)) slot.panel.setDropped(Number(dropped.get(s.sessionId)) || 0);
    hooks.quality[s.sessionId] = { ...quality, dropped: dropped.get(s.sessionId) ?? null };
  }
}

window.addEventListener("pagehide", () => {
  for (const slot of liveSlots()) slot.session.stopOnUnload();
});

// --- keyboard: "/" search, arrows in the roster (roster.js), Enter listen, Esc stop --------

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const typing =
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  if (event.key === "/" && !typing && !purposeDialog.isOpen) {
    event.preventDefault();
    roster.focusSearch();
  } else if (event.key === "Escape" && !purposeDialog.isOpen) {
    const slot = liveSlots()[0];
    if (!slot) return;
    event.preventDefault();
    slot.session.stop(slot.session.sessionId ? "stopped" : "cancelled");
  }
});

// --- start ------------------------------------------------------------------------------

i18n.mountSwitch(byId("lang-switch"));
i18n.apply();
i18n.onChange(() => {
  renderStatus();
  renderUser();
  renderConnection();
  roster.render();
  for (const slot of slots) {
    i18n.apply(slot.panel.root);
    slot.panel.render();
    slot.panel.fillOutputs();
  }
  purposeDialog.render();
});
renderStatus();
renderConnection();
roster.render();

setInterval(() => {
  roster.tick();
  for (const slot of liveSlots()) slot.panel.renderElapsed();
  if (hooks.connection === "waiting") renderConnection();
}, 1000);
setInterval(sampleQuality, QUALITY_EVERY_MS);
navigator.mediaDevices?.addEventListener?.("devicechange", () => {
  for (const slot of slots) slot.panel.fillOutputs();
});

loadMe();

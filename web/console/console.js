// Supervisor console: who am I (/api/me), the live roster (/api/events), and one listen
// session at a time (listen.js). Everything the user sees is translated through i18n.
//
// For automated tests the page keeps `window.liveConsole` current:
//   { pc, sessionId, legs, state, timings: {requestSent, answerReceived, connected, firstAudio},
//     callId, purpose, endReason, error, levels: {agent, caller}, me, connection,
//     lastSessionId }
// `state` is "idle" before the first listen, then the session's state: "starting",
// "connecting", "listening", "stopping", "ended" or "failed".

import { I18n, formatDuration } from "../shared/i18n.js";
import { Api, ApiError, EventStream } from "./api.js";
import { LEG_ORDER, ListenSession } from "./listen.js";
import { RosterView } from "./roster.js";
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
  panel: byId("listen-panel"),
  panelTitle: byId("panel-title"),
  panelState: byId("panel-state"),
  panelCall: byId("panel-call"),
  panelPurpose: byId("panel-purpose"),
  panelQueue: byId("panel-queue"),
  panelElapsed: byId("panel-elapsed"),
  stopButton: /** @type {HTMLButtonElement} */ (byId("stop-button")),
  dialog: /** @type {HTMLDialogElement} */ (byId("purpose-dialog")),
  dialogForm: /** @type {HTMLFormElement} */ (byId("purpose-form")),
  dialogCall: byId("dialog-call"),
  purposeSelect: /** @type {HTMLSelectElement} */ (byId("purpose-select")),
  purposeError: byId("purpose-error"),
  purposeCancel: byId("purpose-cancel"),
  legs: Object.fromEntries(
    LEG_ORDER.map((leg) => {
      const root = /** @type {HTMLElement} */ (document.querySelector(`[data-leg="${leg}"]`));
      const part = (/** @type {string} */ name) =>
        /** @type {HTMLElement} */ (root.querySelector(`[data-role="${name}"]`));
      return [
        leg,
        {
          root,
          name: part("name"),
          audibility: part("audibility"),
          meter: part("meter"),
          volume: /** @type {HTMLInputElement} */ (part("volume")),
          volumeValue: part("volume-value"),
          audio: part("audio"),
          shown: 0,
          announcedAt: 0,
        },
      ];
    }),
  ),
};

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
};
window.liveConsole = hooks;

let me = null;
let session = null;
let audioContext = null;
let signedOut = false;
let everConnected = false;
let disconnectedSince = null;
let retryAt = null;
let pendingCall = null;
let dialogReturnFocus = null;
/** Leg reasons that mean "payment pause" (the server says payment-pause). */
const PAUSE_REASONS = new Set(["payment-pause", "pci-paused", "pci"]);
let status = { kind: "info", text: () => i18n.t("status.loading") };

const roster = new RosterView({
  tbody: /** @type {HTMLTableSectionElement} */ (byId("roster-body")),
  count: byId("roster-count"),
  container: ui.rosterSection,
  i18n,
  onListen: openPurposeDialog,
});

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

function agentOf(call) {
  return call?.agent_id || "?";
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
  if (ui.dialog.open) ui.dialog.close();
  stream.stop();
  session?.stop("signed-out", { notifyServer: false });
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
  if (state !== "waiting") return;
  disconnectedSince ??= Date.now();
  roster.setStale(true);
  if (signedOut) return;
  const detail = [code, reason].filter((x) => x !== undefined && x !== null && x !== "").join(": ");
  const seconds = Math.round(delayMs / 1000);
  setStatus("warn", () =>
    i18n.t("status.disconnected", { detail: detail || i18n.t("conn.stopped"), seconds }),
  );
}

function handleEvent(message) {
  switch (message.type) {
    case "snapshot": {
      stream.markHealthy();
      roster.replaceAll(Array.isArray(message.calls) ? message.calls : []);
      roster.setStale(false);
      const wasDisconnected = disconnectedSince !== null;
      disconnectedSince = null;
      if (session && !session.done && session.sessionId && !roster.get(session.call.call_id)) {
        // The call ended while we were not connected.
        session.stop("call-ended", { notifyServer: false });
      } else if (session && !session.done) {
        const call = roster.get(session.call.call_id);
        if (call) callChanged(call);
        if (wasDisconnected) restingStatus();
      } else if (wasDisconnected) {
        setStatus("ok", () => i18n.t("status.reconnected"));
      } else if (!everConnected) {
        setStatus("info", () => i18n.t("status.ready"));
      }
      everConnected = true;
      break;
    }
    case "call.started":
    case "call.updated":
      if (message.call && message.call.call_id) {
        roster.upsert(message.call);
        if (session && !session.done && session.call.call_id === message.call.call_id) {
          callChanged(message.call);
        }
      }
      break;
    case "call.ended":
      roster.remove(message.call_id);
      if (session && !session.done && session.call.call_id === message.call_id) {
        session.stop("call-ended", { notifyServer: false });
      }
      break;
    case "listen.started":
      roster.addListener(message.call_id, message.listener);
      break;
    case "listen.ended":
      roster.removeListener(message.call_id, message.session_id);
      if (session && !session.done && session.sessionId && session.sessionId === message.session_id) {
        session.stop(message.reason || "stopped", { notifyServer: false });
      }
      break;
    case "listen.updated":
      // Optional, if the server reports per-leg audibility changes itself:
      // {"type":"listen.updated","session_id","legs":[{leg,audible,reason}]}.
      if (session && !session.done && session.sessionId === message.session_id) {
        session.serverReportsLegs = true;
        for (const leg of message.legs || []) {
          session.setLegState(leg.leg, { audible: leg.audible !== false, reason: leg.reason ?? null });
        }
      }
      break;
    default:
      break; // notices and future events are not the console's business
  }
}

/**
 * Keep the panel's call details and leg audibility in step with the roster. The server is the
 * authority on what is audible: it answered `legs` (and may send `listen.updated`). Without
 * such updates we follow its documented rules (COMPLIANCE.md items 4 and 5): a payment pause
 * mutes both legs; the caller is heard only with consent granted.
 */
function callChanged(call) {
  session.call = call;
  renderPanel();
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

function fillPurposes() {
  const select = ui.purposeSelect;
  const previous = select.value;
  const placeholder = new Option(i18n.t("dialog.choose"), "");
  placeholder.disabled = true;
  select.replaceChildren(placeholder);
  for (const purpose of me.purposes) {
    select.append(new Option(i18n.label("purpose", purpose), purpose));
  }
  if (me.purposes.length === 1) select.value = me.purposes[0];
  else select.value = me.purposes.includes(previous) ? previous : "";
}

function openPurposeDialog(call, button) {
  if (!me || (session && !session.done)) return;
  if (me.purposes.length === 0) {
    setStatus("error", () => i18n.t("status.noPurposes"));
    return;
  }
  ensureAudioContext();
  pendingCall = call;
  dialogReturnFocus = button;
  ui.purposeSelect.value = "";
  fillPurposes();
  ui.dialogCall.textContent = i18n.t("dialog.call", { agent: agentOf(call) });
  showPurposeError(false);
  ui.dialog.showModal();
  ui.purposeSelect.focus();
}

function showPurposeError(show) {
  ui.purposeError.hidden = !show;
  if (show) ui.purposeSelect.setAttribute("aria-invalid", "true");
  else ui.purposeSelect.removeAttribute("aria-invalid");
}

ui.dialogForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const purpose = ui.purposeSelect.value;
  if (!purpose) {
    showPurposeError(true);
    ui.purposeSelect.focus();
    return;
  }
  const call = roster.get(pendingCall?.call_id) || pendingCall;
  pendingCall = null;
  ui.dialog.close();
  startListening(call, purpose);
});
ui.purposeSelect.addEventListener("change", () => showPurposeError(false));
// A closed <select> does not submit its form on Enter; here it should.
ui.purposeSelect.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing) {
    event.preventDefault();
    ui.dialogForm.requestSubmit();
  }
});
ui.purposeCancel.addEventListener("click", () => ui.dialog.close());
ui.dialog.addEventListener("close", () => {
  if (pendingCall && dialogReturnFocus?.isConnected) dialogReturnFocus.focus();
  pendingCall = null;
});

// --- listening --------------------------------------------------------------------------

function startListening(call, purpose) {
  ensureAudioContext();
  hooks.timings = { requestSent: null, answerReceived: null, connected: null, firstAudio: null };
  hooks.endReason = null;
  hooks.error = null;
  session = new ListenSession({
    api,
    call,
    purpose,
    iceServers: me.ice_servers,
    audioContext,
    audioContainer: ui.panel.querySelector("[data-role=audio-sink]"),
    onChange: sessionChanged,
    onLevels: renderLevels,
    onEnd: sessionEnded,
  });
  session.consentAtStart = call.consent;
  session.lastState = null;
  roster.setActive(call.call_id, true);
  for (const leg of LEG_ORDER) {
    const volume = session.volume(leg);
    ui.legs[leg].volume.value = String(volume);
    ui.legs[leg].shown = 0;
  }
  sessionChanged(session);
  ui.panel.hidden = false;
  // Focus the panel heading, not the Stop button: the Enter that confirmed the dialog would
  // otherwise go on to press Stop. Screen readers announce the panel from its heading.
  ui.panelTitle.focus();
  session.start();
}

function exportSession(s) {
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
  if (session && !session.done && session.state === "listening") {
    const agent = agentOf(session.call);
    setStatus("ok", () => i18n.t("status.listening", { agent }));
  } else {
    setStatus("info", () => i18n.t("status.ready"));
  }
}

function sessionChanged(s) {
  if (s !== session) return;
  exportSession(s);
  renderPanel();
  if (s.done) return;
  const agent = agentOf(s.call);
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

function sessionEnded(s) {
  if (s !== session) return;
  exportSession(s);
  // Return focus to the roster only if it was in the panel (or was lost with a disabled
  // Stop button); never take it from wherever else the user is.
  const active = document.activeElement;
  const focusWasInPanel = !active || active === document.body || ui.panel.contains(active);
  ui.panel.hidden = true;
  roster.setActive(null, false);
  for (const leg of LEG_ORDER) ui.legs[leg].shown = 0;
  hooks.levels = { agent: 0, caller: 0 };
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
  if (focusWasInPanel) {
    const row = /** @type {HTMLElement | null} */ (document.querySelector(
      `[data-testid="call-row"][data-call-id="${CSS.escape(s.call.call_id)}"] [data-testid="listen-button"]`,
    ));
    (row || ui.rosterSection).focus();
  }
}

/** Autoplay rules can refuse playback or keep the meter's AudioContext suspended; the next
 *  click on the page resumes both. */
function checkAudioAllowed() {
  const blocked = () =>
    (audioContext && audioContext.state !== "running") ||
    [...ui.panel.querySelectorAll("audio")].some((audio) => audio.paused);
  setTimeout(() => {
    if (!blocked() || !session || session.done) return;
    setStatus("warn", () => i18n.t("status.audioBlocked"));
    document.addEventListener(
      "click",
      () => {
        audioContext?.resume().catch(() => {});
        for (const audio of ui.panel.querySelectorAll("audio")) audio.play().catch(() => {});
        if (session && !session.done) restingStatus();
      },
      { once: true, capture: true },
    );
  }, 500);
}

ui.stopButton.addEventListener("click", () => {
  session?.stop(session.sessionId ? "stopped" : "cancelled");
});

for (const leg of LEG_ORDER) {
  ui.legs[leg].volume.addEventListener("input", (event) => {
    const value = Number(/** @type {HTMLInputElement} */ (event.target).value);
    session?.setVolume(leg, value);
    renderVolume(leg, value);
  });
}

window.addEventListener("pagehide", () => session?.stopOnUnload());

// --- the listen panel -------------------------------------------------------------------

const percent = () => new Intl.NumberFormat(i18n.lang, { style: "percent", maximumFractionDigits: 0 });

function renderVolume(leg, value) {
  ui.legs[leg].volumeValue.textContent = percent().format(value / 100);
}

function renderPanel() {
  const s = session;
  for (const leg of LEG_ORDER) {
    const view = ui.legs[leg];
    const legName = i18n.t(`leg.${leg}`);
    view.meter.setAttribute("aria-label", i18n.t("leg.level", { leg: legName }));
    view.volume.setAttribute("aria-label", i18n.t("leg.volumeOf", { leg: legName }));
    renderVolume(leg, Number(view.volume.value));
  }
  if (!s) return;
  const stopping = s.state === "stopping";
  ui.panel.dataset.state = s.state;
  ui.panelState.textContent = i18n.t(`state.${s.state}`, null, "");
  ui.panelState.className = `badge ${s.state === "listening" ? "badge-ok" : "badge-info"}`;
  ui.panelCall.textContent = i18n.t("panel.to", { agent: agentOf(s.call) });
  ui.panelPurpose.textContent = i18n.t("panel.purpose", { purpose: i18n.label("purpose", s.purpose) });
  ui.panelQueue.textContent = s.call.queue ? i18n.t("panel.queue", { queue: s.call.queue }) : "";
  ui.panelQueue.hidden = !s.call.queue;
  ui.stopButton.textContent = i18n.t(s.sessionId ? "panel.stop" : "panel.cancel");
  ui.stopButton.disabled = stopping || s.done;
  renderElapsed();
  for (const leg of LEG_ORDER) {
    const view = ui.legs[leg];
    const state = s.legs.find((l) => l.leg === leg);
    view.volume.disabled = s.done;
    if (!state) {
      view.root.removeAttribute("data-audible");
      view.root.removeAttribute("data-reason");
      view.audibility.className = "badge";
      view.audibility.textContent = i18n.t("leg.waiting");
      continue;
    }
    view.root.dataset.audible = String(state.audible);
    view.root.dataset.available = String(state.available !== false);
    if (state.reason) view.root.dataset.reason = state.reason;
    else view.root.removeAttribute("data-reason");
    if (state.available === false) {
      view.audibility.className = "badge badge-warn";
      view.audibility.textContent = i18n.t("leg.notSent");
      continue;
    }
    view.audibility.className = `badge ${state.audible ? "badge-ok" : "badge-warn"}`;
    view.audibility.textContent = state.audible
      ? i18n.t("leg.audible")
      : state.reason
        ? i18n.t("leg.muted", { reason: i18n.label("reason", state.reason) })
        : i18n.t("leg.mutedPlain");
  }
}

function renderElapsed() {
  const started = session?.startedAt;
  ui.panelElapsed.textContent = formatDuration(started ? (Date.now() - started) / 1000 : 0);
}

/** Meter from RMS: -60..0 dBFS mapped to 0..1, quick rise and slow fall so it is readable. */
function renderLevels(s) {
  if (s !== session) return;
  hooks.levels = { ...s.levels };
  const now = performance.now();
  for (const leg of LEG_ORDER) {
    const view = ui.legs[leg];
    const rms = s.levels[leg] || 0;
    const db = 20 * Math.log10(Math.max(rms, 1e-6));
    const level = Math.min(1, Math.max(0, (db + 60) / 60));
    view.shown = Math.max(level, view.shown * 0.92);
    view.meter.style.setProperty("--level", view.shown.toFixed(3));
    if (now - view.announcedAt > 250) {
      view.announcedAt = now;
      view.meter.setAttribute("aria-valuenow", String(Math.round(view.shown * 100)));
    }
  }
}

// --- start ------------------------------------------------------------------------------

i18n.mountSwitch(byId("lang-switch"));
i18n.apply();
i18n.onChange(() => {
  renderStatus();
  renderUser();
  renderConnection();
  roster.render();
  renderPanel();
  if (ui.dialog.open && me) {
    fillPurposes();
    ui.dialogCall.textContent = i18n.t("dialog.call", { agent: agentOf(pendingCall) });
  }
});
renderStatus();
renderConnection();
renderPanel();
roster.render();

setInterval(() => {
  roster.tick();
  if (session && !session.done) renderElapsed();
  if (hooks.connection === "waiting") renderConnection();
}, 1000);

loadMe();

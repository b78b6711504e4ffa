// One listen panel: a copy of `<template id="panel-template">` showing one listen session
// (its call, purpose, state, legs with level meter, volume and quality), or, once a restart
// or a lost connection cut that session, what happened and a button to resume it.
//
// The panel only shows; console.js decides. Callbacks: onStop(), onResume(), onDismiss(),
// onVolume(leg, percent), onOutput(deviceId).

import { clock } from "../shared/duration.js";
import { LEG_ORDER } from "./listen.js";
import { agentLabel } from "./rosterquery.js";

let panels = 0;

const canChooseOutput = () =>
  typeof HTMLMediaElement !== "undefined" &&
  typeof HTMLMediaElement.prototype.setSinkId === "function" &&
  !!navigator.mediaDevices?.enumerateDevices;

export class ListenPanel {
  constructor({ template, container, i18n, onStop, onResume, onDismiss, onVolume, onOutput }) {
    /** @type {import("../shared/i18n.js").I18n} */
    this.i18n = i18n;
    /** @type {() => void} */
    this.onStop = onStop;
    /** @type {() => void} */
    this.onResume = onResume;
    /** @type {() => void} */
    this.onDismiss = onDismiss;
    /** @type {(leg: string, percent: number) => void} */
    this.onVolume = onVolume;
    /** @type {(deviceId: string) => void} */
    this.onOutput = onOutput;
    panels += 1;
    const root = template.content.firstElementChild.cloneNode(true);
    const part = (name, scope = root) => scope.querySelector(`[data-role="${name}"]`);
    this.root = root;
    this.ui = {
      title: part("title"),
      state: part("state"),
      call: part("call"),
      purpose: part("purpose"),
      queue: part("queue"),
      elapsed: part("elapsed"),
      stop: part("stop"),
      interrupted: part("interrupted"),
      interruptedText: part("interrupted-text"),
      resume: part("resume"),
      dismiss: part("dismiss"),
      serverQuality: part("server-quality"),
      output: part("output"),
      outputSelect: part("output-select"),
      sink: part("audio-sink"),
    };
    root.setAttribute("aria-labelledby", (this.ui.title.id = `panel-title-${panels}`));
    this.ui.outputSelect.id = `output-${panels}`;
    this.ui.output.querySelector("label").htmlFor = this.ui.outputSelect.id;
    this.legs = {};
    for (const leg of LEG_ORDER) {
      const legRoot = root.querySelector(`[data-leg="${leg}"]`);
      const volume = part("volume", legRoot);
      volume.id = `volume-${leg}-${panels}`;
      legRoot.querySelector("label[data-role=volume-label]").htmlFor = volume.id;
      part("volume-value", legRoot).htmlFor = volume.id;
      this.legs[leg] = {
        root: legRoot,
        audibility: part("audibility", legRoot),
        meter: part("meter", legRoot),
        volume,
        volumeValue: part("volume-value", legRoot),
        quality: part("quality", legRoot),
        shown: 0,
        announcedAt: 0,
      };
      volume.addEventListener("input", () => {
        this.onVolume(leg, Number(volume.value));
        this._renderVolume(leg);
      });
    }
    this.ui.stop.addEventListener("click", () => this.onStop());
    this.ui.resume.addEventListener("click", () => this.onResume());
    this.ui.dismiss.addEventListener("click", () => this.onDismiss());
    this.ui.outputSelect.addEventListener("change", () => this.onOutput(this.ui.outputSelect.value));
    i18n.apply(root);
    container.prepend(root); // the newest panel first, next to the roster's top
    this.session = null;
    this.interruption = null;
    this.quality = {};
    this.dropped = null;
    this.fillOutputs();
  }

  get audioContainer() {
    return this.ui.sink;
  }

  focus() {
    this.ui.title.focus();
  }

  contains(node) {
    return this.root.contains(node);
  }

  remove() {
    this.root.remove();
  }

  /** A new session in this panel (first listen, switch, or resume). */
  attach(session) {
    this.session = session;
    this.interruption = null;
    this.quality = {};
    this.dropped = null;
    for (const leg of LEG_ORDER) {
      this.legs[leg].volume.value = String(session.volume(leg));
      this.legs[leg].shown = 0;
    }
    this.render();
  }

  /** The session was cut by a restart or a lost connection: `{cause, resumable}`. */
  interrupt(interruption) {
    this.interruption = interruption;
    this.render();
  }

  setResumable(resumable) {
    if (!this.interruption || this.interruption.resumable === resumable) return;
    this.interruption.resumable = resumable;
    this.render();
  }

  setQuality(quality) {
    this.quality = quality || {};
    this._renderQuality();
  }

  setDropped(count) {
    this.dropped = count;
    this._renderQuality();
  }

  /** Output devices (`setSinkId`), where the browser allows choosing one. */
  async fillOutputs() {
    if (!canChooseOutput()) return;
    let devices = [];
    try {
      devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audiooutput");
    } catch {
      return;
    }
    const select = this.ui.outputSelect;
    const chosen = select.value;
    const t = this.i18n.t.bind(this.i18n);
    select.replaceChildren(new Option(t("output.default"), ""));
    devices
      .filter((d) => d.deviceId && d.deviceId !== "default")
      .forEach((d, index) => select.append(new Option(d.label || t("output.device", { n: index + 1 }), d.deviceId)));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
    this.ui.output.hidden = false;
  }

  render() {
    const s = this.session;
    const t = this.i18n.t.bind(this.i18n);
    for (const leg of LEG_ORDER) {
      const view = this.legs[leg];
      const legName = t(`leg.${leg}`);
      view.meter.setAttribute("aria-label", t("leg.level", { leg: legName }));
      view.volume.setAttribute("aria-label", t("leg.volumeOf", { leg: legName }));
      this._renderVolume(leg);
    }
    if (!s) return;
    const cut = this.interruption;
    const state = cut ? "interrupted" : s.state;
    this.root.dataset.state = state;
    this.root.dataset.callId = s.call.call_id;
    this.ui.state.textContent = t(`state.${state}`, null, "");
    this.ui.state.className = `badge ${state === "listening" ? "badge-ok" : cut ? "badge-warn" : "badge-info"}`;
    this.ui.call.textContent = t("panel.to", { agent: agentLabel(s.call) });
    this.ui.purpose.textContent = t("panel.purpose", { purpose: this.i18n.label("purpose", s.purpose) });
    this.ui.queue.textContent = s.call.queue ? t("panel.queue", { queue: s.call.queue }) : "";
    this.ui.queue.hidden = !s.call.queue;
    this.ui.stop.hidden = !!cut;
    this.ui.stop.textContent = t(s.sessionId ? "panel.stop" : "panel.cancel");
    this.ui.stop.disabled = s.state === "stopping" || s.done;
    this.ui.interrupted.hidden = !cut;
    if (cut) {
      this.ui.interruptedText.textContent = t(
        cut.resumable ? `interrupted.${cut.cause}` : `interrupted.${cut.cause}.waiting`,
      );
      this.ui.resume.disabled = !cut.resumable;
    }
    this.renderElapsed();
    for (const leg of LEG_ORDER) this._renderLeg(leg);
    this._renderQuality();
  }

  renderElapsed() {
    const s = this.session;
    const running = s && !s.done && s.startedAt;
    if (running || !this.interruption) {
      this.ui.elapsed.textContent = clock(running ? (Date.now() - s.startedAt) / 1000 : 0);
    }
  }

  _renderVolume(leg) {
    const view = this.legs[leg];
    const percent = new Intl.NumberFormat(this.i18n.lang, { style: "percent", maximumFractionDigits: 0 });
    view.volumeValue.textContent = percent.format(Number(view.volume.value) / 100);
  }

  _renderLeg(leg) {
    const t = this.i18n.t.bind(this.i18n);
    const s = this.session;
    const view = this.legs[leg];
    const state = s.legs.find((l) => l.leg === leg);
    view.volume.disabled = s.done;
    if (!state || this.interruption) {
      view.root.removeAttribute("data-audible");
      view.root.removeAttribute("data-reason");
      view.audibility.className = "badge";
      view.audibility.textContent = this.interruption ? "" : t("leg.waiting");
      return;
    }
    view.root.dataset.audible = String(state.audible);
    view.root.dataset.available = String(state.available !== false);
    if (state.reason) view.root.dataset.reason = state.reason;
    else view.root.removeAttribute("data-reason");
    if (state.available === false) {
      view.audibility.className = "badge badge-warn";
      view.audibility.textContent = t("leg.notSent");
      return;
    }
    view.audibility.className = `badge ${state.audible ? "badge-ok" : "badge-warn"}`;
    view.audibility.textContent = state.audible
      ? t("leg.audible")
      : state.reason
        ? t("leg.muted", { reason: this.i18n.label("reason", state.reason) })
        : t("leg.mutedPlain");
  }

  _renderQuality() {
    const t = this.i18n.t.bind(this.i18n);
    const number = (value, digits) =>
      new Intl.NumberFormat(this.i18n.lang, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
    for (const leg of LEG_ORDER) {
      const view = this.legs[leg];
      const q = this.quality[leg];
      if (!q || this.interruption) {
        view.quality.textContent = "";
        view.quality.removeAttribute("data-loss");
        continue;
      }
      view.quality.dataset.loss = q.lossPct === null ? "" : q.lossPct.toFixed(1);
      view.quality.dataset.jitter = q.jitterMs.toFixed(1);
      view.quality.textContent = t("quality.leg", {
        loss: q.lossPct === null ? "–" : number(q.lossPct, 1),
        jitter: number(q.jitterMs, 0),
      });
    }
    const dropped = this.interruption ? null : this.dropped;
    this.ui.serverQuality.hidden = dropped === null;
    if (dropped !== null) {
      this.ui.serverQuality.dataset.dropped = String(dropped);
      this.ui.serverQuality.textContent = t("quality.dropped", { count: dropped });
    }
  }

  /** Meter from RMS: -60..0 dBFS mapped to 0..1, quick rise and slow fall so it is readable. */
  renderLevels(levels) {
    const now = performance.now();
    for (const leg of LEG_ORDER) {
      const view = this.legs[leg];
      const rms = levels[leg] || 0;
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
}

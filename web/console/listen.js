// One listen session: an RTCPeerConnection with two receive-only audio transceivers
// (agent first, caller second, ARCHITECTURE.md decision 1), non-trickle ICE, and per leg an
// <audio> element that plays the leg plus a WebAudio analyser for the level meter.
//
//   track ─► MediaStream ─┬► <audio autoplay>, volume = slider ─► speakers
//                         └► MediaStreamSource ─► AnalyserNode (meter only, not to speakers)
//
// The element plays the audio rather than a WebAudio GainNode because Chromium fills
// getStats() inbound-rtp audioLevel / totalAudioEnergy only for audio its WebRTC playout
// pulls; with the element muted those stay 0 (measured with Chromium here), and tests use
// them to check what a listener hears (PROTOCOLS.md, "The browser as a client").
//
// States: "starting" (offer, ICE gathering, POST), "connecting" (answer applied, waiting for
// ICE/DTLS), "listening" (connected), "stopping", then "ended" (with endReason) or "failed"
// (with error, when the server refused or setup broke before a session existed).

import { ApiError } from "./api.js";

export const LEG_ORDER = Object.freeze(["agent", "caller"]);

const ICE_GATHERING_TIMEOUT_MS = 2000;
const LISTEN_REQUEST_TIMEOUT_MS = 15000;
/** RMS above this (about -60 dBFS) counts as audio rather than silence. */
const SILENCE_RMS = 0.001;

class Cancelled extends Error {}

/** RTCIceServer dictionaries from `/api/me`; null username/credential must be left out
 *  (WebIDL would turn null into the string "null"). */
export function iceServersFrom(servers) {
  if (!Array.isArray(servers)) return [];
  return servers
    .filter((s) => s && s.urls)
    .map((s) => {
      const server = { urls: s.urls };
      if (typeof s.username === "string") server.username = s.username;
      if (typeof s.credential === "string") server.credential = s.credential;
      return server;
    });
}

/** Resolve when ICE gathering is complete, or after `timeoutMs` with what we have. */
function iceGatheringDone(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const onCandidate = (event) => {
      if (!event.candidate) done(); // end-of-candidates
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

function storedVolume(leg) {
  try {
    const value = Number(window.localStorage.getItem(`live.volume.${leg}`));
    if (window.localStorage.getItem(`live.volume.${leg}`) !== null && value >= 0 && value <= 100) {
      return value;
    }
  } catch {
    /* storage unavailable */
  }
  return 100;
}

/** What plays one leg: an <audio> element, and a WebAudio analyser for the meter. */
class LegOutput {
  constructor(leg, track, audioContext, container) {
    this.leg = leg;
    this.track = track;
    this.stream = new MediaStream([track]);
    this.element = document.createElement("audio");
    this.element.autoplay = true;
    this.element.dataset.leg = leg;
    this.element.srcObject = this.stream;
    this.volume = storedVolume(leg);
    this.analyser = null;
    this.source = null;
    if (audioContext) {
      try {
        this.source = audioContext.createMediaStreamSource(this.stream);
        this.analyser = audioContext.createAnalyser();
        this.analyser.fftSize = 1024;
        // Not connected onwards: an AnalyserNode is processed while it has input, and the
        // meter shows what arrives whatever the volume slider says.
        this.source.connect(this.analyser);
        this.buffer = new Float32Array(this.analyser.fftSize);
      } catch {
        this._dropGraph();
      }
    }
    this.setVolume(this.volume);
    container.append(this.element);
    this.element.play().catch(() => {
      /* autoplay refused; the console offers a click to resume */
    });
  }

  _dropGraph() {
    for (const node of [this.source, this.analyser]) {
      try {
        node?.disconnect();
      } catch {
        /* already disconnected */
      }
    }
    this.source = this.analyser = null;
  }

  /** @param {number} percent 0..100 */
  setVolume(percent) {
    this.volume = Math.max(0, Math.min(100, Number(percent) || 0));
    this.element.volume = this.volume / 100;
    try {
      window.localStorage.setItem(`live.volume.${this.leg}`, String(this.volume));
    } catch {
      /* not persisted */
    }
  }

  setSink(sinkId) {
    if (typeof this.element.setSinkId !== "function") return;
    this.element.setSinkId(sinkId).catch(() => {
      /* device gone or not allowed: the default output keeps playing */
    });
  }

  /** Root mean square of the latest analyser window, 0..1; null without WebAudio. */
  rms() {
    if (!this.analyser) return null;
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (let i = 0; i < this.buffer.length; i += 1) sum += this.buffer[i] * this.buffer[i];
    return Math.sqrt(sum / this.buffer.length);
  }

  close() {
    this._dropGraph();
    this.element.pause();
    this.element.srcObject = null;
    this.element.remove();
  }
}

export class ListenSession {
  /**
   * @param {object} options
   * @param {import("./api.js").Api} options.api
   * @param {object} options.call CALL from the roster
   * @param {string} options.purpose
   * @param {string|null} [options.resumes] the session this one resumes (restart, lost connection)
   * @param {string} [options.sinkId] output device (`setSinkId`), "" for the default
   * @param {Array} options.iceServers `ice_servers` from /api/me
   * @param {AudioContext|null} options.audioContext
   * @param {HTMLElement} options.audioContainer where the <audio> elements go
   * @param {(session: ListenSession) => void} options.onChange any state/leg change
   * @param {(session: ListenSession) => void} options.onLevels every animation frame
   * @param {(session: ListenSession) => void} options.onEnd once, when ended or failed
   */
  constructor(options) {
    this.api = options.api;
    /** @type {Record<string, any>} */
    this.call = options.call;
    this.purpose = options.purpose;
    /** @type {string | null} */
    this.resumes = options.resumes ?? null;
    /** @type {string} */
    this.sinkId = options.sinkId ?? "";
    this.iceServers = options.iceServers;
    this.audioContext = options.audioContext;
    this.audioContainer = options.audioContainer;
    this.onChange = options.onChange;
    this.onLevels = options.onLevels;
    this.onEnd = options.onEnd;
    this.state = "starting";
    this.pc = null;
    this.sessionId = null;
    /** [{leg, mid, audible, available, reason}] as answered, then as updated by events;
     *  `available` is false for a leg the telephony does not send (reason `not_sent`). */
    this.legs = [];
    /** The legs as the server answered, to return to when a temporary mute ends. */
    this.answeredLegs = [];
    this.outputs = new Map();
    this.levels = { agent: 0, caller: 0 };
    this.timings = {
      requestSent: null,
      answerReceived: null,
      connected: null,
      firstAudio: null,
    };
    this.startedAt = null; // Date.now() when the server accepted
    this.endReason = null;
    this.error = null;
    this.interrupted = false;
    this._cancelReason = null;
    this._done = false;
    this._frame = 0;
  }

  get done() {
    return this._done;
  }

  _setState(state) {
    if (this._done && state !== "ended" && state !== "failed") return;
    this.state = state;
    this.onChange(this);
  }

  _checkCancelled() {
    if (this._cancelReason) throw new Cancelled(this._cancelReason);
  }

  async start() {
    try {
      await this._negotiate();
    } catch (err) {
      if (this._done) return;
      if (err instanceof Cancelled) {
        if (this.sessionId) await this._deleteSession();
        this._finish({ reason: this._cancelReason });
        return;
      }
      // The server accepted but we could not use its answer: end the session it logged.
      if (this.sessionId) await this._deleteSession();
      this._finish({ reason: this.sessionId ? "setup-failed" : null, error: err });
    }
  }

  async _negotiate() {
    if (typeof RTCPeerConnection === "undefined") {
      throw new ApiError(0, "webrtc", "");
    }
    const pc = new RTCPeerConnection({ iceServers: iceServersFrom(this.iceServers) });
    this.pc = pc;
    pc.addEventListener("connectionstatechange", () => this._connectionChanged());
    // Order matters: agent first (mid 0), caller second (mid 1).
    this.transceivers = LEG_ORDER.map(() => pc.addTransceiver("audio", { direction: "recvonly" }));
    this.onChange(this);

    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc, ICE_GATHERING_TIMEOUT_MS);
    this._checkCancelled();

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), LISTEN_REQUEST_TIMEOUT_MS);
    this.timings.requestSent = performance.now();
    this.onChange(this);
    let answer;
    try {
      answer = await this.api.listen(
        this.call.call_id,
        { sdp: pc.localDescription.sdp, purpose: this.purpose, resumes: this.resumes },
        timeout.signal,
      );
    } catch (err) {
      if (err && err.name === "AbortError") throw new ApiError(0, "timeout", "");
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.timings.answerReceived = performance.now();
    this.sessionId = answer.session_id ?? null;
    this.startedAt = Date.now();
    this._checkCancelled();

    this.answeredLegs = this._legsFrom(answer.legs);
    this.legs = this.answeredLegs.map((leg) => ({ ...leg }));
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch {
      throw new ApiError(0, "sdp", "");
    }
    this._checkCancelled();
    this._attachOutputs();
    if (pc.connectionState === "connected") this._connectionChanged();
    else this._setState("connecting");
    this._frame = requestAnimationFrame(() => this._measure());
  }

  /** Legs from the answer, defaulting to agent/caller in transceiver order. */
  _legsFrom(answered) {
    const list = Array.isArray(answered) ? answered : [];
    return LEG_ORDER.map((name, index) => {
      const given = list.find((leg) => leg && leg.leg === name) || {};
      const available = given.available !== false;
      const audible = given.audible !== false;
      return {
        leg: name,
        mid: given.mid != null ? String(given.mid) : this.transceivers[index].mid,
        audible,
        available,
        // Not being sent is shown on its own (`available`): the reason is the policy's.
        reason: given.reason === "not_sent" && audible ? null : (given.reason ?? null),
      };
    });
  }

  _attachOutputs() {
    for (const [index, leg] of this.legs.entries()) {
      // Map by mid as the server answered it; fall back to transceiver order.
      const transceiver =
        this.pc.getTransceivers().find((t) => t.mid !== null && t.mid === leg.mid) ||
        this.transceivers[index];
      const track = transceiver.receiver.track;
      const output = new LegOutput(leg.leg, track, this.audioContext, this.audioContainer);
      this.outputs.set(leg.leg, output);
      if (this.sinkId) output.setSink(this.sinkId);
    }
  }

  /** Play both legs on output device `sinkId` ("" = the system default). */
  setSink(sinkId) {
    this.sinkId = sinkId || "";
    for (const output of this.outputs.values()) output.setSink(this.sinkId);
  }

  _connectionChanged() {
    const pc = this.pc;
    if (!pc || this._done) return;
    switch (pc.connectionState) {
      case "connected":
        this.timings.connected ??= performance.now();
        this.interrupted = false;
        if (this.state !== "stopping") this._setState("listening");
        break;
      case "disconnected":
        // Often recovers on its own (ICE consent freshness); "failed" follows if not.
        this.interrupted = true;
        this.onChange(this);
        break;
      case "failed":
        this.stop("connection-failed");
        break;
      case "closed":
        if (this.state !== "stopping") this.stop("peer-closed", { notifyServer: false });
        break;
      default:
        break;
    }
  }

  _measure() {
    if (this._done) return;
    for (const [leg, output] of this.outputs) {
      const rms = output.rms();
      this.levels[leg] = rms ?? 0;
      if (leg === "agent" && rms !== null && rms > SILENCE_RMS && this.timings.firstAudio === null) {
        this.timings.firstAudio = performance.now();
      }
    }
    this.onLevels(this);
    this._frame = requestAnimationFrame(() => this._measure());
  }

  setVolume(leg, percent) {
    this.outputs.get(leg)?.setVolume(percent);
  }

  volume(leg) {
    return this.outputs.get(leg)?.volume ?? storedVolume(leg);
  }

  /** Whether the telephony sends the leg (the roster's `call.legs`), e.g. once the second
   *  Twilio stream of a call arrives. */
  setLegAvailable(leg, available) {
    const entry = this.legs.find((l) => l.leg === leg);
    if (!entry || entry.available === available) return;
    entry.available = available;
    this.onChange(this);
  }

  /** Replace what we show about a leg's audibility (from events); the server decides. */
  setLegState(leg, { audible, reason }) {
    const entry = this.legs.find((l) => l.leg === leg);
    if (!entry) return;
    if (entry.audible === audible && entry.reason === reason) return;
    entry.audible = audible;
    entry.reason = reason;
    this.onChange(this);
  }

  /**
   * Stop listening. `notifyServer` sends `DELETE /api/listens/{id}` first; leave it false when
   * the server ended the session itself (call ended, listen.ended).
   */
  async stop(reason = "stopped", { notifyServer = true } = {}) {
    if (this._done || this._cancelReason) return;
    this._cancelReason = reason;
    if (!this.sessionId) {
      // Still negotiating: start() notices, deletes the session if one appears, and finishes.
      this._setState("stopping");
      return;
    }
    this._setState("stopping");
    let error = null;
    if (notifyServer) error = await this._deleteSession();
    this._finish({ reason, error });
  }

  /** Best-effort DELETE; returns the error unless the session was already gone. */
  async _deleteSession() {
    try {
      await this.api.stopListen(this.sessionId);
      return null;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 410)) return null;
      return err;
    }
  }

  /** Fire-and-forget DELETE that outlives the page (pagehide). */
  stopOnUnload() {
    if (this._done || !this.sessionId) return;
    this.api.stopListen(this.sessionId, { keepalive: true }).catch(() => {});
    this._finish({ reason: "stopped" });
  }

  _finish({ reason = null, error = null }) {
    if (this._done) return;
    this._done = true;
    cancelAnimationFrame(this._frame);
    for (const output of this.outputs.values()) output.close();
    this.outputs.clear();
    this.levels = { agent: 0, caller: 0 };
    if (this.pc) {
      try {
        this.pc.close();
      } catch {
        /* already closed */
      }
    }
    this.endReason = reason;
    this.error = error;
    this.state = reason ? "ended" : "failed";
    this.onChange(this);
    this.onEnd(this);
  }
}

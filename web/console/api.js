// The console's view of the server API: JSON requests with the CSRF header, error bodies
// `{"error": {"code", "message"}}` turned into ApiError, and the `/api/events` WebSocket
// with reconnect and backoff.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the server could not be reached
   * @param {string} code machine-readable code from the error body (or "network"/"http")
   * @param {string} message human-readable message from the server, may be empty
   */
  constructor(status, code, message) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.serverMessage = message || "";
  }
}

export class Api {
  constructor() {
    /** Set from `GET /api/me`; sent as `X-CSRF-Token` on every POST and DELETE. */
    this.csrfToken = null;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, signal?: AbortSignal, keepalive?: boolean}} [options]
   */
  async request(method, path, { body, signal, keepalive = false } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && this.csrfToken) headers["X-CSRF-Token"] = this.csrfToken;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
        signal,
        keepalive,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null; // e.g. an HTML error page from a proxy
      }
    }
    if (!response.ok) {
      const error = data && typeof data.error === "object" && data.error ? data.error : {};
      throw new ApiError(
        response.status,
        typeof error.code === "string" ? error.code : "http",
        typeof error.message === "string" ? error.message : "",
      );
    }
    return data;
  }

  async me() {
    const me = await this.request("GET", "/api/me");
    this.csrfToken = me.csrf_token || null;
    return me;
  }

  /** `resumes`: the session id of an interrupted listen this one resumes (on record). */
  listen(callId, { sdp, purpose, resumes = null }, signal) {
    const body = { sdp, type: "offer", purpose };
    if (resumes) body.resumes = resumes;
    return this.request("POST", `/api/calls/${encodeURIComponent(callId)}/listen`, { body, signal });
  }

  /** The signed-in person's running listens, with the packets the server dropped for each. */
  myListens() {
    return this.request("GET", "/api/listens");
  }

  /** `keepalive` lets the request outlive the page (used on pagehide). */
  stopListen(sessionId, { keepalive = false } = {}) {
    return this.request("DELETE", `/api/listens/${encodeURIComponent(sessionId)}`, { keepalive });
  }
}

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;

/**
 * The `/api/events` WebSocket, reconnected with exponential backoff (1 s .. 10 s).
 * Callbacks: onMessage(obj), onState({state, attempt, delayMs, code, reason}).
 * States: "connecting", "open", "waiting" (closed, retry scheduled), "stopped".
 * `onClose({code, reason, opened})` may return false to stop reconnecting (e.g. signed out);
 * `opened` is false when the upgrade itself failed (an HTTP 401 shows up only as 1006).
 */
export class EventStream {
  constructor({ onMessage, onState, onClose }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.onClose = onClose;
    this.socket = null;
    this.timer = null;
    this.failures = 0;
    this.stopped = true;
  }

  get url() {
    const url = new URL("/api/events", window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.onState({ state: "stopped" });
  }

  /** A message proved the connection healthy: the next failure starts from 1 s again. */
  markHealthy() {
    this.failures = 0;
  }

  _connect() {
    clearTimeout(this.timer);
    this.onState({ state: "connecting" });
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this._scheduleRetry(0, "", false);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      if (this.socket === socket) this.onState({ state: "open" });
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket || typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret
      }
      if (message && typeof message === "object") this.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      this._scheduleRetry(event.code, event.reason, opened);
    });
    // "error" is always followed by "close"; nothing to do here.
  }

  async _scheduleRetry(code, reason, opened) {
    if (this.onClose && (await this.onClose({ code, reason, opened })) === false) {
      this.stopped = true;
      this.onState({ state: "stopped", code, reason });
      return;
    }
    if (this.stopped) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.failures);
    // A little jitter so many consoles do not reconnect in lockstep after a restart.
    const delayMs = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.85 + Math.random() * 0.3)));
    this.failures += 1;
    this.onState({ state: "waiting", attempt: this.failures, delayMs, code, reason });
    this.timer = setTimeout(() => this._connect(), delayMs);
  }
}

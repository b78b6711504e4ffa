// More than one panel and switching: listen to two calls at once (two panels, both playing),
// quality per leg from getStats() and the server's dropped packets, Switch moves the newest
// listen to a third call in one step with the same purpose, Esc stops the newest listen and
// leaves the other, Stop ends the last.
//
// args: {base, token (a supervisor's), calls: [three call ids]}
// data: {switchedFrom, switchedTo, escaped, stopped} (session ids)

import { signIn } from "./signin.mjs";
import { blur, listen, panel, row, sessions, waitPanel, waitRows } from "./console.mjs";

function panelCount(t, page, what, count) {
  return t.waitFor(page, what, (n) => document.querySelectorAll('[data-testid="listen-panel"]').length === n, count);
}

export default async function (t) {
  const [a, b, c] = t.args.calls;
  const page = await signIn(t, t.args.token, "/console/");
  await waitRows(t, page, "three calls in the roster", 3);
  await listen(t, page, a, "training");
  await listen(t, page, b, "quality");
  await panelCount(t, page, "a second listen opens a second panel", 2);
  const both = await sessions(page);
  t.check(JSON.stringify(both.map((s) => [s.callId, s.state])) === JSON.stringify([[b, "listening"], [a, "listening"]]),
    "both listens run, newest first", both);
  await t.waitFor(page, "all four legs play", () => {
    const audio = [...document.querySelectorAll('[data-testid="listen-panel"] audio')];
    return audio.length === 4 && audio.every((el) => !el.paused && el.currentTime > 0);
  });
  const disabled = await page.$eval(`${row(a)} [data-testid="listen-button"]`, (el) => el.disabled);
  t.check(disabled, "the row being listened to offers no second Listen");
  await page.waitForSelector(`${row(c)} [data-testid="switch-button"]`, { visible: true });
  t.check(true, "another row offers Switch");

  // Quality per leg (getStats) and the server's dropped packets for this listen.
  await t.waitFor(page, "loss and jitter shown per leg", (sel) =>
    [...document.querySelectorAll(`${sel} [data-testid="leg-quality"]`)].every((el) => el.textContent.includes("jitter")),
    panel(b));
  await t.waitFor(page, "the server's dropped packets shown", (sel) => {
    const el = document.querySelector(`${sel} [data-testid="server-quality"]`);
    return el && !el.hidden && el.dataset.dropped === "0" && el.textContent.includes("dropped");
  }, panel(b));

  // Switch: the newest panel moves to the third call in one step, same purpose.
  await page.click(`${row(c)} [data-testid="switch-button"]`);
  await waitPanel(t, page, "Switch listens to the third call", c, "listening");
  await t.waitFor(page, "the switched-from panel is gone", (sel) => !document.querySelector(sel), panel(b));
  await panelCount(t, page, "still two panels", 2);
  const switched = await sessions(page);
  const to = switched.find((s) => s.callId === c);
  t.check(to.purpose === "quality", "the switched listen keeps the purpose", to);
  t.data.switchedFrom = both[0].sessionId;
  t.data.switchedTo = to.sessionId;

  // Esc stops the newest listen; the other one goes on.
  await blur(page);
  await page.keyboard.press("Escape");
  await t.waitFor(page, "Esc stops the newest listen", (sel) => !document.querySelector(sel), panel(c));
  t.data.escaped = to.sessionId;
  const left = await sessions(page);
  t.check(JSON.stringify(left.map((s) => [s.callId, s.state])) === JSON.stringify([[a, "listening"]]),
    "the other listen goes on", left);
  await page.click(`${panel(a)} [data-testid="stop-button"]`);
  await panelCount(t, page, "Stop ends the last listen", 0);
  t.data.stopped = both[1].sessionId;
}

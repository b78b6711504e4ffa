// A listen cut by a server restart, in German: the panel says the server restarts (not that
// the call ended), Resume waits until the server and the call are back, then starts a new
// listen with the same purpose.
//
// args: {base, token (a supervisor's), callId, purpose}
// steps: "listening" {first} (the test stops the server), "cut" (the test starts it again on
//        the same data and port, and the call comes back)
// data: {first, second} (session ids)

import { signIn } from "./signin.mjs";
import { listen, panel, sessions, waitPanel, waitRows } from "./console.mjs";

const interruptedText = (page, callId) =>
  page.$eval(`${panel(callId)} [data-testid="interrupted"]`, (el) => el.textContent);

export default async function (t) {
  const { callId, purpose } = t.args;
  const page = await signIn(t, t.args.token, "/console/", { lang: "de" });
  await waitRows(t, page, "the call in the roster", 1);
  await listen(t, page, callId, purpose);
  t.data.first = await page.evaluate(() => window.liveConsole.sessionId);
  t.check(!!t.data.first, "the listen has a session", t.data.first);

  await t.step("listening", { first: t.data.first });
  await waitPanel(t, page, "the cut listen keeps its panel, interrupted", callId, "interrupted");
  const said = await interruptedText(page, callId);
  t.check(said.includes("Server") && said.includes("neu gestartet"), "it says the server restarts, in German", said);
  const cut = await sessions(page);
  t.check(JSON.stringify(cut.map((s) => [s.interrupted, s.resumable])) === JSON.stringify([["restart", false]]),
    "a restart, not resumable yet", cut);
  const disabled = await page.$eval(`${panel(callId)} [data-testid="resume-button"]`, (el) => el.disabled);
  t.check(disabled, "Resume waits while the server is away");

  await t.step("cut");
  await t.waitFor(page, "Resume becomes possible once the server and the call are back", (sel) =>
    document.querySelector(`${sel} [data-testid="resume-button"]`)?.disabled === false, panel(callId));
  const back = await interruptedText(page, callId);
  t.check(back.includes("fortsetzen"), "it offers to resume, in German", back);
  await page.click(`${panel(callId)} [data-testid="resume-button"]`);
  await waitPanel(t, page, "the resumed listen plays", callId, "listening");
  t.data.second = await page.evaluate(() => window.liveConsole.sessionId);
  t.check(t.data.second && t.data.second !== t.data.first, "a new listen session", t.data);
  await page.click(`${panel(callId)} [data-testid="stop-button"]`);
  await t.waitFor(page, "the resumed listen stops", () => !window.liveConsole.sessionId);
}

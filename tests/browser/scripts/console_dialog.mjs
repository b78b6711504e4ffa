// The purpose dialog closes when its call ends, and says so, in English and German; nothing
// is listened to.
//
// args: {base, token (a supervisor's), callId, said: {en, de}}
// steps: "dialog-open" {lang} (the test ends the call), "again" (the test starts it again)

import { signIn } from "./signin.mjs";
import { row } from "./console.mjs";

export default async function (t) {
  const { callId, said } = t.args;
  for (const lang of ["en", "de"]) {
    if (lang !== "en") await t.step("again");
    const page = await signIn(t, t.args.token, "/console/", { lang });
    await page.waitForSelector(row(callId));
    await page.click(`${row(callId)} [data-testid="listen-button"]`);
    await t.waitFor(page, `${lang}: the purpose dialog is open`, () => document.getElementById("purpose-dialog").open);
    await t.step("dialog-open", { lang });
    await t.waitFor(page, `${lang}: the dialog closes when its call ends`, () => !document.getElementById("purpose-dialog").open);
    await t.waitFor(page, `${lang}: the status says why`, (text) =>
      document.querySelector('[data-testid="status"]').textContent === text, said[lang]);
    await t.waitFor(page, `${lang}: the call's row is gone`, (sel) => !document.querySelector(sel), row(callId));
    const sessions = await page.evaluate(() => window.liveConsole.sessions.length);
    t.check(sessions === 0, `${lang}: no listen started`, sessions);
    await page.close();
  }
}

// The console in a second browser: sign in, the roster shows the call, Listen with a
// purpose, and both legs' audio elements play what arrives over WebRTC.
//
// args: {base, token (a supervisor's), callId, purpose}

import { signIn } from "./signin.mjs";

export default async function (t) {
  const page = await signIn(t, t.args.token, "/console/");
  const row = `[data-testid="call-row"][data-call-id="${t.args.callId}"]`;
  await page.waitForSelector(row);
  t.check(true, "the roster shows the call");
  await page.click(`${row} [data-testid="listen-button"]`);
  await page.waitForSelector('[data-testid="purpose-select"]', { visible: true });
  await page.select('[data-testid="purpose-select"]', t.args.purpose);
  await page.click('[data-testid="purpose-confirm"]');
  await page.waitForSelector('[data-testid="listen-panel"]', { visible: true });
  t.check(true, "the listen panel opens");
  await t.waitFor(page, "both legs' audio tracks are live and playing", () => {
    const audio = [...document.querySelectorAll("audio")];
    return (
      audio.length >= 2 &&
      audio.every((a) => !a.paused && a.srcObject && a.srcObject.getAudioTracks().some((tr) => tr.readyState === "live") && a.currentTime > 0)
    );
  });
  await t.waitFor(page, "packets arrive on both legs", async () => {
    const pc = window.liveConsole && window.liveConsole.pc;
    if (!pc) return false;
    const report = await pc.getStats();
    let legs = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio" && s.packetsReceived > 50) legs += 1;
    });
    return legs >= 2;
  });
  await page.click('[data-testid="stop-button"]');
  await t.waitFor(page, "the listen stops", () => !window.liveConsole.sessionId);
}

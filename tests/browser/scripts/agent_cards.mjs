// The agent page: cards with inner padding, the live indicator naming the listener and the
// purpose (as the console names it), the history with purpose, listener, start, end and
// duration; at 375 px nothing scrolls sideways. German as well as English.
//
// args: {base, token (the agent's), listener, purposeLabel: {en, de}, durationText: {en, de}}

import { signIn, texts } from "./signin.mjs";

async function checkPage(t, page, where, lang) {
  const { listener, purposeLabel, durationText } = t.args;
  await t.waitFor(page, `${where}: the indicator is on`, () =>
    document.querySelector('[data-testid="monitoring-indicator"]').dataset.active === "true");
  const indicator = await page.$eval('[data-testid="monitoring-indicator"]', (el) => el.textContent);
  t.check(indicator.includes(listener) && indicator.includes(purposeLabel[lang]),
    `${where}: the indicator names the listener and the purpose`, indicator);
  const paddings = await page.$$eval("#main > section.card:not([hidden])", (cards) =>
    cards.map((card) => parseFloat(getComputedStyle(card).paddingLeft)));
  t.check(paddings.length >= 3 && paddings.every((p) => p >= 8), `${where}: every card has inner padding`, paddings);
  await t.waitFor(page, `${where}: two listens in the history`, () =>
    document.querySelectorAll('[data-testid="history-row"]').length === 2);
  const ended = await page.$$eval('[data-testid="history-row"]', (rows) => {
    const row = rows.find((r) => r.querySelector('[data-col="end"]').textContent && !r.textContent.includes("running") && !r.textContent.includes("läuft"));
    return row ? Object.fromEntries([...row.cells].map((c) => [c.dataset.col, c.textContent])) : null;
  });
  t.check(ended !== null, `${where}: an ended listen in the history`);
  t.check(ended.purpose === purposeLabel[lang], `${where}: its purpose as a label`, ended);
  t.check(ended.listener === listener, `${where}: its listener as the policy discloses`, ended);
  t.check(ended.start.length > 0 && ended.end.length > 0, `${where}: its start and end`, ended);
  t.check(ended.duration === durationText[lang], `${where}: its duration`, ended);
  const headings = await texts(page, ".history thead th");
  t.check(headings.length === 5, `${where}: five history columns`, headings);
}

export default async function (t) {
  const wide = await signIn(t, t.args.token, "/agent/");
  await checkPage(t, wide, "1280 px EN", "en");
  const german = await signIn(t, t.args.token, "/agent/", { lang: "de" });
  await checkPage(t, german, "1280 px DE", "de");
  const narrow = await signIn(t, t.args.token, "/agent/", { width: 375, height: 800 });
  await checkPage(t, narrow, "375 px EN", "en");
  await t.noHorizontalScroll(narrow, "375 px: the agent page does not scroll sideways");
}

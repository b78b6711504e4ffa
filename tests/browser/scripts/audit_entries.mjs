// The audit page lists an entry of every kind (args.kinds), ids never wrap inside, a kind
// filter narrows the list, and at 375 px nothing scrolls sideways.
//
// args: {base, token (an auditor's), kinds: [kind, ...], kindLabels: {kind: label}}

import { signIn } from "./signin.mjs";

async function checkEveryKind(t, page, where) {
  await t.waitFor(page, `${where}: an entry row of every kind`, (kinds) => {
    const shown = new Set([...document.querySelectorAll('[data-testid="entry-row"]')].map((r) => r.dataset.kind));
    return kinds.every((kind) => shown.has(kind));
  }, t.args.kinds);
  const labels = await page.$$eval('[data-testid="entry-row"] td[data-col="kind"]', (cells) =>
    Object.fromEntries(cells.map((cell) => [cell.parentElement.dataset.kind, cell.textContent])),
  );
  for (const [kind, label] of Object.entries(t.args.kindLabels)) {
    t.check(labels[kind] === label, `${where}: ${kind} is shown as "${label}"`, labels[kind]);
  }
  // An id cell on one line: its text makes a single line box ("agent-1", never "agent-/1").
  const wrapped = await page.$$eval("td.id", (cells) =>
    cells
      .filter((cell) => cell.textContent.length > 0)
      .filter((cell) => {
        const range = document.createRange();
        range.selectNodeContents(cell);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        return tops.size > 1;
      })
      .map((cell) => cell.textContent),
  );
  t.check(wrapped.length === 0, `${where}: no id wraps inside`, wrapped);
}

export default async function (t) {
  const wide = await signIn(t, t.args.token, "/audit/");
  await checkEveryKind(t, wide, "1280 px");
  await wide.select('[data-testid="entries-kind"]', "purge.done");
  await wide.click('#entries-form button[type="submit"]');
  await t.waitFor(wide, "the kind filter leaves only purge.done entries", () => {
    const rows = [...document.querySelectorAll('[data-testid="entry-row"]')];
    return rows.length > 0 && rows.every((r) => r.dataset.kind === "purge.done");
  });

  const narrow = await signIn(t, t.args.token, "/audit/", { width: 375, height: 800 });
  await checkEveryKind(t, narrow, "375 px");
  await t.noHorizontalScroll(narrow, "375 px: the audit page does not scroll sideways");
}

// The console's roster: search (names with accents folded, queues), filters (team, also by its
// count; consent; being listened), sort by agent name with a stable order as calls start and
// change, the keyboard ("/" to search, Esc to clear, arrows, Enter to open the purpose dialog,
// Esc to close it), and the sort remembered across a reload.
//
// args: {base, token (a supervisor's), started: [call id, ...] (as announced),
//        queue: {name, ids}, team: {name, ids}, countTeam: {name, ids}, denied: [call id],
//        counts: ["billing: 3", ...], firstName, accented: {search, ids}}
// steps: "sorted" (the test starts one more call and changes a call's consent) -> {added, changed}

import { signIn } from "./signin.mjs";
import { blur, rowIds, waitRows, waitVisible } from "./console.mjs";

const agentNames = (page) => page.$$eval('[data-testid="agent-name"]', (els) => els.map((el) => el.textContent));
const isSorted = (names) =>
  names.every((name, i) => i === 0 || names[i - 1].localeCompare(name, "en", { numeric: true, sensitivity: "base" }) <= 0);

async function choose(t, page, control, value, what, ids) {
  await page.select(`[data-testid="${control}"]`, value);
  await waitVisible(t, page, what, ids);
}

export default async function (t) {
  const { started, queue, team, countTeam, denied, counts, firstName, accented } = t.args;
  const page = await signIn(t, t.args.token, "/console/");
  await waitRows(t, page, "every running call in the roster", started.length);
  const first = await page.$eval(`[data-call-id="${started[0]}"] [data-testid="agent-name"]`, (el) => el.textContent);
  t.check(first === firstName, "the agent's name from the user store", first);
  t.check(JSON.stringify(await rowIds(page)) === JSON.stringify(started), "started order by default", await rowIds(page));
  const teamCounts = await page.$eval('[data-testid="team-counts"]', (el) => el.textContent);
  for (const text of counts) t.check(teamCounts.includes(text), `team counts say "${text}"`, teamCounts);

  // "/" jumps to the search; words match names (accents folded) and queues; Esc clears.
  await blur(page);
  await page.keyboard.press("/");
  const focused = await page.evaluate(() => document.activeElement.id);
  t.check(focused === "roster-search", '"/" focuses the search', focused);
  await page.keyboard.type(accented.search);
  await waitVisible(t, page, `"${accented.search}" finds the accented name`, accented.ids);
  await page.keyboard.press("Escape");
  await waitVisible(t, page, "Esc clears the search", started);
  await page.keyboard.type(queue.name);
  await waitVisible(t, page, `"${queue.name}" finds the queue's calls`, queue.ids);
  const shown = await page.$eval('[data-testid="roster-shown"]', (el) => el.textContent);
  t.check(shown === `Showing ${queue.ids.length} of ${started.length}`, "the roster says how many it shows", shown);
  await page.keyboard.press("Escape");
  await waitVisible(t, page, "Esc clears the search again", started);

  // Filters: team (also by clicking its count), consent, being listened.
  await choose(t, page, "filter-team", team.name, `the ${team.name} team filter`, team.ids);
  await choose(t, page, "filter-team", "", "every team again", started);
  await page.click(`[data-testid="team-counts"] button[data-team="${countTeam.name}"]`);
  await waitVisible(t, page, `clicking ${countTeam.name}'s count filters by it`, countTeam.ids);
  await page.click(`[data-testid="team-counts"] button[data-team="${countTeam.name}"]`);
  await waitVisible(t, page, "clicking it again shows every team", started);
  await choose(t, page, "filter-consent", "denied", "the consent filter", denied);
  await choose(t, page, "filter-consent", "any", "any consent again", started);
  await choose(t, page, "filter-listened", "listened", "the being-listened filter", []);
  await choose(t, page, "filter-listened", "any", "listened or not again", started);

  // Sort by agent name; a call that starts later takes its place, nobody else moves.
  await page.select('[data-testid="roster-sort"]', "agent");
  await t.waitFor(page, "the rows sorted by agent name", (name) =>
    document.querySelector('[data-testid="agent-name"]')?.textContent === name, firstName);
  const names = await agentNames(page);
  t.check(isSorted(names), "agent names in order", names);
  const before = await rowIds(page);
  const { added, changed } = await t.step("sorted");
  await waitRows(t, page, "the new call in the roster", started.length + 1);
  const after = await rowIds(page);
  t.check(JSON.stringify(after.filter((id) => id !== added)) === JSON.stringify(before),
    "no other row moved for the new call", { before, after });
  const sortedNames = await agentNames(page);
  t.check(isSorted(sortedNames), "the new call sits in name order", sortedNames);
  await t.waitFor(page, "a changed consent updates its row in place", (id) =>
    document.querySelector(`[data-call-id="${id}"] [data-consent]`)?.dataset.consent === "denied", changed);
  t.check(JSON.stringify(await rowIds(page)) === JSON.stringify(after), "no row moved for the change");

  // Keyboard: from the search, arrows move through the rows, Enter opens the dialog, Esc closes it.
  await blur(page);
  await page.keyboard.press("/");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  const rowFocused = await page.evaluate(() => document.activeElement.closest("tr")?.dataset.callId);
  t.check(rowFocused === after[1], "two arrows down focus the second row", rowFocused);
  await page.keyboard.press("ArrowUp");
  const upFocused = await page.evaluate(() => document.activeElement.closest("tr")?.dataset.callId);
  t.check(upFocused === after[0], "an arrow up goes back to the first row", upFocused);
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await t.waitFor(page, "Enter opens the purpose dialog", () => document.getElementById("purpose-dialog").open);
  const about = await page.$eval("#dialog-call", (el) => el.textContent);
  t.check(about.includes(sortedNames[1]), "the dialog names the focused row's agent", about);
  await page.keyboard.press("Escape");
  await t.waitFor(page, "Esc closes the dialog", () => !document.getElementById("purpose-dialog").open);
  const panels = await page.$$('[data-testid="listen-panel"]');
  t.check(panels.length === 0, "closing the dialog starts no listen", panels.length);

  // The sort is remembered.
  await page.reload();
  await waitRows(t, page, "the roster after a reload", started.length + 1);
  const sort = await page.$eval('[data-testid="roster-sort"]', (el) => el.value);
  t.check(sort === "agent", "the sort is remembered", sort);
  t.check(JSON.stringify(await rowIds(page)) === JSON.stringify(after), "the same order after a reload");
}

// Shared steps of the console scripts: rows, panels, a listen with a purpose.

export const row = (callId) => `[data-testid="call-row"][data-call-id="${callId}"]`;
export const panel = (callId) => `[data-testid="listen-panel"][data-call-id="${callId}"]`;

/** The call ids of the roster's rows in order; `visible` leaves out the filtered ones. */
export function rowIds(page, { visible = false } = {}) {
  const selector = visible ? '[data-testid="call-row"]:not([hidden])' : '[data-testid="call-row"]';
  return page.$$eval(selector, (rows) => rows.map((r) => r.dataset.callId));
}

/** Wait until the visible rows are exactly `ids`, in this order. */
export function waitVisible(t, page, what, ids) {
  return t.waitFor(page, what, (expected) => {
    const shown = [...document.querySelectorAll('[data-testid="call-row"]:not([hidden])')].map((r) => r.dataset.callId);
    return JSON.stringify(shown) === JSON.stringify(expected);
  }, ids);
}

/** Wait until the roster has `count` rows. */
export function waitRows(t, page, what, count) {
  return t.waitFor(page, what, (n) => document.querySelectorAll('[data-testid="call-row"]').length === n, count);
}

/** Wait until the panel of `callId` is in `state` ("listening", "interrupted", ...). */
export function waitPanel(t, page, what, callId, state) {
  return t.waitFor(page, what, ([id, wanted]) => {
    const el = document.querySelector(`[data-testid="listen-panel"][data-call-id="${id}"]`);
    return !!el && el.dataset.state === wanted;
  }, [callId, state]);
}

/** Listen to `callId` from its row: Listen, choose `purpose`, confirm, until listening. */
export async function listen(t, page, callId, purpose) {
  await page.click(`${row(callId)} [data-testid="listen-button"]`);
  await page.waitForSelector('[data-testid="purpose-select"]', { visible: true });
  await page.select('[data-testid="purpose-select"]', purpose);
  await page.click('[data-testid="purpose-confirm"]');
  await waitPanel(t, page, `listening to ${callId}`, callId, "listening");
}

/** Nothing has keyboard focus, so that page-wide keys ("/", Esc) reach the console. */
export function blur(page) {
  return page.evaluate(() => document.activeElement?.blur());
}

/** The panels' sessions as the page reports them (newest first). */
export function sessions(page) {
  return page.evaluate(() => window.liveConsole.sessions.map((s) => ({ ...s })));
}

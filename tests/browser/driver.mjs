// A small browser driver for live's end-to-end tests: launches Debian's firefox-esr (driven
// through WebDriver BiDi) or chromium (CDP) headless, with puppeteer-core, which downloads no
// browser; runs one test script against it, and prints one JSON line:
// {"ok": true, "checks": [...], "data": {...}} or {"ok": false, "error": "...", "checks": [...]}
// (exit 1).
//
//   node driver.mjs firefox|chromium SCRIPT.mjs '{"base": "http://127.0.0.1:8080", ...}'
//
// A script exports `default async function (t)` with t = {browser, args, data, newPage, check,
// waitFor, noHorizontalScroll, step}; every check() it passes is reported by name, and what it
// puts in `t.data` comes back with the result.
//
// `await t.step(name, data)` hands over to the test between two browser actions (to end a
// call, restart the server): it prints {"step": name, "data": data} and waits for the line
// {"go": name, "data": ...} on stdin, whose data it returns.

import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const BROWSERS = {
  firefox: {
    browser: "firefox",
    protocol: "webDriverBiDi",
    executablePath: "/usr/bin/firefox-esr",
    extraPrefsFirefox: {
      // Audio plays without a user gesture; host ICE candidates are plain addresses.
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
    },
  },
  chromium: {
    browser: "chrome",
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run", "--disable-quic"],
  },
};
const WAIT_MS = Number(process.env.LIVE_TEST_WAIT_MS || 20000);
/** How long a step may take the test (a server restart included). */
const STEP_MS = Number(process.env.LIVE_TEST_STEP_MS || 120000);

class CheckFailed extends Error {}

/** Lines from the test on stdin, read only once a script takes a step. */
class Steps {
  constructor() {
    this.lines = null;
    this.waiting = null;
    this.queue = [];
  }

  _open() {
    if (this.lines) return;
    this.lines = readline.createInterface({ input: process.stdin });
    this.lines.on("line", (line) => {
      this.queue.push(line);
      this.waiting?.();
    });
  }

  async take(name, data) {
    this._open();
    process.stdout.write(`${JSON.stringify({ step: name, data: data ?? null })}\n`);
    const deadline = Date.now() + STEP_MS;
    for (;;) {
      const line = this.queue.shift();
      if (line !== undefined) {
        const message = JSON.parse(line);
        if (message.go !== name) throw new CheckFailed(`step ${name}: the test answered ${JSON.stringify(message)}`);
        return message.data ?? null;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new CheckFailed(`step ${name}: no answer from the test within ${STEP_MS} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
  }

  close() {
    if (!this.lines) return;
    this.lines.close();
    process.stdin.destroy();
  }
}

function harness(browser, args, checks, steps) {
  const pages = [];
  const t = {
    browser,
    args,
    data: {},
    /** Hand over to the test (see the top of this file); returns the data it answers. */
    async step(name, data) {
      const answer = await steps.take(name, data);
      checks.push(`step ${name}`);
      return answer;
    },
    /** A new page of `width` × `height` CSS pixels. */
    async newPage({ width = 1280, height = 900 } = {}) {
      const page = await browser.newPage();
      await page.setViewport({ width, height });
      page.setDefaultTimeout(WAIT_MS);
      pages.push(page);
      return page;
    },
    /** Record a passed check, or fail the script with `what`. */
    check(condition, what, detail) {
      if (!condition) throw new CheckFailed(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
      checks.push(what);
    },
    /** Wait until `fn(arg)` is truthy in the page (fails loudly, naming `what`). */
    async waitFor(page, what, fn, arg) {
      try {
        const handle = await page.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 }, arg);
        const value = await handle.jsonValue().catch(() => true);
        await handle.dispose();
        checks.push(what);
        return value;
      } catch (error) {
        throw new CheckFailed(`timed out waiting for: ${what} (${error.message.split("\n")[0]})`);
      }
    },
    /** The widths that overflow the viewport: the document and every scrolling box. */
    async horizontalOverflow(page) {
      return page.evaluate(() => {
        const doc = document.documentElement;
        const out = [];
        if (doc.scrollWidth > doc.clientWidth) out.push(`document ${doc.scrollWidth} > ${doc.clientWidth}`);
        for (const el of document.querySelectorAll("body *")) {
          if (el.offsetParent === null && getComputedStyle(el).position !== "fixed") continue;
          if (el.scrollWidth > el.clientWidth + 1 && ["auto", "scroll"].includes(getComputedStyle(el).overflowX)) {
            out.push(`${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
          }
        }
        return out;
      });
    },
    async noHorizontalScroll(page, what) {
      const overflow = await t.horizontalOverflow(page);
      t.check(overflow.length === 0, what, overflow);
    },
    async closeAll() {
      await Promise.all(pages.map((page) => page.close().catch(() => {})));
    },
  };
  return t;
}

async function main() {
  const [name, script, rawArgs = "{}"] = process.argv.slice(2);
  if (!BROWSERS[name] || !script) {
    throw new Error(`usage: node driver.mjs ${Object.keys(BROWSERS).join("|")} SCRIPT.mjs [JSON-ARGS]`);
  }
  const args = JSON.parse(rawArgs);
  const checks = [];
  const browser = await puppeteer.launch({ headless: true, ...BROWSERS[name] });
  let failure = null;
  const steps = new Steps();
  const t = harness(browser, args, checks, steps);
  try {
    const module = await import(pathToFileURL(path.resolve(script)).href);
    await module.default(t);
  } catch (error) {
    failure = error instanceof CheckFailed ? error.message : (error && error.stack) || String(error);
  } finally {
    steps.close();
    await t.closeAll();
    await browser.close().catch(() => {});
  }
  process.stdout.write(`${JSON.stringify({ ok: failure === null, error: failure, checks, data: t.data })}\n`);
  process.exitCode = failure === null ? 0 : 1;
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error && error.stack ? error.stack : error), checks: [] })}\n`);
  process.exitCode = 1;
});

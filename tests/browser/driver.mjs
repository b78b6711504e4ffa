// A small browser driver for live's end-to-end tests: launches Debian's firefox-esr (driven
// through WebDriver BiDi) or chromium (CDP) headless, with puppeteer-core, which downloads no
// browser; runs one test script against it, and prints one JSON line:
// {"ok": true, "checks": [...]} or {"ok": false, "error": "...", "checks": [...]} (exit 1).
//
//   node driver.mjs firefox|chromium SCRIPT.mjs '{"base": "http://127.0.0.1:8080", ...}'
//
// A script exports `default async function (t)` with t = {browser, args, newPage, check,
// waitFor, noHorizontalScroll}; every check() it passes is reported by name.

import path from "node:path";
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

class CheckFailed extends Error {}

function harness(browser, args, checks) {
  const pages = [];
  const t = {
    browser,
    args,
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
  const t = harness(browser, args, checks);
  try {
    const module = await import(pathToFileURL(path.resolve(script)).href);
    await module.default(t);
  } catch (error) {
    failure = error instanceof CheckFailed ? error.message : (error && error.stack) || String(error);
  } finally {
    await t.closeAll();
    await browser.close().catch(() => {});
  }
  process.stdout.write(`${JSON.stringify({ ok: failure === null, error: failure, checks })}\n`);
  process.exitCode = failure === null ? 0 : 1;
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error && error.stack ? error.stack : error), checks: [] })}\n`);
  process.exitCode = 1;
});

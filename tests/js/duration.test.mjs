// The pages' duration formatter (web/shared/duration.js) under node. With LIVE_JS_DURATIONS
// naming a file written by tests/integration/test_duration_rule_js.py, it must give what the
// server's live/l10n/durations.py gives for every case there. Run: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { clock, clockSpan, spoken, wholeSeconds } from "../../web/shared/duration.js";

test("halves round up, never below zero", () => {
  assert.deepEqual([0.49, 0.5, 59.5, -3, NaN].map(wholeSeconds), [0, 1, 60, 0, 0]);
  assert.equal(clock(3725), "1:02:05");
  assert.equal(clockSpan(60, 300), "1:00–5:00");
  assert.equal(spoken(192, "de"), "3 Min. 12 Sek.");
});

test("the same as the server for every case it wrote", { skip: !process.env.LIVE_JS_DURATIONS }, () => {
  const cases = JSON.parse(readFileSync(process.env.LIVE_JS_DURATIONS, "utf8"));
  assert.ok(cases.length > 100);
  for (const c of cases) {
    assert.equal(clock(c.seconds), c.clock, `clock(${c.seconds})`);
    assert.equal(spoken(c.seconds, "en"), c.en, `spoken(${c.seconds}, en)`);
    assert.equal(spoken(c.seconds, "de"), c.de, `spoken(${c.seconds}, de)`);
  }
});

// The agent page's verifier (web/agent/verify.js) under node: RFC 6962 consistency vectors
// from transparency-dev, and, when LIVE_JS_VECTORS names a file written by
// tests/integration/test_agent_verify_js.py, notes and proofs made by the Python ledger code.
// Run: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { VerifyError, b64decode, fromHex, verifyCheckpoint, verifyConsistency } from "../../web/agent/verify.js";

const rfc = JSON.parse(readFileSync(new URL("../data/rfc6962_vectors.json", import.meta.url), "utf8"));
const root = (size) => fromHex(rfc.roots[size - 1]);

async function rejects(promise, problem) {
  await assert.rejects(promise, (error) => error instanceof VerifyError && error.problem === problem);
}

test("RFC 6962 consistency proofs verify", async () => {
  for (const v of rfc.consistency_proofs) {
    await verifyConsistency(v.old_size, v.new_size, root(v.old_size), root(v.new_size), v.proof.map(fromHex));
  }
});

test("a consistency proof fails with a changed hash, root or length", async () => {
  for (const v of rfc.consistency_proofs.filter((v) => v.proof.length > 0)) {
    const proof = v.proof.map(fromHex);
    for (let i = 0; i < proof.length; i += 1) {
      const bad = proof.map((h) => h.slice());
      bad[i][0] ^= 1;
      await rejects(verifyConsistency(v.old_size, v.new_size, root(v.old_size), root(v.new_size), bad), "inconsistent");
    }
    await rejects(verifyConsistency(v.old_size, v.new_size, root(v.new_size), root(v.new_size), proof), "inconsistent");
    await rejects(verifyConsistency(v.old_size, v.new_size, root(v.old_size), root(v.old_size), proof), "inconsistent");
    await rejects(verifyConsistency(v.old_size, v.new_size, root(v.old_size), root(v.new_size), proof.slice(1)), "inconsistent");
  }
  await rejects(verifyConsistency(3, 2, root(3), root(2), []), "inconsistent");
  await rejects(verifyConsistency(2, 2, root(2), root(3), []), "inconsistent");
});

const file = process.env.LIVE_JS_VECTORS;

test("notes and proofs from the Python ledger code", { skip: !file && "LIVE_JS_VECTORS not set" }, async () => {
  const py = JSON.parse(readFileSync(file, "utf8"));
  const cp = await verifyCheckpoint(py.note, py.verifier_key);
  assert.deepEqual([cp.origin, cp.size, Buffer.from(cp.root).toString("base64")], [py.origin, py.size, py.root]);
  await rejects(verifyCheckpoint(py.note, py.other_key), "bad_signature");
  await rejects(verifyCheckpoint(py.forged_note, py.verifier_key), "bad_signature");
  await rejects(verifyCheckpoint(py.note.replace(`\n${py.size}\n`, `\n${py.size + 1}\n`), py.verifier_key), "bad_signature");
  // A cosigned note (another key's line too) still verifies by our key.
  assert.equal((await verifyCheckpoint(py.cosigned_note, py.verifier_key)).size, py.size);
  for (const p of py.proofs) {
    const args = [p.old_size, p.new_size, b64decode(p.old_root), b64decode(p.new_root), p.hashes.map(b64decode)];
    if (p.ok) await verifyConsistency(...args);
    else await rejects(verifyConsistency(...args), "inconsistent");
  }
});

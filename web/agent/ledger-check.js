// The agent page's own check of the monitoring ledger (ARCHITECTURE.md decision 10).
//
// The page keeps, in localStorage and per agent, the newest signed checkpoint it has
// verified ({origin, size, root, key, note}) and pins the verifier key it first saw. On every
// visit it fetches the current checkpoint (GET /api/audit/checkpoint), verifies its Ed25519
// signature with the pinned key, and asks for an RFC 9162 consistency proof from the kept
// size (GET /api/audit/proof/consistency) that it verifies itself (./verify.js). Only a
// checkpoint that passes replaces the kept one. Anything else is a failure: shown on the
// page, and reported to auditors once per problem with the kept checkpoint (POST /api/audit/inconsistency).
// A network error is not a failure: the check runs again on the next visit.

import { VerifyError, b64decode, b64encode, verifyCheckpoint, verifyConsistency } from "./verify.js";

const PREFIX = "live.checkpoint.";

function load(storage, key) {
  try {
    const value = JSON.parse(storage.getItem(key) || "null");
    return value && typeof value.note === "string" && typeof value.key === "string" ? value : null;
  } catch {
    return null;
  }
}

function save(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the next visit starts afresh */
  }
}

/**
 * Run the check. `get(path)` and `post(path, body)` are the page's JSON helpers (throwing on
 * network or HTTP errors). Resolves to `{state, size, problem, kept, served, reported}` where
 * state is "first" (nothing kept before), "ok", "failed", "unavailable" or "unsupported".
 */
export async function checkLedger({ agentId, get, post, storage = window.localStorage }) {
  const key = `${PREFIX}${agentId}`;
  const kept = load(storage, key);
  let served;
  try {
    served = await get("/api/audit/checkpoint");
  } catch {
    return { state: "unavailable" };
  }
  const result = { kept: kept ? kept.size : null, served: null };
  try {
    const pinned = kept ? kept.key : served.verifier_key;
    if (served.verifier_key !== pinned) throw new VerifyError("key_changed", "the verifier key changed");
    const cp = await verifyCheckpoint(served.checkpoint, pinned);
    result.served = cp.size;
    if (kept) {
      if (cp.origin !== kept.origin) throw new VerifyError("origin_changed", "another log");
      if (cp.size < kept.size) throw new VerifyError("shrunk", "the log is smaller");
      let proof;
      try {
        proof = await get(`/api/audit/proof/consistency?from=${kept.size}&to=${cp.size}`);
      } catch {
        return { state: "unavailable" };
      }
      if (proof.old_size !== kept.size || proof.new_size !== cp.size || !Array.isArray(proof.hashes)) {
        throw new VerifyError("inconsistent", "the proof is for other sizes");
      }
      await verifyConsistency(kept.size, cp.size, b64decode(kept.root), cp.root, proof.hashes.map(b64decode));
    }
    save(storage, key, { origin: cp.origin, size: cp.size, root: b64encode(cp.root), key: pinned, note: served.checkpoint });
    return { ...result, state: kept ? "ok" : "first", size: cp.size };
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    if (error.problem === "unsupported") return { state: "unsupported" };
    /** @type {{state: string, problem: string, detail: string, reported?: boolean}} */
    const failure = { ...result, state: "failed", problem: error.problem, detail: error.message };
    failure.reported = await report(storage, key, post, error.problem, kept, served.checkpoint);
    return failure;
  }
}

async function report(storage, key, post, problem, kept, served) {
  const marker = `${key}.reported`;
  // Once per problem with the kept checkpoint: the report itself grows the log, so what is
  // served changes on every visit while the finding stays the same.
  const pair = `${problem}\n${kept ? kept.note : served}`;
  if (storage.getItem(marker) === pair) return true;
  try {
    await post("/api/audit/inconsistency", { problem, kept: kept ? kept.note : null, served });
  } catch {
    return false;
  }
  try {
    storage.setItem(marker, pair);
  } catch {
    /* reported again next visit */
  }
  return true;
}

// Checking the ledger in the browser: C2SP signed-note checkpoints signed with Ed25519 and
// RFC 9162 consistency proofs, with WebCrypto only (no library). A port of
// live/audit/checkpoint.py (verify_note) and live/audit/merkle.py (verify_consistency);
// pure functions over bytes and strings, also run by node (tests/js/verify.test.mjs).
//
// Every failure throws a VerifyError whose `problem` is what the page reports to auditors:
// "bad_signature" (note or key malformed, or not signed by the key) or "inconsistent"
// (the proof does not link the two trees).

const ED25519_TYPE = 0x01;
const SIG_PREFIX = "\u2014 "; // em dash, space (c2sp.org/signed-note "Format")
const HASH_SIZE = 32;
const EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export class VerifyError extends Error {
  constructor(problem, message) {
    super(message);
    this.name = "VerifyError";
    this.problem = problem;
  }
}

const subtle = () => globalThis.crypto.subtle;

export function b64decode(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new VerifyError("bad_signature", `not base64: ${String(text).slice(0, 40)}`);
  }
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function b64encode(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

export function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {string} text */
export function fromHex(text) {
  return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

// ------------------------------------------------------------------ keys and signed notes

/** Key ID of an Ed25519 note key: SHA-256(name || 0x0A || 0x01 || key)[:4] (signed-note). */
export async function keyId(name, publicKey) {
  const digest = await sha256(concat(new TextEncoder().encode(name), Uint8Array.of(0x0a, ED25519_TYPE), publicKey));
  return digest.slice(0, 4);
}

/** Parse `<name>+<8 hex key ID>+<base64(0x01 || 32-byte key)>` and check its key ID. */
export async function parseVerifierKey(text) {
  const match = /^([^+\s]+)\+([0-9a-fA-F]{8})\+(\S+)$/.exec(String(text));
  if (!match) throw new VerifyError("bad_signature", "the verifier key is malformed");
  const [, name, idHex, blobText] = match;
  const blob = b64decode(blobText);
  if (blob.length !== 33 || blob[0] !== ED25519_TYPE) {
    throw new VerifyError("bad_signature", "the verifier key is not an Ed25519 key");
  }
  const publicKey = blob.slice(1);
  const id = await keyId(name, publicKey);
  if (hex(id) !== idHex.toLowerCase()) throw new VerifyError("bad_signature", "the verifier key has the wrong key ID");
  return { name, keyId: id, publicKey };
}

/** Split a signed note into its text (with the final newline) and signature lines. */
export function parseNote(note) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("bad_signature", "the note has no signature block");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new VerifyError("bad_signature", "the note's signature block is malformed");
  const signatures = block
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith(SIG_PREFIX)) throw new VerifyError("bad_signature", "a signature line is malformed");
      const [name, blobText, ...rest] = line.slice(SIG_PREFIX.length).split(" ");
      if (!name || !blobText || rest.length) throw new VerifyError("bad_signature", "a signature line is malformed");
      const blob = b64decode(blobText);
      if (blob.length < 5) throw new VerifyError("bad_signature", "a signature is too short");
      return { name, keyId: blob.slice(0, 4), signature: blob.slice(4) };
    });
  return { text, signatures };
}

/** Parse checkpoint note text: origin, decimal size, base64 root, extension lines. */
export function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  if (!text.endsWith("\n") || lines.length < 3 || lines.includes("")) {
    throw new VerifyError("bad_signature", "the checkpoint text is malformed");
  }
  const [origin, sizeText, rootText] = lines;
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) throw new VerifyError("bad_signature", "the tree size is malformed");
  const size = BigInt(sizeText);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new VerifyError("bad_signature", "the tree size is too large here");
  const root = b64decode(rootText);
  if (root.length !== HASH_SIZE) throw new VerifyError("bad_signature", "the root hash is not 32 bytes");
  return { origin, size: Number(size), root };
}

/**
 * Verify a signed checkpoint note against a verifier key string; return
 * `{origin, size, root}`. Like verify_note in live/audit/checkpoint.py: the note must carry
 * a signature by this key (name and key ID), and every such signature must verify.
 */
export async function verifyCheckpoint(note, verifierKey) {
  const key = await parseVerifierKey(verifierKey);
  const { text, signatures } = parseNote(String(note));
  const ours = signatures.filter((s) => s.name === key.name && equal(s.keyId, key.keyId));
  if (ours.length === 0) throw new VerifyError("bad_signature", "the checkpoint is not signed by the log's key");
  let cryptoKey;
  try {
    cryptoKey = await subtle().importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    throw new VerifyError("unsupported", `this browser cannot check Ed25519 signatures (${error.name})`);
  }
  const message = new TextEncoder().encode(text);
  for (const s of ours) {
    if (!(await subtle().verify({ name: "Ed25519" }, cryptoKey, s.signature, message))) {
      throw new VerifyError("bad_signature", "the checkpoint's signature does not verify");
    }
  }
  return parseCheckpoint(text);
}

// ------------------------------------------------------------------ RFC 9162 consistency

async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(0x01), left, right));
}

function bitCount(n) {
  let count = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) count += x % 2;
  return count;
}

// Sizes are below 2**53; JavaScript's bitwise operators are 32-bit, so shift by division.
const shr = (n) => Math.floor(n / 2);
const odd = (n) => n % 2 === 1;

function inclusionPathLength(index, last) {
  let inner = 0;
  for (let a = index, b = last; a !== b; a = shr(a), b = shr(b)) inner += 1;
  let above = index;
  for (let i = 0; i < inner; i += 1) above = shr(above);
  return inner + bitCount(above);
}

/**
 * Check that the tree (newSize, newRoot) extends (oldSize, oldRoot), given the proof hashes
 * (Uint8Array each). RFC 9162 §2.1.4.2, with the edge cases decided as verify_consistency
 * decides them. Throws VerifyError("inconsistent") on any mismatch.
 */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const fail = (message) => {
    throw new VerifyError("inconsistent", message);
  };
  for (const h of [oldRoot, newRoot, ...proof]) if (h.length !== HASH_SIZE) fail("a hash is not 32 bytes");
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && 0 <= oldSize && oldSize <= newSize)) {
    fail(`old tree size ${oldSize} must be between 0 and the new tree size ${newSize}`);
  }
  if (oldSize === newSize || oldSize === 0) {
    if (proof.length) fail(`a proof from size ${oldSize} to ${newSize} must be empty`);
    const expectedOld = oldSize === 0 ? fromHex(EMPTY_ROOT_HEX) : newRoot;
    if (!equal(oldRoot, expectedOld)) fail(`the old root is not the root of the tree of size ${oldSize}`);
    if (newSize === 0 && !equal(newRoot, fromHex(EMPTY_ROOT_HEX))) fail("the new root is not the empty tree's");
    return;
  }
  // 0 < oldSize < newSize: the proof is the old tree's rightmost perfect subtree (left out
  // when the old tree is perfect) and an inclusion path for it.
  let shift = 0;
  while (!odd(Math.floor(oldSize / 2 ** shift))) shift += 1;
  const oldIsPerfect = oldSize === 2 ** shift;
  const want =
    (oldIsPerfect ? 0 : 1) + inclusionPathLength(Math.floor((oldSize - 1) / 2 ** shift), Math.floor((newSize - 1) / 2 ** shift));
  if (proof.length !== want) fail(`a proof from size ${oldSize} to ${newSize} needs ${want} hashes, got ${proof.length}`);
  // Step 2.
  const path = oldIsPerfect ? [oldRoot, ...proof] : [...proof];
  // Steps 3-4.
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = shr(fn);
    sn = shr(sn);
  }
  // Step 5.
  let fr = path[0];
  let sr = path[0];
  // Step 6.
  for (const c of path.slice(1)) {
    if (sn === 0) fail("the proof is longer than the path to the root");
    if (odd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!odd(fn)) {
        while (fn !== 0 && !odd(fn)) {
          fn = shr(fn);
          sn = shr(sn);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = shr(fn);
    sn = shr(sn);
  }
  // Step 7.
  if (sn !== 0) fail("the proof is shorter than the path to the root");
  if (!equal(fr, oldRoot)) fail(`the proof from size ${oldSize} to ${newSize} does not give the old root`);
  if (!equal(sr, newRoot)) fail(`the proof from size ${oldSize} to ${newSize} does not give the new root`);
}

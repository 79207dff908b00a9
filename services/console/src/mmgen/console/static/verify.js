// Verification of the audit log in the browser, trusting nothing the console server says:
// an entry is "verified" only when its canonical bytes (RFC 8785) chain to its own hash, its
// leaf hash is proven by an RFC 9162 inclusion proof against a tree head, and that head is a
// C2SP signed note signed by the pinned log key (and cosigned by a quorum of pinned witness
// keys). Byte formats: libs/auditlog (entry.py, merkle.py, checkpoint.py, cosignature.py).

const enc = new TextEncoder();

export class VerificationError extends Error {}

function fail(reason) {
  throw new VerificationError(reason);
}

// --- bytes -----------------------------------------------------------------------------------

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) fail(`not lowercase hex: ${hex}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function b64ToBytes(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail("invalid base64");
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
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
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// --- entries ---------------------------------------------------------------------------------

// RFC 8785 for the values an audit entry holds (strings, integers, null, arrays, objects):
// members sorted by UTF-16 code units, strings and numbers as ECMAScript serialises them.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail("a number that JSON cannot hold");
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  fail(`a value JSON cannot hold: ${typeof value}`);
}

export function entryBytes(entry) {
  const { hash: _ignored, ...rest } = entry;
  return enc.encode(canonicalJson(rest));
}

export async function leafHash(bytes) {
  return sha256(concat(Uint8Array.of(0), bytes));
}

async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

// hash = SHA-256(prev_hash || entry_bytes)
export async function chainHash(entry) {
  return sha256(concat(hexToBytes(entry.prev_hash), entryBytes(entry)));
}

// RFC 9162, 2.1.3.2: the root an inclusion proof leads to from a leaf hash.
export async function rootFromInclusionProof(index, size, leaf, proof) {
  if (!(index < size)) fail(`leaf ${index} is outside a tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) fail("the inclusion proof is longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("the inclusion proof is shorter than the tree needs");
  return r;
}

// --- keys and signed notes -------------------------------------------------------------------

async function keyId(name, alg, publicKey) {
  return (await sha256(concat(enc.encode(name), Uint8Array.of(0x0a, alg), publicKey))).slice(0, 4);
}

// `<name>+<hex key id>+base64(alg || public key)`; alg 0x01 (note key) or 0x04 (cosigner).
export async function parseVerifierKey(vkey, wanted) {
  const parts = vkey.trim().split("+");
  if (parts.length < 3) fail(`not a verifier key: ${vkey}`);
  const [name, hexId] = parts;
  const raw = b64ToBytes(parts.slice(2).join("+"));
  if (raw.length !== 33 || !wanted.includes(raw[0])) fail(`not an Ed25519 key of the right kind: ${name}`);
  const publicKey = raw.slice(1);
  if (!equal(await keyId(name, raw[0], publicKey), hexToBytes(hexId))) fail(`key id does not match the key: ${name}`);
  // A witness's note key (0x01) stands for its cosigning key (0x04), as the Go reference does.
  const alg = wanted.includes(0x04) ? 0x04 : 0x01;
  const id = await keyId(name, alg, publicKey);
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return { name, id, key, text: vkey.trim() };
}

export function parseNote(note) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("the signed head has no signature block");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) fail("the signed head's signature lines do not end in a newline");
  const signatures = block.slice(0, -1).split("\n").map((line) => {
    if (!line.startsWith("\u2014 ")) fail("a signature line does not start with an em dash");
    const [name, b64] = line.slice(2).split(" ");
    const raw = b64ToBytes(b64 || "");
    if (raw.length < 5) fail("a signature is too short");
    return { name, id: raw.slice(0, 4), signature: raw.slice(4) };
  });
  return { text, signatures };
}

function parseCheckpointText(text) {
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) fail("the signed head lacks origin, size or root");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail("the signed head's size is not a decimal");
  const root = b64ToBytes(rootText);
  if (root.length !== 32) fail("the signed head's root is not 32 bytes");
  return { origin, size: Number(sizeText), root, extensions };
}

async function ed25519(key, signature, message) {
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

// The log's signature under the pinned key; every pinned witness's cosignature line must
// verify; at least `quorum` distinct pinned witnesses must have cosigned.
export async function openCheckpoint(note, logKeyText, witnessKeyTexts, quorum) {
  if (!logKeyText) fail("no audit-log key is pinned in the console's settings");
  const logKey = await parseVerifierKey(logKeyText, [0x01]);
  const witnesses = await Promise.all(witnessKeyTexts.map((k) => parseVerifierKey(k, [0x01, 0x04])));
  const { text, signatures } = parseNote(note);
  const message = enc.encode(text);
  let logSigned = false;
  const cosigned = new Set();
  for (const sig of signatures) {
    if (sig.name === logKey.name && equal(sig.id, logKey.id)) {
      if (!(await ed25519(logKey.key, sig.signature, message))) fail("the signed head's signature does not verify under the pinned log key");
      logSigned = true;
      continue;
    }
    const witness = witnesses.find((w) => w.name === sig.name && equal(w.id, sig.id));
    if (!witness) continue;
    if (sig.signature.length !== 72) fail(`the cosignature of ${witness.name} has the wrong size`);
    let timestamp = 0n;
    for (const b of sig.signature.slice(0, 8)) timestamp = (timestamp << 8n) | BigInt(b);
    const signed = concat(enc.encode(`cosignature/v1\ntime ${timestamp}\n`), message);
    if (!(await ed25519(witness.key, sig.signature.slice(8), signed))) fail(`the cosignature of witness ${witness.name} does not verify`);
    cosigned.add(witness.name);
  }
  if (!logSigned) fail("the signed head carries no signature of the pinned log key");
  const checkpoint = parseCheckpointText(text);
  if (checkpoint.origin !== logKey.name) fail(`the signed head is of another log (${checkpoint.origin})`);
  if (cosigned.size < quorum) fail(`the signed head has ${cosigned.size} witness cosignature(s), ${quorum} required`);
  return { ...checkpoint, witnesses: [...cosigned] };
}

// --- the whole check -------------------------------------------------------------------------

// `fetchJson(path)` reads from the console; nothing it returns is believed unchecked.
export async function verifyEntry(entry, config, fetchJson, steps = () => {}) {
  const bytes = entryBytes(entry);
  const chained = await chainHash(entry);
  if (bytesToHex(chained) !== entry.hash) fail("the entry's contents do not match its hash (hash chain broken: the entry was changed after it was logged)");
  steps("the entry's hash matches its canonical bytes");
  const head = await fetchJson("/api/audit/checkpoints/latest");
  const checkpoint = await openCheckpoint(head.note, config.audit_log_key, config.witness_keys, config.witness_quorum);
  steps(`signed head of ${checkpoint.size} entries verified with the pinned log key` +
        (checkpoint.witnesses.length ? ` and cosigned by ${checkpoint.witnesses.join(", ")}` : ""));
  if (!(entry.seq < checkpoint.size)) fail(`no signed head covers entry ${entry.seq} yet (latest covers ${checkpoint.size}): try again in a few seconds`);
  const proof = await fetchJson(`/api/audit/proofs/inclusion?seq=${entry.seq}&tree_size=${checkpoint.size}`);
  if (proof.leaf_index !== entry.seq || proof.tree_size !== checkpoint.size) fail("the inclusion proof is for another leaf or tree size");
  const root = await rootFromInclusionProof(entry.seq, checkpoint.size, await leafHash(bytes), proof.hashes.map(hexToBytes));
  if (!equal(root, checkpoint.root)) fail("the entry is not in the signed tree: its inclusion proof leads to another root than the signed head's");
  steps(`inclusion proof of ${proof.hashes.length} hashes leads to the signed root`);
  return checkpoint;
}

// --- erasure receipts ------------------------------------------------------------------------

function b64urlToBytes(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) fail("the receipt is not base64url");
  const std = text.replaceAll("-", "+").replaceAll("_", "/");
  return b64ToBytes(std + "=".repeat((4 - (std.length % 4)) % 4));
}

// A receipt (JWS compact, EdDSA, retention's key from its JWKS) holds the log's signed head and,
// per service, the audit seq of that service's SubjectErased of the subject. Verified: the
// signature, the head with the pinned keys, and every seq by its inclusion proof against the
// head, its entry being that service's SubjectErased of that subject.
export async function verifyReceipt(jws, jwks, config, fetchJson, steps = () => {}) {
  const parts = jws.trim().split(".");
  if (parts.length !== 3) fail("the receipt is not a JWS compact serialization");
  const header = JSON.parse(new TextDecoder().decode(b64urlToBytes(parts[0])));
  if (header.alg !== "EdDSA") fail(`the receipt's algorithm is ${header.alg}, not EdDSA`);
  const jwk = (jwks.keys || []).find((k) => k.kid === header.kid && k.kty === "OKP" && k.crv === "Ed25519");
  if (!jwk) fail(`retention publishes no key ${header.kid}`);
  const key = await crypto.subtle.importKey("raw", b64urlToBytes(jwk.x), { name: "Ed25519" }, false, ["verify"]);
  if (!(await ed25519(key, b64urlToBytes(parts[2]), enc.encode(`${parts[0]}.${parts[1]}`)))) fail("the receipt's signature does not verify under retention's key");
  const payload = JSON.parse(new TextDecoder().decode(b64urlToBytes(parts[1])));
  steps(`receipt signed by retention's key ${header.kid}`);
  const head = await openCheckpoint(payload.checkpoint.note, config.audit_log_key, config.witness_keys, config.witness_quorum);
  if (head.size !== payload.checkpoint.tree_size || bytesToHex(head.root) !== payload.checkpoint.root_hash) fail("the receipt's head does not match its signed note");
  steps(`its signed head of ${head.size} entries verified with the pinned log key` +
        (head.witnesses.length ? ` and cosigned by ${head.witnesses.join(", ")}` : ""));
  for (const service of payload.services) {
    const entry = await fetchJson(`/api/audit/entries/${service.audit_seq}`);
    if (entry.seq !== service.audit_seq) fail(`the log gave another entry for seq ${service.audit_seq}`);
    if (bytesToHex(await chainHash(entry)) !== entry.hash) fail(`entry ${entry.seq} does not match its hash`);
    if (entry.event_type !== `${service.service}.SubjectErased` || entry.subject_id !== payload.subject_id) {
      fail(`entry ${entry.seq} is not ${service.service}'s erasure of this subject`);
    }
    if (!(entry.seq < head.size)) fail(`entry ${entry.seq} is not covered by the receipt's head`);
    const proof = await fetchJson(`/api/audit/proofs/inclusion?seq=${entry.seq}&tree_size=${head.size}`);
    const root = await rootFromInclusionProof(entry.seq, head.size, await leafHash(entryBytes(entry)), proof.hashes.map(hexToBytes));
    if (!equal(root, head.root)) fail(`${service.service}'s erasure (entry ${entry.seq}) is not in the receipt's signed tree`);
    steps(`${service.service}: erasure at entry ${entry.seq} proven in the signed tree`);
  }
  return payload;
}

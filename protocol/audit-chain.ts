// The tamper-evident audit chain: how a record is hashed, signed and
// verified. The server writes it; `sshca audit verify` checks it offline.
import { compactVerify, importJWK, type CryptoKey, type KeyObject } from 'jose';
import { GENESIS_HASH, canonicalJson, recordHash } from './audit-hash.js';

/** A record as stored and exported. */
export interface ChainedRecord {
  readonly seq: number;
  readonly at: string;
  readonly kind: string;
  /** The record's fields; what the hash covers. */
  readonly data: Readonly<Record<string, unknown>>;
  readonly prevHash: string;
  readonly hash: string;
  /**
   * Compact JWS (EdDSA or ES256) over `{ seq, hash }`. Writes are committed
   * in batches and only a batch's last record carries one: it covers every
   * record before it through the hash links. Absent on the others.
   */
  readonly checkpoint?: string;
}

export { GENESIS_HASH, canonicalJson, recordHash } from './audit-hash.js';

/** The signed statement a checkpoint makes. */
export function checkpointPayload(seq: number, hash: string): string {
  return canonicalJson({ seq, hash });
}

/** Why a chain does not verify, naming the first bad record. */
export interface ChainFailure {
  readonly seq: number;
  /**
   * `truncated`: the chain ends before a head published as an anchor
   * (audit-anchor.ts); `anchor`: an anchor disagrees with the chain or does
   * not verify.
   */
  readonly reason: 'sequence' | 'previous-hash' | 'hash' | 'checkpoint' | 'head' | 'truncated' | 'anchor';
  readonly message: string;
}

export type VerifyKey = CryptoKey | KeyObject | Uint8Array;

/**
 * Verifies records in order: consecutive sequence numbers from `firstSeq`,
 * each linked to the previous hash, each hash recomputed, each checkpoint
 * present signed by `key`, and every record covered by a checkpoint at or
 * after it. An edited record fails its hash (or, with every later hash
 * recomputed, the next checkpoint); a deleted, inserted or reordered one
 * breaks the sequence or the link; a forged one cannot be signed; checkpoints
 * stripped from the newest records leave them uncovered. `tailCovered`: a
 * signed head (an export's) vouches for the last record, so the records
 * after the last checkpoint need no checkpoint of their own. Returns the
 * number verified, or the first failure.
 */
export async function verifyChain(
  records: Iterable<ChainedRecord> | AsyncIterable<ChainedRecord>,
  key: VerifyKey,
  options: { firstSeq?: number; firstPrevHash?: string; tailCovered?: boolean } = {},
): Promise<{ ok: true; count: number; lastSeq: number; lastHash: string } | { ok: false; failure: ChainFailure }> {
  let expectedSeq = options.firstSeq ?? 1;
  let prevHash = options.firstPrevHash ?? GENESIS_HASH;
  let count = 0;
  /** The first record not yet covered by a checkpoint. */
  let uncovered: number | undefined;
  for await (const r of records) {
    const fail = (reason: ChainFailure['reason'], message: string) => ({ ok: false as const, failure: { seq: r.seq, reason, message } });
    if (r.seq !== expectedSeq) return fail('sequence', `record ${r.seq} found where ${expectedSeq} was expected (deleted, inserted or reordered records)`);
    if (r.prevHash !== prevHash) return fail('previous-hash', `record ${r.seq} does not link to record ${r.seq - 1}`);
    if (recordHash(r.prevHash, r.seq, r.at, r.kind, r.data) !== r.hash) return fail('hash', `record ${r.seq} was modified after it was written`);
    if (r.checkpoint === undefined) {
      uncovered ??= r.seq;
    } else {
      try {
        const { payload } = await compactVerify(r.checkpoint, key, { algorithms: CHECKPOINT_ALGORITHMS });
        if (new TextDecoder().decode(payload) !== checkpointPayload(r.seq, r.hash)) return fail('checkpoint', `record ${r.seq}'s checkpoint signs something else`);
      } catch {
        return fail('checkpoint', `record ${r.seq}'s checkpoint does not verify with the checkpoint key`);
      }
      uncovered = undefined;
    }
    prevHash = r.hash;
    expectedSeq++;
    count++;
  }
  if (uncovered !== undefined && !options.tailCovered) {
    return { ok: false, failure: { seq: uncovered, reason: 'checkpoint', message: `records ${uncovered}–${expectedSeq - 1} are covered by no checkpoint (checkpoints removed, or the chain cut short)` } };
  }
  return { ok: true, count, lastSeq: expectedSeq - 1, lastHash: prevHash };
}

/**
 * What a checkpoint may be signed with: Ed25519 (a file key, or KMS) or
 * P-256 (KMS). jose also checks the JWS's algorithm against the key's type.
 */
const CHECKPOINT_ALGORITHMS = ['EdDSA', 'ES256'];

/** Imports the published checkpoint key (GET /v1/audit/checkpoint-key) for verifyChain: Ed25519 or P-256. */
export async function importCheckpointKey(jwk: Readonly<Record<string, unknown>>): Promise<VerifyKey> {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string') return (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA')) as VerifyKey;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string') return (await importJWK({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, 'ES256')) as VerifyKey;
  throw new Error('the checkpoint key must be an Ed25519 or P-256 JWK');
}

/** The signed statement that ends an export: the chain head as of `at`. */
export function headPayload(seq: number, hash: string, at: string): string {
  return canonicalJson({ head: { seq, hash, at } });
}

/**
 * One line of an NDJSON export. A partial export (`?since=`) opens with a
 * `start` line: the chain position its first record links to.
 */
export type ExportLine =
  | { type: 'start'; seq: number; prevHash: string; since: string }
  | ({ type: 'record' } & ChainedRecord)
  | { type: 'head'; seq: number; hash: string; at: string; checkpoint: string };

/** Whether `checkpoint` is `key`'s signature over the head statement (seq, hash, at): an export's head, or an anchor's. */
export async function verifyHeadCheckpoint(checkpoint: string, seq: number, hash: string, at: string, key: VerifyKey): Promise<boolean> {
  try {
    const { payload } = await compactVerify(checkpoint, key, { algorithms: CHECKPOINT_ALGORITHMS });
    return new TextDecoder().decode(payload) === headPayload(seq, hash, at);
  } catch {
    return false;
  }
}

/** A verified export: what it holds, and the hashes at the sequence numbers asked for (`hashesAt`) that it holds. */
export interface VerifiedExport {
  readonly ok: true;
  readonly count: number;
  readonly headAt: string;
  /** The first and last sequence numbers the export covers (lastSeq 0: no records). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly hashes: ReadonlyMap<number, string>;
  /** A partial export: the time it was asked to start at (its `start` line). */
  readonly since?: string;
}

/** The first non-empty line, and the lines after it. */
async function firstLine(lines: Iterable<string> | AsyncIterable<string>): Promise<{ first: string | undefined; skipped: number; rest: AsyncIterable<string> }> {
  const iterator = (Symbol.asyncIterator in lines ? lines[Symbol.asyncIterator]() : lines[Symbol.iterator]()) as AsyncIterator<string> | Iterator<string>;
  let skipped = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { first: undefined, skipped, rest: (async function* () {})() };
    if (next.value.trim() !== '') {
      return {
        first: next.value,
        skipped,
        rest: (async function* () {
          for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
        })(),
      };
    }
    skipped++;
  }
}

/**
 * Verifies an NDJSON export: every record (verifyChain), then the signed
 * head, which must name the last record. A file cut short loses its head or
 * disagrees with it.
 */
export async function verifyExport(
  lines: Iterable<string> | AsyncIterable<string>,
  key: VerifyKey,
  options: {
    // Collected while streaming, so anchors (audit-anchor.ts) can be checked
    // against an export without holding it in memory.
    hashesAt?: ReadonlySet<number>;
    /** Refuse a partial export (what a live server sends when asked for everything). */
    complete?: boolean;
  } = {},
): Promise<VerifiedExport | { ok: false; failure: ChainFailure }> {
  let head: Extract<ExportLine, { type: 'head' }> | undefined;
  let firstSeq: number | undefined;
  const hashes = new Map<number, string>();
  let opening;
  try {
    opening = await firstLine(lines);
  } catch (err) {
    return { ok: false, failure: { seq: 0, reason: 'sequence', message: (err as Error).message } };
  }
  let lineNo = opening.skipped;
  let start: Extract<ExportLine, { type: 'start' }> | undefined;
  try {
    const parsed = opening.first === undefined ? undefined : (JSON.parse(opening.first) as ExportLine);
    if (parsed?.type === 'start') {
      if (!Number.isSafeInteger(parsed.seq) || parsed.seq < 1 || typeof parsed.prevHash !== 'string') throw new Error('a malformed start line');
      start = parsed;
      lineNo++;
    }
  } catch (err) {
    return { ok: false, failure: { seq: 0, reason: 'sequence', message: `line ${lineNo + 1}: ${(err as Error).message}` } };
  }
  if (start && options.complete && start.seq !== 1) {
    return { ok: false, failure: { seq: start.seq, reason: 'sequence', message: `a partial export (from record ${start.seq}) where the whole record was asked for` } };
  }
  const body = start ? opening.rest : (async function* () {
    if (opening.first !== undefined) yield opening.first;
    yield* opening.rest;
  })();
  async function* records(): AsyncIterable<ChainedRecord> {
    for await (const line of body) {
      lineNo++;
      if (line.trim() === '') continue;
      if (head) throw new ChainError({ seq: head.seq, reason: 'head', message: `line ${lineNo}: data after the head` });
      const parsed = JSON.parse(line) as ExportLine;
      if (parsed.type === 'head') head = parsed;
      else if (parsed.type === 'record') {
        firstSeq ??= parsed.seq;
        if (options.hashesAt?.has(parsed.seq)) hashes.set(parsed.seq, parsed.hash);
        yield { seq: parsed.seq, at: parsed.at, kind: parsed.kind, data: parsed.data, prevHash: parsed.prevHash, hash: parsed.hash, ...(parsed.checkpoint !== undefined ? { checkpoint: parsed.checkpoint } : {}) };
      } else throw new ChainError({ seq: 0, reason: 'sequence', message: `line ${lineNo}: not a record` });
    }
  }
  let chain;
  try {
    // The head, checked below against the last record, covers the records after the last checkpoint.
    chain = await verifyChain(records(), key, { tailCovered: true, ...(start ? { firstSeq: start.seq, firstPrevHash: start.prevHash } : {}) });
  } catch (err) {
    if (err instanceof ChainError) return { ok: false, failure: err.failure };
    return { ok: false, failure: { seq: 0, reason: 'sequence', message: `line ${lineNo}: ${(err as Error).message}` } };
  }
  if (!chain.ok) return chain;
  if (!head) return { ok: false, failure: { seq: chain.lastSeq, reason: 'head', message: 'the export has no signed head (cut short?)' } };
  if (head.seq !== chain.lastSeq || head.hash !== chain.lastHash) return { ok: false, failure: { seq: head.seq, reason: 'head', message: `the head names record ${head.seq}, the export ends at ${chain.lastSeq}` } };
  if (!(await verifyHeadCheckpoint(head.checkpoint, head.seq, head.hash, head.at, key))) {
    return { ok: false, failure: { seq: head.seq, reason: 'head', message: 'the head signature does not verify with the checkpoint key' } };
  }
  return { ok: true, count: chain.count, headAt: head.at, firstSeq: firstSeq ?? chain.lastSeq + 1, lastSeq: chain.lastSeq, hashes, ...(start ? { since: start.since } : {}) };
}

class ChainError extends Error {
  constructor(readonly failure: ChainFailure) {
    super(failure.message);
  }
}

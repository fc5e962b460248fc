// Audit anchors: the signed chain head, published outside the server's own
// database (S3 Object Lock, a directory) where it cannot be rewritten.
// Deleting the newest records leaves a shorter chain that verifies on its
// own; checked against an anchor, it ends before an anchored head. Both the
// server (publishing) and the client (`sshca audit verify --anchors`) use
// this module, so it imports nothing from the server.
import { verifyExport, verifyHeadCheckpoint, type ChainFailure, type VerifyKey } from './audit-chain.js';
import { isPlainObject, parseJsonStrict } from './strict-json.js';

export const ANCHOR_TYPE = 'sshca-audit-anchor';
export const ANCHOR_VERSION = 1;

/**
 * One published head. `checkpoint` is the same JWS an export's head carries
 * (`CheckpointKey.signHead(seq, hash, at)`, payload `headPayload`).
 */
export interface Anchor {
  readonly type: typeof ANCHOR_TYPE;
  readonly version: typeof ANCHOR_VERSION;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly checkpoint: string;
}

/** A document or name is not an anchor (parseAnchor, makeAnchor, anchorName). */
export class AnchorFormatError extends Error {
  readonly code = 'ANCHOR_INVALID';
}

/** The largest sequence number an anchor name holds (the inverted form has a fixed width). */
export const MAX_ANCHOR_SEQ = 1e15 - 1;
/** Anchors are a few hundred bytes; readers refuse anything much larger. */
export const MAX_ANCHOR_BYTES = 8192;

const HASH = /^[0-9a-f]{64}$/;
// Compact JWS: three base64url parts (the payload is never detached here).
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const NAME = /^(\d{16})-([1-9]\d{0,14})\.json$/;

function checkSeq(seq: unknown): asserts seq is number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || seq > MAX_ANCHOR_SEQ) throw new AnchorFormatError(`an anchor's seq must be an integer from 1 to ${MAX_ANCHOR_SEQ}`);
}

/**
 * The file or object name of the anchor for `seq`: the sequence number
 * inverted and zero-padded first, so lexicographic order (S3's
 * ListObjectsV2, a sorted readdir) lists the newest first and the newest N
 * cost one call; the plain seq follows for people reading a listing.
 */
export function anchorName(seq: number): string {
  checkSeq(seq);
  return `${String(1e15 - seq).padStart(16, '0')}-${seq}.json`;
}

/** `prefix` + anchorName(seq): the S3 key (prefix `audit/anchors/`) or path. */
export function anchorKey(seq: number, prefix = ''): string {
  return `${prefix}${anchorName(seq)}`;
}

/** The seq an anchor name stands for; undefined for any other name (or one whose two halves disagree). */
export function parseAnchorName(name: string): number | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const seq = Number(m[2]);
  return seq <= MAX_ANCHOR_SEQ && String(1e15 - seq).padStart(16, '0') === m[1] ? seq : undefined;
}

/** The anchor names among `names` (a readdir, a listing without its prefix), newest first, at most `limit`. */
export function newestAnchorNames(names: Iterable<string>, limit: number): string[] {
  const anchors = [...names].filter((n) => parseAnchorName(n) !== undefined);
  // Code-unit order equals S3's byte order here: anchor names are ASCII.
  anchors.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return anchors.slice(0, Math.max(0, limit));
}

function checkAt(at: unknown): asserts at is string {
  // One spelling per instant (toISOString's), so equal times compare equal as text.
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)) || new Date(at).toISOString() !== at) throw new AnchorFormatError('an anchor\'s at must be an ISO 8601 UTC time as toISOString writes it');
}

/** Builds an anchor, checking every field as parseAnchor would. */
export function makeAnchor(seq: number, hash: string, at: string, checkpoint: string): Anchor {
  checkSeq(seq);
  if (typeof hash !== 'string' || !HASH.test(hash)) throw new AnchorFormatError('an anchor\'s hash must be 64 lowercase hex digits');
  checkAt(at);
  if (typeof checkpoint !== 'string' || checkpoint.length > 2048 || !JWS.test(checkpoint)) throw new AnchorFormatError('an anchor\'s checkpoint must be a compact JWS');
  return { type: ANCHOR_TYPE, version: ANCHOR_VERSION, seq, hash, at, checkpoint };
}

/** The document as published: fixed member order, one line. */
export function formatAnchor(anchor: Anchor): string {
  const { type, version, seq, hash, at, checkpoint } = anchor;
  return `${JSON.stringify({ type, version, seq, hash, at, checkpoint })}\n`;
}

const MEMBERS = ['type', 'version', 'seq', 'hash', 'at', 'checkpoint'];

/**
 * Parses an anchor document strictly: no duplicate members (two parsers
 * must not read two different heads out of one file), no unknown members,
 * every field well-formed. The signature is checked by checkAnchors.
 */
export function parseAnchor(text: string): Anchor {
  if (text.length > MAX_ANCHOR_BYTES) throw new AnchorFormatError(`an anchor is at most ${MAX_ANCHOR_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseJsonStrict(text);
  } catch (cause) {
    throw new AnchorFormatError('an anchor must be one JSON object without duplicate members', { cause });
  }
  if (!isPlainObject(doc)) throw new AnchorFormatError('an anchor must be a JSON object');
  const unknown = Object.keys(doc).filter((k) => !MEMBERS.includes(k));
  if (unknown.length > 0) throw new AnchorFormatError(`unknown anchor members: ${unknown.join(', ')}`);
  if (doc.type !== ANCHOR_TYPE) throw new AnchorFormatError(`not an ${ANCHOR_TYPE} document`);
  if (doc.version !== ANCHOR_VERSION) throw new AnchorFormatError(`anchor version ${String(doc.version)} is not supported`);
  return makeAnchor(doc.seq as number, doc.hash as string, doc.at as string, doc.checkpoint as string);
}

/** Whether two anchors make the same statement: the record at `seq` has `hash`. */
export function sameStatement(a: Anchor, b: Anchor): boolean {
  return a.seq === b.seq && a.hash === b.hash;
}

/** What checkAnchors compares anchors with: a chain, or the part of it an export holds. */
export interface AnchoredChain {
  /** The first record held; older anchors are skipped (a partial export cannot speak for them). */
  readonly firstSeq: number;
  /** The last record held (0: none). */
  readonly lastSeq: number;
  /** The hash of record `seq` (firstSeq ≤ seq ≤ lastSeq). */
  hashAt(seq: number): string | undefined | Promise<string | undefined>;
  /**
   * When this view of the chain was signed (an export's head `at`). Given, an
   * anchor published after it that lies beyond lastSeq is skipped: an old
   * export predates it. Omit to check strictly (a live chain, fetched now).
   */
  readonly asOf?: string;
}

/** Why an anchor check failed: ChainFailure's reason, plus what was found. */
export interface AnchorFailure extends ChainFailure {
  readonly reason: 'truncated' | 'anchor';
  /**
   * `beyond`: the chain ends before the anchored head (records deleted);
   * `hash`: the record at the anchored seq differs (history rewritten);
   * `signature`: the anchor is not signed by the checkpoint key (forged, or
   * another key's).
   */
  readonly finding: 'beyond' | 'hash' | 'signature';
  readonly anchor: Anchor;
}

export type AnchorCheck =
  | { readonly ok: true; readonly checked: number; readonly skipped: number; readonly newest?: Anchor }
  | { readonly ok: false; readonly failure: AnchorFailure };

/**
 * Checks `chain` against `anchors`, newest first: each anchor must be signed
 * by `key` (checked before anything it claims is believed, so a forged
 * anchor is reported as forged, never as a truncation), must not lie beyond
 * the chain's end, and must name the hash the chain holds at its seq.
 * `newest` is the newest anchor checked.
 */
export async function checkAnchors(chain: AnchoredChain, anchors: readonly Anchor[], key: VerifyKey): Promise<AnchorCheck> {
  const ordered = [...anchors].sort((a, b) => b.seq - a.seq);
  const asOf = chain.asOf === undefined ? undefined : Date.parse(chain.asOf);
  let checked = 0;
  let skipped = 0;
  let newest: Anchor | undefined;
  for (const anchor of ordered) {
    const fail = (reason: AnchorFailure['reason'], finding: AnchorFailure['finding'], message: string): AnchorCheck => ({ ok: false, failure: { seq: anchor.seq, reason, finding, message, anchor } });
    if (!(await verifyHeadCheckpoint(anchor.checkpoint, anchor.seq, anchor.hash, anchor.at, key))) {
      return fail('anchor', 'signature', `the anchor of record ${anchor.seq} (${anchor.at}) does not verify with the checkpoint key`);
    }
    if (anchor.seq > chain.lastSeq) {
      if (asOf !== undefined && Date.parse(anchor.at) > asOf) {
        skipped++;
        continue;
      }
      return fail('truncated', 'beyond', `record ${anchor.seq} was anchored at ${anchor.at}, but the chain ends at ${chain.lastSeq} (newest records deleted)`);
    }
    if (anchor.seq < chain.firstSeq) {
      skipped++;
      continue;
    }
    const hash = await chain.hashAt(anchor.seq);
    if (hash !== anchor.hash) return fail('anchor', 'hash', `record ${anchor.seq} differs from the head anchored at ${anchor.at} (history rewritten)`);
    checked++;
    newest ??= anchor;
  }
  return { ok: true, checked, skipped, ...(newest ? { newest } : {}) };
}

/** verifyExport, then checkAnchors against the export: `sshca audit verify --anchors DIR` in one call. */
export async function verifyExportAgainstAnchors(
  lines: Iterable<string> | AsyncIterable<string>,
  key: VerifyKey,
  anchors: readonly Anchor[],
  options: {
    /** Skip anchors published after the export's head that lie beyond it (an old export file); see AnchoredChain.asOf. */
    readonly asOfHead?: boolean;
    /** Refuse a partial export (verifyExport's `complete`). */
    readonly complete?: boolean;
  } = {},
): Promise<
  | { ok: true; count: number; headAt: string; firstSeq: number; lastSeq: number; since?: string; anchors: { checked: number; skipped: number; newest?: Anchor } }
  | { ok: false; failure: ChainFailure }
> {
  const verified = await verifyExport(lines, key, { hashesAt: new Set(anchors.map((a) => a.seq)), ...(options.complete ? { complete: true } : {}) });
  // A broken chain is reported first: it names the first bad record.
  if (!verified.ok) return verified;
  const check = await checkAnchors(
    { firstSeq: verified.firstSeq, lastSeq: verified.lastSeq, hashAt: (seq) => verified.hashes.get(seq), ...(options.asOfHead ? { asOf: verified.headAt } : {}) },
    anchors,
    key,
  );
  if (!check.ok) return { ok: false, failure: { seq: check.failure.seq, reason: check.failure.reason, message: check.failure.message } };
  const { checked, skipped, newest } = check;
  return {
    ok: true, count: verified.count, headAt: verified.headAt, firstSeq: verified.firstSeq, lastSeq: verified.lastSeq, ...(verified.since !== undefined ? { since: verified.since } : {}),
    anchors: { checked, skipped, ...(newest ? { newest } : {}) },
  };
}

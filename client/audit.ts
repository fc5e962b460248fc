// `sshca audit list|export|verify`: the audit record, for auditors.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newestAnchorNames, parseAnchor, verifyExportAgainstAnchors, type Anchor } from '../protocol/audit-anchor.js';
import type { ActiveAnswer, CallerMatch } from '../protocol/audit-api.js';
import { importCheckpointKey, type ChainFailure, type ChainedRecord } from '../protocol/audit-chain.js';
import { isPlainObject, parseJsonStrict } from '../protocol/strict-json.js';
import { ClientError } from './client-error.js';
import { ServerApi } from './server-api.js';
import { openSignedSession } from './signed-session.js';

export const AUDIT_FILTERS = ['kind', 'principal', 'caller', 'account', 'serial', 'fingerprint', 'since', 'until'] as const;

export interface AuditPageResult {
  readonly records: ChainedRecord[];
  readonly nextBefore?: number;
  readonly caller?: CallerMatch;
}

export async function auditActive(options: { server: string; profile?: string; principal?: string; caller?: string; limit?: number }): Promise<ActiveAnswer> {
  const { api, signer, endpoint } = await openSignedSession(options.server, options.profile);
  const query = new URLSearchParams();
  if (options.principal !== undefined) query.set('principal', options.principal);
  if (options.caller !== undefined) query.set('caller', options.caller);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  const qs = query.toString();
  return JSON.parse(await api.signedGet(`/v1/audit/active${qs ? `?${qs}` : ''}`, signer, endpoint)) as ActiveAnswer;
}

export async function auditList(options: { server: string; profile?: string; filters: Partial<Record<(typeof AUDIT_FILTERS)[number], string>>; limit?: number; before?: number }): Promise<AuditPageResult> {
  const { api, signer, endpoint } = await openSignedSession(options.server, options.profile);
  const query = new URLSearchParams();
  for (const name of AUDIT_FILTERS) if (options.filters[name] !== undefined) query.set(name, options.filters[name]!);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.before !== undefined) query.set('before', String(options.before));
  const qs = query.toString();
  return JSON.parse(await api.signedGet(`/v1/audit${qs ? `?${qs}` : ''}`, signer, endpoint)) as AuditPageResult;
}

/** The NDJSON export: everything, or (`since`, ISO 8601) the records from that time on. */
export async function auditExport(options: { server: string; profile?: string; since?: string }): Promise<string> {
  const { api, signer, endpoint } = await openSignedSession(options.server, options.profile);
  return api.signedGet(`/v1/audit/export${options.since ? `?${new URLSearchParams({ since: options.since }).toString()}` : ''}`, signer, endpoint);
}

export type VerifyOutcome =
  | {
      ok: true;
      count: number;
      headAt: string;
      firstSeq: number;
      lastSeq: number;
      /** A partial export: the time it starts at. */
      since?: string;
      /** Anchors checked (absent: none were looked at), and where they came from. */
      anchors?: { source: string; checked: number; skipped: number; newest?: Anchor };
    }
  | { ok: false; failure: ChainFailure };

/** Every anchor file in `dir` (as `aws s3 sync` leaves them), newest first. */
async function anchorsFromDirectory(dir: string): Promise<Anchor[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', `--anchors ${dir}: ${(err as Error).message}`);
  }
  const anchors: Anchor[] = [];
  for (const name of newestAnchorNames(names, MAX_ANCHORS)) {
    try {
      anchors.push(parseAnchor(await readFile(join(dir, name), 'utf8')));
    } catch (err) {
      throw new ClientError('CLIENT_USAGE', `--anchors: ${join(dir, name)} is not an anchor: ${(err as Error).message}`);
    }
  }
  return anchors;
}

/** At most this many anchors are checked from a directory (newest first). */
const MAX_ANCHORS = 10_000;

/** The newest anchors the server publishes (none when it anchors nowhere). */
async function anchorsFromServer(server: string, profile: string | undefined): Promise<{ location: string; anchors: Anchor[] } | undefined> {
  const { api, signer, endpoint } = await openSignedSession(server, profile);
  try {
    const answer = JSON.parse(await api.signedGet('/v1/audit/anchors?limit=20', signer, endpoint)) as { location: string; anchors: unknown[] };
    return { location: answer.location, anchors: answer.anchors.map((a) => parseAnchor(JSON.stringify(a))) };
  } catch (err) {
    if (err instanceof ClientError && err.code === 'REQUEST_NO_ANCHOR_STORE') return undefined;
    throw err;
  }
}

/**
 * Verifies an export (a file, or fetched now) against the checkpoint key (a
 * JWK file, or the server's), then against anchors: `--anchors DIR`, else
 * (verifying the server's record now) the newest anchors the server lists.
 */
export async function auditVerify(options: { server?: string; profile?: string; file?: string; checkpointKey?: string; anchorsDir?: string }): Promise<VerifyOutcome> {
  if (!options.file && !options.server) throw new ClientError('CLIENT_USAGE', 'give --file (with --checkpoint-key) or a server');
  let jwk: unknown;
  if (options.checkpointKey) {
    try {
      jwk = parseJsonStrict(await readFile(options.checkpointKey, 'utf8'));
    } catch (err) {
      throw new ClientError('CLIENT_USAGE', `--checkpoint-key ${options.checkpointKey} is not a JWK file: ${(err as Error).message}`);
    }
  } else {
    if (!options.server) throw new ClientError('CLIENT_USAGE', '--checkpoint-key is needed to verify a file offline');
    jwk = await new ServerApi(options.server).publicGet('/v1/audit/checkpoint-key');
  }
  if (!isPlainObject(jwk)) throw new ClientError('CLIENT_USAGE', 'the checkpoint key is not a JWK object');
  let key;
  try {
    key = await importCheckpointKey(jwk);
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', (err as Error).message);
  }
  const live = !options.file;
  const anchorSource = options.anchorsDir
    ? { location: options.anchorsDir, anchors: await anchorsFromDirectory(options.anchorsDir) }
    : live
      ? await anchorsFromServer(options.server!, options.profile)
      : undefined;
  const text = live ? await auditExport({ server: options.server!, ...(options.profile ? { profile: options.profile } : {}) }) : await readFile(options.file!, 'utf8');
  // A file is an export of its day: anchors published after its head are not held against it.
  const verdict = await verifyExportAgainstAnchors(text.split('\n'), key, anchorSource?.anchors ?? [], { ...(live ? { complete: true } : { asOfHead: true }) });
  if (!verdict.ok) return verdict;
  const { anchors, ...rest } = verdict;
  return { ...rest, ...(anchorSource ? { anchors: { source: anchorSource.location, ...anchors } } : {}) };
}

/** Publishes the chain head to the server's anchor store now (admin). */
export async function auditAnchor(options: { server: string; profile?: string }): Promise<{ location: string; outcome: string; anchor?: Anchor }> {
  const { api, signer, endpoint } = await openSignedSession(options.server, options.profile);
  return (await api.signedPost('/v1/audit/anchor', {}, signer, endpoint)) as { location: string; outcome: string; anchor?: Anchor };
}

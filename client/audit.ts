// `sshca audit list|export|verify`: the audit record, for auditors.
import { readFile } from 'node:fs/promises';
import type { ActiveAnswer, CallerMatch } from '../protocol/audit-api.js';
import { importCheckpointKey, verifyExport, type ChainFailure, type ChainedRecord } from '../protocol/audit-chain.js';
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

export type VerifyOutcome = { ok: true; count: number; headAt: string } | { ok: false; failure: ChainFailure };

/** Verifies an export (a file, or fetched now) against the checkpoint key (a JWK file, or the server's). */
export async function auditVerify(options: { server?: string; profile?: string; file?: string; checkpointKey?: string }): Promise<VerifyOutcome> {
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
  const text = options.file ? await readFile(options.file, 'utf8') : await auditExport({ server: options.server!, ...(options.profile ? { profile: options.profile } : {}) });
  return verifyExport(text.split('\n'), key);
}

// The server's KRL kept on disk for the client's own revocation checks
// (`sshca ssh` after a refused login, `sshca status --check-revocation`),
// fetched with If-None-Match so an unchanged list costs a 304.
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isPlainObject, parseJsonStrict } from '../protocol/strict-json.js';
import { ClientError } from './client-error.js';
import { replaceFile } from './host-trust-files.js';
import { readKrl, type RevocationList } from './krl-reader.js';
import type { ServerApi } from './server-api.js';

/** Where the KRL and its ETag live: next to the key and the host trust files. */
export interface KrlCachePaths {
  readonly krl: string;
  /** `{"server", "etag"}`: which server the cached KRL came from, and its ETag. */
  readonly state: string;
}

export function krlCachePaths(home: string): KrlCachePaths {
  const dir = join(home, '.ssh', 'sshca');
  return { krl: join(dir, 'revocations.krl'), state: join(dir, 'revocations.json') };
}

/** The current KRL, and whether the cached copy was confirmed (304) rather than downloaded. */
export interface CachedKrl {
  readonly list: RevocationList;
  readonly fromCache: boolean;
}

/** The cached KRL and its ETag, when they are from `server` and still parse. */
function readCached(paths: KrlCachePaths, server: string): { list: RevocationList; etag: string } | undefined {
  try {
    const state = parseJsonStrict(readFileSync(paths.state, 'utf8'));
    if (!isPlainObject(state) || state.server !== server || typeof state.etag !== 'string') return undefined;
    return { list: readKrl(readFileSync(paths.krl)), etag: state.etag };
  } catch {
    // Missing, damaged or unreadable: download the whole KRL again rather
    // than let a 304 confirm a copy we cannot read.
    return undefined;
  }
}

/**
 * Asks `api` for its KRL with the cached ETag. A download is parsed before
 * it is saved, so the cache only ever holds a KRL the reader understood;
 * one it does not throws KrlReadError (the caller reports "unknown").
 */
export async function fetchKrl(api: Pick<ServerApi, 'audience' | 'conditionalGet'>, paths: KrlCachePaths): Promise<CachedKrl> {
  const cached = readCached(paths, api.audience);
  const r = await api.conditionalGet('/v1/krl', cached?.etag);
  if (r.notModified) {
    if (!cached) throw new ClientError('CLIENT_BAD_RESPONSE', `${api.audience} answered "not modified" to a request without a cached copy`);
    return { list: cached.list, fromCache: true };
  }
  const list = readKrl(r.bytes);
  try {
    await mkdir(dirname(paths.krl), { recursive: true, mode: 0o700 });
    // The old ETag goes first, so it never vouches for other bytes.
    await rm(paths.state, { force: true });
    await replaceFile(paths.krl, r.bytes, 0o644);
    if (r.etag) await replaceFile(paths.state, Buffer.from(`${JSON.stringify({ server: api.audience, etag: r.etag })}\n`), 0o600);
  } catch {
    // A cache that cannot be written only costs a download next time; the answer stands.
  }
  return { list, fromCache: false };
}

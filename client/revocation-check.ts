// Is this certificate revoked? Asked of the server's KRL by `sshca ssh`
// (after sshd refused the certificate) and `sshca status --check-revocation`.
import { CodedError } from '../protocol/coded-error.js';
import { krlCachePaths, fetchKrl } from './krl-cache.js';
import type { KrlMatch, KrlSubject } from './krl-reader.js';
import { ServerApi } from './server-api.js';

/** `unknown`: the KRL could not be fetched or read; never taken as "not revoked". */
export type RevocationState = 'revoked' | 'not-revoked' | 'unknown';

/** The answer, with what it rests on. */
export interface RevocationCheck {
  readonly state: RevocationState;
  /** When revoked: by its own entry (serial), its key, or its CA key. */
  readonly match?: KrlMatch;
  /** The KRL's version (krl_version), when one was read. */
  readonly krlVersion?: string;
  /** Whether the cached KRL was confirmed with a 304 instead of downloaded. */
  readonly fromCache?: boolean;
  /** When unknown: why, as a warning the caller prints. */
  readonly problem?: { readonly code: string; readonly message: string };
}

/**
 * Checks `subject` against the KRL of `server`, using and refreshing the
 * copy cached under `home`. Never throws: a check that cannot be made is
 * `unknown`, which callers report but do not act on, so an unreachable
 * server neither blocks the user nor passes for "not revoked".
 */
export async function checkRevocation(options: { server: string; home: string; subject: KrlSubject; timeoutMs?: number }): Promise<RevocationCheck> {
  try {
    const { list, fromCache } = await fetchKrl(new ServerApi(options.server, options.timeoutMs ?? 10_000), krlCachePaths(options.home));
    const match = list.revokes(options.subject);
    return { state: match ? 'revoked' : 'not-revoked', ...(match ? { match } : {}), krlVersion: list.version.toString(), fromCache };
  } catch (err) {
    const cause = err instanceof CodedError ? `${err.message} (${err.code})` : (err as Error).message;
    return { state: 'unknown', problem: { code: 'CLIENT_REVOCATION_UNKNOWN', message: `could not check the certificate against the revocation list of ${options.server}: ${cause}` } };
  }
}

// How an audit record is hashed into the chain: shared by the server's
// stores (their worker thread included, which is why this module imports no
// JOSE code) and the offline verifier in audit-chain.ts.
import { createHash } from 'node:crypto';

/** The hash before the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every depth: one byte string per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function recordHash(prevHash: string, seq: number, at: string, kind: string, data: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(`${prevHash}\n${canonicalJson({ seq, at, kind, data })}`).digest('hex');
}

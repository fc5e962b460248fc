// Builds the KRL instances fetch (GET /v1/krl) from the revocation records.
// Deterministic for a given set of records and time, so every replica
// serves the same bytes (and ETag).
import { createHash } from 'node:crypto';
import type { ChainedRecord } from '../../protocol/audit-chain.js';
import { BACKDATE_SECONDS } from '../ca/certificate-template.js';
import { encodeKrl } from './krl-encoder.js';

/** An encoded KRL and what identifies it. */
export interface BuiltKrl {
  readonly bytes: Buffer;
  readonly version: bigint;
  readonly etag: string;
  /** Hex SHA-256 of `bytes`, computed once (the trust state names the KRL by it). */
  readonly sha256: string;
  /** The newest revocation or withdrawal it reflects (0: none). */
  readonly newestSeq: number;
  /** Certificates it revokes by serial. */
  readonly revokedCertificates: number;
  /** Public keys it revokes (`SHA256:…` fingerprints): no certificate is issued for them (issue 12). */
  readonly revokedKeys: ReadonlySet<string>;
  /** When (epoch seconds) an entry leaves it, so it must be built again; undefined: never. */
  readonly nextChangeAt?: number;
}

/**
 * How long after `validBefore` a revoked certificate stays listed. sshd
 * compares validity with its own clock; a host running behind by up to the
 * back-date allowance still accepts a certificate that has expired by ours.
 */
export const KRL_EXPIRY_GRACE_SECONDS = BACKDATE_SECONDS;

/** The CA keys the server publishes (active, next, retired; user and host), by SHA256 fingerprint. */
export type PublishedCaKeys = ReadonlyMap<string, Buffer>;

interface RevokedData {
  serial?: string;
  publicKeyFingerprint?: string;
  caFingerprint?: string;
  validBefore?: number;
  revokedBy?: string;
}

/**
 * `records`: every `revoked` and `withdrawn` record, oldest first.
 *
 * - Certificates are revoked by serial under the CA key that signed them,
 *   whichever way the admin named them: a serial names one certificate, and
 *   the public KRL then carries no key ids (they contain caller ARNs).
 * - A withdrawn revocation is left out.
 * - A published CA key is never revoked (rule 18), even by an old record.
 * - Certificates are dropped once expired past the grace period.
 * - krl_version = newest revocation/withdrawal seq + number of expired
 *   certificate revocations: both only grow, so the version rises with
 *   every change.
 */
export function buildKrl(records: readonly ChainedRecord[], caKeys: PublishedCaKeys, nowSeconds: number): BuiltKrl {
  const withdrawn = new Set<number>();
  for (const r of records) if (r.kind === 'withdrawn') withdrawn.add(Number((r.data as { revocationSeq?: number }).revocationSeq));
  const perCa = new Map<string, { caKey: Buffer; serials: bigint[]; keyIds: string[] }>();
  const fingerprints: Buffer[] = [];
  const revokedKeys = new Set<string>();
  let expired = 0;
  let nextChangeAt: number | undefined;
  for (const r of records) {
    if (r.kind !== 'revoked') continue;
    const d = r.data as RevokedData;
    if (d.revokedBy === 'publicKey') {
      if (!withdrawn.has(r.seq) && d.publicKeyFingerprint && !caKeys.has(d.publicKeyFingerprint)) {
        fingerprints.push(Buffer.from(d.publicKeyFingerprint.replace(/^SHA256:/, ''), 'base64'));
        revokedKeys.add(d.publicKeyFingerprint);
      }
      continue;
    }
    if (d.validBefore !== undefined) {
      const leavesAt = d.validBefore + KRL_EXPIRY_GRACE_SECONDS;
      if (leavesAt <= nowSeconds) {
        // Counted even when withdrawn, so a withdrawal never lowers the version.
        expired++;
        continue;
      }
      // Withdrawn ones too: their expiry moves the version.
      nextChangeAt = Math.min(nextChangeAt ?? leavesAt, leavesAt);
    }
    if (withdrawn.has(r.seq) || !d.serial) continue;
    // A certificate from a CA key no longer published: revoke for any CA (serials are random 64-bit).
    const caKey = (d.caFingerprint && caKeys.get(d.caFingerprint)) || Buffer.alloc(0);
    const id = caKey.toString('base64');
    const group = perCa.get(id) ?? { caKey, serials: [], keyIds: [] };
    perCa.set(id, group);
    group.serials.push(BigInt(d.serial));
  }
  const newest = records.at(-1);
  const newestSeq = newest?.seq ?? 0;
  const version = BigInt(newestSeq) + BigInt(expired);
  const bytes = encodeKrl({
    version,
    generatedAt: newest ? Math.floor(Date.parse(newest.at) / 1000) : 0,
    comment: 'sshca',
    certificates: [...perCa.values()].sort((a, b) => Buffer.compare(a.caKey, b.caKey)),
    sha256Fingerprints: fingerprints,
  });
  const digest = createHash('sha256').update(bytes).digest();
  return { bytes, version, etag: `"${digest.toString('base64url')}"`, sha256: digest.toString('hex'), newestSeq, revokedCertificates: [...perCa.values()].reduce((n, g) => n + g.serials.length, 0), revokedKeys, ...(nextChangeAt !== undefined ? { nextChangeAt } : {}) };
}

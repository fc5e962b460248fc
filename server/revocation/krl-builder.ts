// Builds the KRL instances fetch (GET /v1/krl) from the revocations on the
// audit record. Deterministic for a given state, so every replica serves the
// same bytes (and ETag).
import { createHash } from 'node:crypto';
import { fingerprintOf } from '../../protocol/ssh-public-key.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Signer } from '../ca/signer.js';
import { encodeKrl } from './krl-encoder.js';

/** An encoded KRL and what identifies it. */
export interface BuiltKrl {
  readonly bytes: Buffer;
  readonly version: bigint;
  readonly etag: string;
}

/**
 * Certificates that have expired are dropped (sshd refuses them anyway).
 * krl_version = newest revocation's sequence number + number of dropped
 * entries: both only grow, so the version rises with every change.
 */
export async function buildKrl(audit: AuditLog, caSigners: readonly Signer[], nowSeconds: number): Promise<BuiltKrl> {
  const { records } = await audit.query({ kind: 'revoked' }, { limit: 10_000_000 });
  const caBlobs = new Map(caSigners.map((s) => [fingerprintOf(s.publicKey().blob), s.publicKey().blob]));
  const perCa = new Map<string, { caKey: Buffer; serials: bigint[]; keyIds: string[] }>();
  const fingerprints: Buffer[] = [];
  let dropped = 0;
  for (const r of records) {
    const d = r.data as { serial?: string; keyId?: string; publicKeyFingerprint?: string; caFingerprint?: string; validBefore?: number; revokedBy?: string };
    if (d.revokedBy === 'publicKey' && d.publicKeyFingerprint) {
      fingerprints.push(Buffer.from(d.publicKeyFingerprint.replace(/^SHA256:/, ''), 'base64'));
      continue;
    }
    if (d.validBefore !== undefined && d.validBefore <= nowSeconds) {
      dropped++;
      continue;
    }
    // A certificate from a CA key we no longer hold: revoke for any CA (serials are random 64-bit).
    const caKey = (d.caFingerprint && caBlobs.get(d.caFingerprint)) || Buffer.alloc(0);
    const group = perCa.get(caKey.toString('base64')) ?? { caKey, serials: [], keyIds: [] };
    perCa.set(caKey.toString('base64'), group);
    if (d.revokedBy === 'keyId' && d.keyId) group.keyIds.push(d.keyId);
    else if (d.serial) group.serials.push(BigInt(d.serial));
  }
  const newest = records[0];
  const version = BigInt(newest?.seq ?? 0) + BigInt(dropped);
  const bytes = encodeKrl({
    version,
    generatedAt: newest ? Math.floor(Date.parse(newest.at) / 1000) : 0,
    comment: 'sshca',
    certificates: [...perCa.values()].sort((a, b) => Buffer.compare(a.caKey, b.caKey)),
    sha256Fingerprints: fingerprints,
  });
  return { bytes, version, etag: `"${createHash('sha256').update(bytes).digest('base64url')}"` };
}

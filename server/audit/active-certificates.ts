// "Who has access now" (issue 16): the certificates valid at this moment
// that no revocation in force names. Revocations are applied the way the KRL
// applies them (krl-builder.ts): a certificate by its serial, a key by its
// fingerprint; a withdrawn revocation no longer counts.
import type { ActiveCertificate } from '../../protocol/audit-api.js';
import type { ChainedRecord } from '../../protocol/audit-chain.js';

interface IssuedData {
  serial: string;
  keyId: string;
  certificateType: string;
  principals: string[];
  callerArn: string;
  sourceIp: string;
  validAfter: number;
  validBefore: number;
  publicKeyFingerprint: string;
  policyRule?: string;
  reason?: string;
}

/** The serials and public keys that revocations in force name. */
export function revokedNow(revocations: readonly ChainedRecord[]): { serials: ReadonlySet<string>; keys: ReadonlySet<string> } {
  const withdrawn = new Set<number>();
  for (const r of revocations) if (r.kind === 'withdrawn') withdrawn.add(Number((r.data as { revocationSeq?: number }).revocationSeq));
  const serials = new Set<string>();
  const keys = new Set<string>();
  for (const r of revocations) {
    if (r.kind !== 'revoked' || withdrawn.has(r.seq)) continue;
    const d = r.data as { revokedBy?: string; serial?: string; publicKeyFingerprint?: string };
    if (d.revokedBy === 'publicKey') {
      if (d.publicKeyFingerprint) keys.add(d.publicKeyFingerprint);
    } else if (d.serial) serials.add(d.serial);
  }
  return { serials, keys };
}

/** `issued` records (valid now, from the store) less every one a revocation in force names. */
export function activeCertificates(issued: readonly ChainedRecord[], revocations: readonly ChainedRecord[]): ActiveCertificate[] {
  const revoked = revokedNow(revocations);
  return issued.flatMap((r) => {
    const d = r.data as unknown as IssuedData;
    if (revoked.serials.has(d.serial) || revoked.keys.has(d.publicKeyFingerprint)) return [];
    return [
      {
        seq: r.seq,
        serial: d.serial,
        keyId: d.keyId,
        certificateType: d.certificateType,
        principals: d.principals,
        callerArn: d.callerArn,
        sourceIp: d.sourceIp,
        issuedAt: r.at,
        validAfter: d.validAfter,
        validBefore: d.validBefore,
        publicKeyFingerprint: d.publicKeyFingerprint,
        ...(d.policyRule !== undefined ? { policyRule: d.policyRule } : {}),
        ...(d.reason !== undefined ? { reason: d.reason } : {}),
      },
    ];
  });
}

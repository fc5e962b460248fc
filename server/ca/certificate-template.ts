// What a certificate will say, decided before anything is signed.
import { randomBytes } from 'node:crypto';
import type { SshPublicKey } from '../../protocol/ssh-public-key.js';

/** Everything an OpenSSH certificate asserts, minus nonce and signature. */
export interface CertificateTemplate {
  readonly kind: 'user' | 'host';
  readonly publicKey: SshPublicKey;
  readonly serial: bigint;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Seconds since the epoch. */
  readonly validAfter: number;
  readonly validBefore: number;
  readonly criticalOptions: Readonly<Record<string, string>>;
  /** Extension name → data; flag extensions have empty data. */
  readonly extensions: Readonly<Record<string, string>>;
}

/** How far validAfter is set back to absorb clock skew between CA and hosts (rule 10: ≤ 5 min). */
export const BACKDATE_SECONDS = 300;

export const DEFAULT_USER_EXTENSIONS: Readonly<Record<string, string>> = Object.freeze({
  'permit-agent-forwarding': '',
  'permit-port-forwarding': '',
  'permit-pty': '',
});

/**
 * A random, nonzero 64-bit serial (rule 8). Random rather than sequential so
 * serials reveal nothing about issuance volume; nonzero because a KRL can
 * never revoke serial 0. Uniqueness is enforced by the store's unique index.
 */
export function randomSerial(random: (n: number) => Buffer = randomBytes): bigint {
  for (;;) {
    const serial = random(8).readBigUInt64BE();
    if (serial !== 0n) return serial;
  }
}

/**
 * The key id: stable and printable, naming the caller and serial so an sshd
 * log line (`ID …`) leads straight to the audit record.
 */
export function keyIdFor(callerArn: string, serial: bigint): string {
  // Printable ASCII only: the ARN comes from STS, but a key id ends up in logs.
  const safeArn = callerArn.replace(/[^\x21-\x7e]/g, '?');
  return `sshca:${safeArn}:serial=${serial}`;
}

/**
 * A new certificate's template around what policy decided: a fresh serial,
 * the key id naming the caller, validity back-dated for clock skew. Both
 * certificate routes build theirs here, so the two kinds cannot drift apart.
 */
export function newTemplate(decided: {
  readonly kind: CertificateTemplate['kind'];
  readonly publicKey: SshPublicKey;
  readonly callerArn: string;
  readonly principals: readonly string[];
  readonly ttlSeconds: number;
  readonly nowSeconds: number;
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly extensions: Readonly<Record<string, string>>;
}): CertificateTemplate {
  const serial = randomSerial();
  return {
    kind: decided.kind,
    publicKey: decided.publicKey,
    serial,
    keyId: keyIdFor(decided.callerArn, serial),
    principals: decided.principals,
    validAfter: decided.nowSeconds - BACKDATE_SECONDS,
    validBefore: decided.nowSeconds + decided.ttlSeconds,
    criticalOptions: decided.criticalOptions,
    extensions: decided.extensions,
  };
}

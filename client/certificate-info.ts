// Reads what a certificate file says, without the AWS SDK or the network
// (`sshca status` must stay fast).
import { fingerprintOf } from '../protocol/ssh-public-key.js';
import { SshReader, SshWriter, readStringList } from '../protocol/ssh-wire.js';

/** The fields `sshca status` reports. */
export interface CertificateInfo {
  readonly type: string;
  readonly serial: bigint;
  readonly keyId: string;
  readonly principals: readonly string[];
  /** Seconds since the epoch. */
  readonly validAfter: number;
  readonly validBefore: number;
  readonly caFingerprint: string;
  /** The signing CA's public key blob (what a KRL's certificate sections name). */
  readonly caKey: Buffer;
  /** The certified key as a plain public key blob (what a KRL's key hashes are of). */
  readonly publicKey: Buffer;
  /** The signature blob (`string alg, string sig`). */
  readonly signature: Buffer;
}

/** Number of key fields after the type name, per certificate type. */
const KEY_FIELDS: Readonly<Record<string, number>> = {
  'ssh-ed25519-cert-v01@openssh.com': 1,
  'ecdsa-sha2-nistp256-cert-v01@openssh.com': 2,
  'ecdsa-sha2-nistp384-cert-v01@openssh.com': 2,
  'ecdsa-sha2-nistp521-cert-v01@openssh.com': 2,
  'ssh-rsa-cert-v01@openssh.com': 2,
};

/** Parses a `-cert.pub` line. Throws on anything that is not an OpenSSH certificate. */
export function readCertificate(line: string): CertificateInfo {
  const [type, b64] = line.trim().split(/\s+/);
  const fields = type ? KEY_FIELDS[type] : undefined;
  if (fields === undefined || !b64) throw new Error('not an OpenSSH certificate line');
  const r = new SshReader(Buffer.from(b64, 'base64'));
  if (r.text() !== type) throw new Error('certificate type word does not match its blob');
  r.string(); // nonce
  // A certificate carries the plain key's fields in the plain key's order.
  const publicKey = new SshWriter().string(type.replace('-cert-v01@openssh.com', ''));
  for (let i = 0; i < fields; i++) publicKey.string(r.string());
  const serial = r.uint64();
  r.uint32(); // user/host
  const keyId = r.text();
  const principals = readStringList(r.string());
  const validAfter = Number(r.uint64());
  const validBefore = Number(r.uint64());
  r.string(); // critical options
  r.string(); // extensions
  r.string(); // reserved
  const caKey = r.string();
  const signature = r.string();
  r.end();
  return { type, serial, keyId, principals, validAfter, validBefore, caFingerprint: fingerprintOf(caKey), caKey, publicKey: publicKey.toBuffer(), signature };
}

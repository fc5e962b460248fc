// Our own OpenSSH certificate encoder (PROTOCOL.certkeys). sshpk's writer
// mislabels some ECDSA signatures and signs RSA with SHA-1 (DESIGN.md §4).
import { SshWriter } from '../../protocol/ssh-wire.js';
import type { SshPublicKey } from '../../protocol/ssh-public-key.js';
import { SshReader } from '../../protocol/ssh-wire.js';
import type { CertificateTemplate } from './certificate-template.js';

/** Raised for a template OpenSSH would reject or misread. */
export class CertificateEncodingError extends Error {
  readonly code = 'CERT_TEMPLATE_INVALID';
}

const SSH_CERT_TYPE = { user: 1, host: 2 } as const;

/** `<key type>-cert-v01@openssh.com` */
export function certificateTypeName(key: SshPublicKey): string {
  return `${key.type}-cert-v01@openssh.com`;
}

/**
 * Encodes options or extensions: sorted by name, unique, each value
 * string-wrapped (empty for flags), as PROTOCOL.certkeys requires (rule 11).
 */
function encodeOptions(options: Readonly<Record<string, string>>): Buffer {
  const w = new SshWriter();
  const names = Object.keys(options).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    if (!/^[\x21-\x7e]+$/.test(name)) throw new CertificateEncodingError(`option name ${JSON.stringify(name)} is not printable`);
    const value = options[name]!;
    w.string(name).string(value === '' ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer());
  }
  return w.toBuffer();
}

/**
 * The to-be-signed part of a certificate: everything up to and including the
 * signature key. The signature is computed over exactly these bytes.
 */
export function encodeToBeSigned(t: CertificateTemplate, nonce: Buffer, caKey: SshPublicKey): Buffer {
  if (t.principals.length === 0) throw new CertificateEncodingError('a certificate needs at least one principal');
  if (new Set(t.principals).size !== t.principals.length) throw new CertificateEncodingError('duplicate principal');
  if (t.serial <= 0n) throw new CertificateEncodingError('serial must be nonzero');
  if (!(t.validAfter < t.validBefore)) throw new CertificateEncodingError('validAfter must precede validBefore');
  if (nonce.length < 16) throw new CertificateEncodingError('nonce too short');
  const keyFields = new SshReader(t.publicKey.blob);
  keyFields.string(); // skip the key type: the certificate names its own type
  const principals = new SshWriter();
  for (const p of t.principals) principals.string(p);
  return new SshWriter()
    .string(certificateTypeName(t.publicKey))
    .string(nonce)
    .raw(t.publicKey.blob.subarray(keyFields.position))
    .uint64(t.serial)
    .uint32(SSH_CERT_TYPE[t.kind])
    .string(t.keyId)
    .string(principals.toBuffer())
    .uint64(BigInt(t.validAfter))
    .uint64(BigInt(t.validBefore))
    .string(encodeOptions(t.criticalOptions))
    .string(encodeOptions(t.extensions))
    .string('') // reserved
    .string(caKey.blob)
    .toBuffer();
}

/** Appends the signature blob, completing the certificate blob. */
export function appendSignature(toBeSigned: Buffer, signatureBlob: Buffer): Buffer {
  return Buffer.concat([toBeSigned, new SshWriter().string(signatureBlob).toBuffer()]);
}

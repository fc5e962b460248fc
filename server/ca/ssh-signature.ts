// SSH signature blobs (RFC 4253 §6.6, RFC 5656 §3.1.2, RFC 8332, RFC 8709):
// building them from what a signer returns and verifying them before any
// certificate leaves the server (rule 13).
import { verify } from 'node:crypto';
import { CURVES, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import { SshReader, SshWireError, SshWriter } from '../../protocol/ssh-wire.js';

/** The only signature algorithms sshca produces or accepts (rule 12). */
export type SshSignatureAlgorithm =
  | 'ssh-ed25519'
  | 'ecdsa-sha2-nistp256'
  | 'ecdsa-sha2-nistp384'
  | 'ecdsa-sha2-nistp521'
  | 'rsa-sha2-256'
  | 'rsa-sha2-512';

/** Raised when a signature is malformed (never silently repaired). */
export class SignatureFormatError extends Error {
  readonly code = 'SIGNATURE_MALFORMED';
}

/**
 * The algorithm a CA key signs with. RSA uses rsa-sha2-512: OpenSSH ≥ 8.2
 * refuses `ssh-rsa` (SHA-1) CA signatures.
 */
export function signatureAlgorithmFor(caKey: SshPublicKey): SshSignatureAlgorithm {
  return caKey.type === 'ssh-rsa' ? 'rsa-sha2-512' : caKey.type;
}

/** The hash node:crypto must apply for an algorithm (undefined: Ed25519 hashes internally). */
export function hashFor(alg: SshSignatureAlgorithm): 'sha256' | 'sha384' | 'sha512' | undefined {
  if (alg === 'ssh-ed25519') return undefined;
  if (alg === 'rsa-sha2-256') return 'sha256';
  if (alg === 'rsa-sha2-512') return 'sha512';
  return CURVES[alg]!.hash;
}

/** `string alg, string sig` — the blob that goes into a certificate. */
export function encodeSignatureBlob(alg: SshSignatureAlgorithm, signature: Uint8Array): Buffer {
  return new SshWriter().string(alg).string(signature).toBuffer();
}

/**
 * Converts a DER `SEQUENCE { INTEGER r, INTEGER s }` (what KMS and
 * node:crypto return) to SSH's `mpint r, mpint s`. Parsed strictly: any
 * non-minimal length or integer, negative value or trailing byte is refused,
 * because a lenient parser is how mislabelled signatures get out.
 */
export function ecdsaDerToSsh(der: Uint8Array): Buffer {
  const buf = Buffer.from(der);
  let pos = 0;
  const byte = (): number => {
    if (pos >= buf.length) throw new SignatureFormatError('truncated DER');
    return buf[pos++]!;
  };
  const length = (): number => {
    const first = byte();
    if (first < 0x80) return first;
    if (first !== 0x81) throw new SignatureFormatError('unsupported DER length');
    const len = byte();
    if (len < 0x80) throw new SignatureFormatError('non-minimal DER length');
    return len;
  };
  const integer = (): Buffer => {
    if (byte() !== 0x02) throw new SignatureFormatError('expected INTEGER');
    const len = length();
    if (len === 0 || pos + len > buf.length) throw new SignatureFormatError('bad INTEGER length');
    const v = buf.subarray(pos, pos + len);
    pos += len;
    if ((v[0]! & 0x80) !== 0) throw new SignatureFormatError('negative INTEGER');
    if (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) throw new SignatureFormatError('non-minimal INTEGER');
    const magnitude = v[0] === 0 ? v.subarray(1) : v;
    if (magnitude.length === 0) throw new SignatureFormatError('zero INTEGER');
    return magnitude;
  };
  if (byte() !== 0x30) throw new SignatureFormatError('expected SEQUENCE');
  const seqLen = length();
  if (pos + seqLen !== buf.length) throw new SignatureFormatError('SEQUENCE length mismatch');
  const r = integer();
  const s = integer();
  if (pos !== buf.length) throw new SignatureFormatError('trailing DER bytes');
  return new SshWriter().mpint(r).mpint(s).toBuffer();
}

/**
 * Verifies an SSH signature blob over `data` with `key`. The blob's algorithm
 * must be exactly `expected`: a verifier that accepts whatever the blob names
 * would accept SHA-1 RSA signatures.
 */
export function verifySshSignature(key: SshPublicKey, expected: SshSignatureAlgorithm, data: Uint8Array, blob: Uint8Array): boolean {
  try {
    const r = new SshReader(Buffer.from(blob));
    const alg = r.text();
    const sig = r.string();
    r.end();
    if (alg !== expected) return false;
    if (alg.startsWith('ecdsa-')) {
      const inner = new SshReader(sig);
      const rr = inner.mpint();
      const ss = inner.mpint();
      inner.end();
      const n = CURVES[alg]!.coordinateBytes;
      if (rr.length === 0 || ss.length === 0 || rr.length > n || ss.length > n) return false;
      const p1363 = Buffer.concat([Buffer.alloc(n - rr.length), rr, Buffer.alloc(n - ss.length), ss]);
      return verify(hashFor(alg as SshSignatureAlgorithm), data, { key: key.keyObject, dsaEncoding: 'ieee-p1363' }, p1363);
    }
    return verify(hashFor(alg as SshSignatureAlgorithm) ?? null, data, key.keyObject, sig);
  } catch (err) {
    if (err instanceof SshWireError) return false;
    throw err;
  }
}

/**
 * Wraps what a signing backend returns (raw Ed25519/RSA bytes, DER ECDSA) as
 * an SSH signature blob. Shared by every Signer so each backend's output goes
 * through the same strict conversion.
 */
export function signatureBlobFromBackend(alg: SshSignatureAlgorithm, raw: Uint8Array): Buffer {
  return encodeSignatureBlob(alg, alg.startsWith('ecdsa-') ? ecdsaDerToSsh(raw) : raw);
}

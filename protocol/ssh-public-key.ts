// OpenSSH public keys: strict parsing of the types sshca accepts, conversion
// to and from node:crypto KeyObjects, and SHA256 fingerprints.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { SshReader, SshWireError, SshWriter, encodeMpintMagnitude } from './ssh-wire.js';
import { WeakKeyError, checkEd25519PublicKey, checkRsaPublicKey } from './weak-key-checks.js';

export type SshKeyType = 'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521' | 'ssh-rsa';

interface CurveInfo {
  readonly sshName: string;
  readonly jwkCrv: string;
  readonly coordinateBytes: number;
  readonly hash: 'sha256' | 'sha384' | 'sha512';
}

export const CURVES: Readonly<Record<string, CurveInfo>> = {
  'ecdsa-sha2-nistp256': { sshName: 'nistp256', jwkCrv: 'P-256', coordinateBytes: 32, hash: 'sha256' },
  'ecdsa-sha2-nistp384': { sshName: 'nistp384', jwkCrv: 'P-384', coordinateBytes: 48, hash: 'sha384' },
  'ecdsa-sha2-nistp521': { sshName: 'nistp521', jwkCrv: 'P-521', coordinateBytes: 66, hash: 'sha512' },
};

/** RSA moduli below this are refused (rule 14); above the max they only cost CPU. */
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 16384;

/** Why a public key was refused: `unsupported` for a type we never accept, `invalid` otherwise. */
export class PublicKeyError extends Error {
  get code(): string {
    return this.kind === 'unsupported' ? 'PUBLIC_KEY_UNSUPPORTED' : 'PUBLIC_KEY_INVALID';
  }

  constructor(
    readonly kind: 'invalid' | 'unsupported',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A parsed, validated OpenSSH public key. */
export interface SshPublicKey {
  readonly type: SshKeyType;
  /** The wire blob (`string type` followed by the type's fields). */
  readonly blob: Buffer;
  readonly keyObject: KeyObject;
  readonly bits: number;
}

export function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function toOpenSshLine(key: SshPublicKey, comment?: string): string {
  return `${key.type} ${key.blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** Parses `type base64 [comment]`; the type word must match the blob. */
export function parsePublicKeyLine(line: string): SshPublicKey {
  const parts = line.trim().split(/[ \t]+/);
  if (parts.length < 2) throw new PublicKeyError('invalid', 'expected "<type> <base64> [comment]"');
  const [type, b64] = parts as [string, string];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new PublicKeyError('invalid', 'bad base64');
  const key = publicKeyFromBlob(Buffer.from(b64, 'base64'));
  if (key.type !== type) throw new PublicKeyError('invalid', 'key type word does not match the key');
  return key;
}

/** Parses and validates a wire blob: exact field layout, points on curve, no degenerate values, RSA size. */
export function publicKeyFromBlob(blob: Buffer): SshPublicKey {
  try {
    const r = new SshReader(blob);
    const type = r.text();
    let jwk: Record<string, string>;
    if (type === 'ssh-ed25519') {
      const pk = r.string();
      if (pk.length !== 32) throw new PublicKeyError('invalid', 'ed25519 key must be 32 bytes');
      // node:crypto imports any 32 bytes as an Ed25519 key, zeros included.
      checkEd25519PublicKey(pk);
      jwk = { kty: 'OKP', crv: 'Ed25519', x: pk.toString('base64url') };
    } else if (type in CURVES) {
      const curve = CURVES[type]!;
      if (r.text() !== curve.sshName) throw new PublicKeyError('invalid', 'curve name does not match key type');
      const q = r.string();
      const n = curve.coordinateBytes;
      // Uncompressed points only: that is all OpenSSH emits.
      if (q.length !== 1 + 2 * n || q[0] !== 0x04) throw new PublicKeyError('invalid', 'EC point must be uncompressed');
      jwk = { kty: 'EC', crv: curve.jwkCrv, x: q.subarray(1, 1 + n).toString('base64url'), y: q.subarray(1 + n).toString('base64url') };
    } else if (type === 'ssh-rsa') {
      const e = r.mpint();
      const n = r.mpint();
      // Before OpenSSL sees them: it imports even or tiny-factor moduli as is.
      checkRsaPublicKey(e, n);
      jwk = { kty: 'RSA', e: e.toString('base64url'), n: n.toString('base64url') };
    } else if (type === 'ssh-dss' || type.includes('-cert-v01@openssh.com') || type.startsWith('sk-')) {
      throw new PublicKeyError('unsupported', `key type ${type} is not accepted`);
    } else {
      throw new PublicKeyError('unsupported', 'unknown key type');
    }
    r.end();
    let keyObject: KeyObject;
    try {
      // node:crypto refuses EC points that are not on the curve, coordinates
      // ≥ p (non-canonical) and (0,0); the point at infinity has no uncompressed
      // encoding (its SEC1 form, one 0x00 byte, fails the length check above).
      // NIST curves have cofactor 1, so every other point has full order and
      // there is no small-order point to refuse. Tests pin all of this.
      keyObject = createPublicKey({ key: jwk, format: 'jwk' });
    } catch (cause) {
      throw new PublicKeyError('invalid', `not a valid ${type} key: ${(cause as Error).message}`);
    }
    const bits = keyBits(keyObject);
    if (type === 'ssh-rsa') {
      if (bits < MIN_RSA_BITS) throw new PublicKeyError('invalid', `RSA keys need at least ${MIN_RSA_BITS} bits`);
      if (bits > MAX_RSA_BITS) throw new PublicKeyError('unsupported', `RSA keys above ${MAX_RSA_BITS} bits are not accepted`);
    }
    return { type: type as SshKeyType, blob: Buffer.from(blob), keyObject, bits };
  } catch (err) {
    if (err instanceof SshWireError) throw new PublicKeyError('invalid', `malformed key blob: ${err.message}`, { cause: err });
    if (err instanceof WeakKeyError) throw new PublicKeyError('invalid', err.message, { cause: err });
    throw err;
  }
}

/** Encodes a node:crypto public key as an OpenSSH key (used for CA keys). */
export function publicKeyFromKeyObject(keyObject: KeyObject): SshPublicKey {
  const jwk = keyObject.export({ format: 'jwk' });
  const w = new SshWriter();
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    w.string('ssh-ed25519').string(Buffer.from(jwk.x!, 'base64url'));
  } else if (jwk.kty === 'EC') {
    const entry = Object.entries(CURVES).find(([, c]) => c.jwkCrv === jwk.crv);
    if (!entry) throw new PublicKeyError('unsupported', `curve ${jwk.crv} is not supported`);
    const [type, curve] = entry;
    const pad = (b64: string): Buffer => {
      const raw = Buffer.from(b64, 'base64url');
      return Buffer.concat([Buffer.alloc(curve.coordinateBytes - raw.length), raw]);
    };
    w.string(type).string(curve.sshName).string(Buffer.concat([Buffer.from([4]), pad(jwk.x!), pad(jwk.y!)]));
  } else if (jwk.kty === 'RSA') {
    w.string('ssh-rsa')
      .string(encodeMpintMagnitude(Buffer.from(jwk.e!, 'base64url')))
      .string(encodeMpintMagnitude(Buffer.from(jwk.n!, 'base64url')));
  } else {
    throw new PublicKeyError('unsupported', `key type ${jwk.kty} is not supported`);
  }
  return publicKeyFromBlob(w.toBuffer());
}

function keyBits(keyObject: KeyObject): number {
  const d = keyObject.asymmetricKeyDetails;
  if (d?.modulusLength !== undefined) return d.modulusLength;
  if (keyObject.asymmetricKeyType === 'ed25519') return 256;
  const crv = d?.namedCurve;
  return crv === 'prime256v1' ? 256 : crv === 'secp384r1' ? 384 : crv === 'secp521r1' ? 521 : 0;
}

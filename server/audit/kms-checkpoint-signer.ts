// Audit checkpoints signed by a key in AWS KMS (issue 13): no exportable
// secret on the server. The JWS is assembled here; KMS signs its input
// through the same checked path as the CA keys (KmsSigner), and every
// signature is verified before it is stored.
import { verify, type KeyObject } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import { checkpointPayload, headPayload } from '../../protocol/audit-chain.js';
import { SshReader } from '../../protocol/ssh-wire.js';
import { KmsSigner } from '../ca/kms-signer.js';
import { UnavailableError } from '../errors.js';
import { jwkThumbprint, jwsHeader, type CheckpointJwk, type CheckpointKey } from './checkpoint-signer.js';

/** The KMS key specs a JWS can name: Ed25519 (EdDSA) and P-256 (ES256). */
export const CHECKPOINT_KEY_SPECS = ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256'] as const;

export class KmsCheckpointSigner implements CheckpointKey {
  readonly jwk: CheckpointJwk;
  private readonly header: string;
  private readonly publicKey: KeyObject;

  private constructor(private readonly signer: KmsSigner) {
    this.publicKey = signer.publicKey().keyObject;
    const jwk = this.publicKey.export({ format: 'jwk' });
    this.jwk =
      signer.keySpec === 'ECC_NIST_EDWARDS25519'
        ? { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, kid: jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x! }), alg: 'EdDSA', use: 'sig' }
        : { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, kid: jwkThumbprint({ kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y! }), alg: 'ES256', use: 'sig' };
    this.header = jwsHeader(this.jwk);
  }

  /** Opens the KMS key (DescribeKey, GetPublicKey, once); refuses specs a JWS cannot use. */
  static async open(deps: { kms: Pick<KMSClient, 'send'>; keyRef: string }): Promise<KmsCheckpointSigner> {
    const signer = await KmsSigner.open({ kms: deps.kms, keyRef: deps.keyRef });
    if (!(CHECKPOINT_KEY_SPECS as readonly string[]).includes(signer.keySpec)) {
      throw new UnavailableError('UNAVAILABLE_KMS_KEY_SPEC', `the checkpoint key ${signer.keyArn} is ${signer.keySpec}; it must be ${CHECKPOINT_KEY_SPECS.join(' or ')}`);
    }
    return new KmsCheckpointSigner(signer);
  }

  async sign(seq: number, hash: string): Promise<string> {
    return this.jws(checkpointPayload(seq, hash));
  }

  async signHead(seq: number, hash: string, at: string): Promise<string> {
    return this.jws(headPayload(seq, hash, at));
  }

  private async jws(payload: string): Promise<string> {
    const input = `${this.header}.${Buffer.from(payload).toString('base64url')}`;
    const raw = rawSignature(this.jwk.alg, await this.signer.sign(Buffer.from(input)));
    // No record is stored with a checkpoint that would not verify.
    const ok = this.jwk.alg === 'EdDSA' ? verify(null, Buffer.from(input), this.publicKey, raw) : verify('sha256', Buffer.from(input), { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, raw);
    if (!ok) throw new UnavailableError('UNAVAILABLE_KMS_RESPONSE', 'the KMS checkpoint signature did not verify', { retryAfterSeconds: 5 });
    return `${input}.${raw.toString('base64url')}`;
  }
}

/**
 * The JWS signature from an SSH signature blob: Ed25519's 64 bytes as they
 * are; ECDSA's mpint r and s as 32-byte big-endian halves (RFC 7518 §3.4).
 */
function rawSignature(alg: CheckpointJwk['alg'], blob: Buffer): Buffer {
  const reader = new SshReader(blob);
  reader.text();
  const sig = reader.string();
  if (alg === 'EdDSA') return sig;
  const inner = new SshReader(sig);
  // mpint(): the magnitude without its sign byte, big-endian.
  const half = (magnitude: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, 32 - magnitude.length)), magnitude.subarray(Math.max(0, magnitude.length - 32))]);
  return Buffer.concat([half(inner.mpint()), half(inner.mpint())]);
}

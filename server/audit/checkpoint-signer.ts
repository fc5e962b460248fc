// Signs audit checkpoints with an Ed25519 key kept apart from the CA key:
// whoever can sign certificates should not also be able to rewrite history.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkpointPayload, headPayload } from '../../protocol/audit-chain.js';
import { readOrCreate } from '../persistent-file.js';

/** The public half, as published at GET /v1/audit/checkpoint-key: Ed25519 (EdDSA) or P-256 (ES256). */
export type CheckpointJwk =
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string; readonly kid: string; readonly alg: 'EdDSA'; readonly use: 'sig' }
  | { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string; readonly kid: string; readonly alg: 'ES256'; readonly use: 'sig' };

/**
 * What signs audit checkpoints: a key in a file (dev, small installs) or in
 * KMS (kms-checkpoint-signer.ts), so no exportable secret need live on the
 * server.
 */
export interface CheckpointKey {
  readonly jwk: CheckpointJwk;
  sign(seq: number, hash: string): Promise<string>;
  /** Signs the head of an export: the chain as of `at`. */
  signHead(seq: number, hash: string, at: string): Promise<string>;
}

/** The JWS protected header for `jwk`, naming it by its RFC 7638 thumbprint. */
export function jwsHeader(jwk: CheckpointJwk): string {
  return Buffer.from(JSON.stringify({ alg: jwk.alg, kid: jwk.kid })).toString('base64url');
}

/** RFC 7638: the key names itself (members in lexicographic order). */
export function jwkThumbprint(jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string } | { kty: 'EC'; crv: 'P-256'; x: string; y: string }): string {
  const canonical = jwk.kty === 'OKP' ? `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}` : `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * Produces compact JWS (EdDSA) checkpoints with a key in memory. Both stores
 * sign a batch's checkpoint inside its write transaction (under the chain's
 * lock), so a batch and its checkpoint are committed together or not at all.
 */
export class CheckpointSigner implements CheckpointKey {
  readonly jwk: CheckpointJwk;
  private readonly header: string;

  constructor(private readonly key: KeyObject) {
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('the checkpoint key must be Ed25519');
    const x = createPublicKey(key).export({ format: 'jwk' }).x!;
    this.jwk = { kty: 'OKP', crv: 'Ed25519', x, kid: jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x }), alg: 'EdDSA', use: 'sig' };
    this.header = jwsHeader(this.jwk);
  }

  static openOrCreate(path: string): CheckpointSigner {
    return new CheckpointSigner(createPrivateKey(readOrCreate(path, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())));
  }

  static fromFile(path: string): CheckpointSigner {
    return new CheckpointSigner(createPrivateKey(readFileSync(path, 'utf8')));
  }

  signSync(seq: number, hash: string): string {
    return this.jws(checkpointPayload(seq, hash));
  }

  async sign(seq: number, hash: string): Promise<string> {
    return this.signSync(seq, hash);
  }

  async signHead(seq: number, hash: string, at: string): Promise<string> {
    return this.jws(headPayload(seq, hash, at));
  }

  private jws(payload: string): string {
    const input = `${this.header}.${Buffer.from(payload).toString('base64url')}`;
    return `${input}.${sign(null, Buffer.from(input), this.key).toString('base64url')}`;
  }
}

// Signs audit checkpoints with an Ed25519 key kept apart from the CA key:
// whoever can sign certificates should not also be able to rewrite history.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkpointPayload, headPayload } from '../../protocol/audit-chain.js';
import { readOrCreate } from '../persistent-file.js';

/** The public half, as published at GET /v1/audit/checkpoint-key. */
export interface CheckpointJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly use: 'sig';
}

/**
 * Produces compact JWS (EdDSA) checkpoints. Signing is synchronous on
 * purpose: it happens inside the store's write transaction, so a record and
 * its checkpoint are committed together or not at all.
 */
export class CheckpointSigner {
  readonly jwk: CheckpointJwk;
  private readonly header: string;

  constructor(private readonly key: KeyObject) {
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('the checkpoint key must be Ed25519');
    const x = createPublicKey(key).export({ format: 'jwk' }).x!;
    // RFC 7638 thumbprint: the key names itself.
    const kid = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
    this.jwk = { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' };
    this.header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid })).toString('base64url');
  }

  static openOrCreate(path: string): CheckpointSigner {
    return new CheckpointSigner(createPrivateKey(readOrCreate(path, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())));
  }

  static fromFile(path: string): CheckpointSigner {
    return new CheckpointSigner(createPrivateKey(readFileSync(path, 'utf8')));
  }

  sign(seq: number, hash: string): string {
    return this.jws(checkpointPayload(seq, hash));
  }

  /** Signs the head of an export: the chain as of `at`. */
  signHead(seq: number, hash: string, at: string): string {
    return this.jws(headPayload(seq, hash, at));
  }

  private jws(payload: string): string {
    const input = `${this.header}.${Buffer.from(payload).toString('base64url')}`;
    return `${input}.${sign(null, Buffer.from(input), this.key).toString('base64url')}`;
  }
}

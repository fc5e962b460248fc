// The role every CA key backend plays (LocalSigner now, KmsSigner later).
import type { SshPublicKey } from '../../protocol/ssh-public-key.js';
import type { SshSignatureAlgorithm } from './ssh-signature.js';

/** A CA key that can sign SSH data without exposing the private key. */
export interface Signer {
  /** The CA public key (cached: a KMS GetPublicKey quota is tiny). */
  publicKey(): SshPublicKey;
  /** The one algorithm this signer produces. */
  readonly algorithm: SshSignatureAlgorithm;
  /** Signs `data`, returning a complete SSH signature blob. */
  sign(data: Buffer): Promise<Buffer>;
  /** Resolves when the backend can sign now (for /readyz). */
  ready(): Promise<void>;
}

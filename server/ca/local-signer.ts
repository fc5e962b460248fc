// A CA key held in a local file: the embedded default and tests. Production
// keeps the CA key in KMS (KmsSigner); this one exists so sshca runs with no
// AWS account at all.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { publicKeyFromKeyObject, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import { readOrCreate } from '../persistent-file.js';
import type { Signer } from './signer.js';
import { hashFor, signatureAlgorithmFor, signatureBlobFromBackend, type SshSignatureAlgorithm } from './ssh-signature.js';

export const CA_KEY_TYPES = ['ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-4096'] as const;
export type CaKeyType = (typeof CA_KEY_TYPES)[number];

/** The CA key file exists but holds another type than configured. */
export class CaKeyMismatchError extends Error {
  readonly code = 'CONFIG_CA_KEY_MISMATCH';
}

/** Generates a private key of one of the CA key types. */
export function generateCaKey(type: CaKeyType): KeyObject {
  switch (type) {
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ecdsa-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'ecdsa-p521':
      return generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
    case 'rsa-4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey;
  }
}

function caKeyTypeOf(key: KeyObject): CaKeyType | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa' && d?.modulusLength === 4096) return 'rsa-4096';
  if (key.asymmetricKeyType === 'ec') {
    return ({ prime256v1: 'ecdsa-p256', secp384r1: 'ecdsa-p384', secp521r1: 'ecdsa-p521' } as const)[
      d?.namedCurve as 'prime256v1' | 'secp384r1' | 'secp521r1'
    ];
  }
  return undefined;
}

/** Signs with a private key held in memory, loaded from (or created in) a PEM file. */
export class LocalSigner implements Signer {
  readonly algorithm: SshSignatureAlgorithm;
  private readonly pub: SshPublicKey;

  constructor(private readonly privateKey: KeyObject) {
    this.pub = publicKeyFromKeyObject(createPublicKey(privateKey));
    this.algorithm = signatureAlgorithmFor(this.pub);
  }

  /**
   * Loads the key at `path`, creating it (directory 0700, file 0600, never
   * overwriting) on first start.
   */
  static openOrCreate(path: string, type: CaKeyType): LocalSigner {
    const pem = readOrCreate(path, () => generateCaKey(type).export({ format: 'pem', type: 'pkcs8' }).toString());
    const signer = LocalSigner.fromFile(path, pem);
    if (signer.keyType !== type) throw new CaKeyMismatchError(`CA key ${path} is ${signer.keyType}, not ${type}`);
    return signer;
  }

  /** Loads an existing key file of any supported type (production `file:` keys). */
  static fromFile(path: string, pem = readFileSync(path, 'utf8')): LocalSigner {
    const key = createPrivateKey(pem);
    if (!caKeyTypeOf(key)) throw new CaKeyMismatchError(`CA key ${path} is not one of ${CA_KEY_TYPES.join(', ')}`);
    return new LocalSigner(key);
  }

  get keyType(): CaKeyType {
    return caKeyTypeOf(this.privateKey)!;
  }

  publicKey(): SshPublicKey {
    return this.pub;
  }

  async sign(data: Buffer): Promise<Buffer> {
    const raw = sign(hashFor(this.algorithm) ?? null, data, this.algorithm.startsWith('ecdsa-') ? { key: this.privateKey, dsaEncoding: 'der' } : this.privateKey);
    return signatureBlobFromBackend(this.algorithm, raw);
  }

  async ready(): Promise<void> {}
}

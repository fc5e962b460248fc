// A CA key held in AWS KMS, used only through kms:Sign. The private key
// never exists outside KMS; every answer KMS gives is checked before use.
import { createHash, createPublicKey } from 'node:crypto';
import { DescribeKeyCommand, GetPublicKeyCommand, SignCommand, type KMSClient, type KeyMetadata } from '@aws-sdk/client-kms';
import { publicKeyFromKeyObject, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import { RequestError, UnavailableError } from '../errors.js';
import { ConcurrencyLimit } from './concurrency-limit.js';
import type { Signer } from './signer.js';
import { SignatureFormatError, signatureBlobFromBackend, type SshSignatureAlgorithm } from './ssh-signature.js';

interface SpecInfo {
  readonly ssh: SshSignatureAlgorithm;
  readonly kms: string;
  readonly messageType: 'RAW' | 'DIGEST';
  readonly hash?: 'sha256' | 'sha384' | 'sha512';
  readonly keyType: string;
}

/**
 * KMS key spec → how to sign with it. Ed25519 is pure Ed25519 over the raw
 * message (ED25519_PH_SHA_512 is a different scheme OpenSSH cannot verify);
 * ECDSA and RSA sign a digest we compute. RSA uses SHA-512 so OpenSSH sees
 * rsa-sha2-512, never SHA-1 `ssh-rsa`.
 */
export const KMS_KEY_SPECS: Readonly<Record<string, SpecInfo>> = {
  ECC_NIST_EDWARDS25519: { ssh: 'ssh-ed25519', kms: 'ED25519_SHA_512', messageType: 'RAW', keyType: 'ssh-ed25519' },
  ECC_NIST_P256: { ssh: 'ecdsa-sha2-nistp256', kms: 'ECDSA_SHA_256', messageType: 'DIGEST', hash: 'sha256', keyType: 'ecdsa-sha2-nistp256' },
  ECC_NIST_P384: { ssh: 'ecdsa-sha2-nistp384', kms: 'ECDSA_SHA_384', messageType: 'DIGEST', hash: 'sha384', keyType: 'ecdsa-sha2-nistp384' },
  ECC_NIST_P521: { ssh: 'ecdsa-sha2-nistp521', kms: 'ECDSA_SHA_512', messageType: 'DIGEST', hash: 'sha512', keyType: 'ecdsa-sha2-nistp521' },
  RSA_2048: { ssh: 'rsa-sha2-512', kms: 'RSASSA_PKCS1_V1_5_SHA_512', messageType: 'DIGEST', hash: 'sha512', keyType: 'ssh-rsa' },
  RSA_3072: { ssh: 'rsa-sha2-512', kms: 'RSASSA_PKCS1_V1_5_SHA_512', messageType: 'DIGEST', hash: 'sha512', keyType: 'ssh-rsa' },
  RSA_4096: { ssh: 'rsa-sha2-512', kms: 'RSASSA_PKCS1_V1_5_SHA_512', messageType: 'DIGEST', hash: 'sha512', keyType: 'ssh-rsa' },
};

/** KMS refuses RAW messages above this; we refuse first, with a clear 400. */
export const KMS_RAW_MESSAGE_LIMIT = 4096;

type Kms = Pick<KMSClient, 'send'>;

/** Maps a KMS failure to a code an operator can act on; the key ARN goes to the log via `cause`. */
export function kmsError(err: unknown, keyArn: string, operation: string): UnavailableError {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const cause = new Error(`KMS ${operation} on ${keyArn}: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err });
  switch (e.name) {
    case 'ThrottlingException':
      // After the SDK's adaptive retries: a transient condition, so the generic code with a short Retry-After.
      // A code of its own (as STS throttling has): the fix is a quota, not an outage.
      return new UnavailableError('UNAVAILABLE_KMS_THROTTLED', 'KMS is throttling the CA key; retry shortly', { cause, retryAfterSeconds: 1 });
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return new UnavailableError('UNAVAILABLE_KMS_KEY_DISABLED', 'the CA key is disabled or pending deletion', { cause, retryAfterSeconds: 60 });
    case 'AccessDeniedException':
      return new UnavailableError('UNAVAILABLE_KMS_ACCESS_DENIED', 'the server may not use the CA key', { cause, retryAfterSeconds: 60 });
    case 'CredentialsProviderError':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
    case 'ExpiredTokenException':
      return new UnavailableError('UNAVAILABLE_KMS_CREDENTIALS', 'the server has no valid AWS credentials for KMS', { cause, retryAfterSeconds: 60 });
    case 'NotFoundException':
      return new UnavailableError('UNAVAILABLE_KMS_KEY_NOT_FOUND', 'the CA key does not exist', { cause, retryAfterSeconds: 60 });
    case 'InvalidKeyUsageException':
    case 'UnsupportedOperationException':
      return new UnavailableError('UNAVAILABLE_KMS_KEY_USAGE', 'the CA key cannot sign this way', { cause, retryAfterSeconds: 60 });
    default:
      return new UnavailableError('UNAVAILABLE_KMS', `KMS ${operation} failed`, { cause, retryAfterSeconds: 5 });
  }
}

function invalid(code: string, message: string, keyArn: string): UnavailableError {
  return new UnavailableError(code, message, { cause: new Error(`${message}: ${keyArn}`), retryAfterSeconds: 60 });
}

/** Checks a key's metadata: enabled, SIGN_VERIFY, a spec we can use (and the one expected). */
function checkMetadata(meta: KeyMetadata | undefined, keyRef: string, expectedSpec?: string): { arn: string; spec: SpecInfo; specName: string } {
  if (!meta?.Arn || !meta.KeySpec) throw invalid('UNAVAILABLE_KMS_RESPONSE', 'DescribeKey returned no key metadata', keyRef);
  if (keyRef.startsWith('arn:') && !keyRef.includes(':alias/') && meta.Arn !== keyRef) throw invalid('UNAVAILABLE_KMS_RESPONSE', 'DescribeKey answered for another key', keyRef);
  if (meta.Enabled !== true || meta.KeyState !== 'Enabled') throw invalid('UNAVAILABLE_KMS_KEY_DISABLED', `the CA key is ${meta.KeyState ?? 'not enabled'}`, meta.Arn);
  if (meta.KeyUsage !== 'SIGN_VERIFY') throw invalid('UNAVAILABLE_KMS_KEY_USAGE', `the CA key's usage is ${meta.KeyUsage}, not SIGN_VERIFY`, meta.Arn);
  const spec = KMS_KEY_SPECS[meta.KeySpec];
  if (!spec || (expectedSpec !== undefined && meta.KeySpec !== expectedSpec)) throw invalid('UNAVAILABLE_KMS_KEY_SPEC', `the CA key spec ${meta.KeySpec} is not usable here`, meta.Arn);
  return { arn: meta.Arn, spec, specName: meta.KeySpec };
}

/** Signs through kms:Sign; built by `KmsSigner.open`, which checks the key once. */
export class KmsSigner implements Signer {
  readonly algorithm: SshSignatureAlgorithm;
  private readyUntil = 0;

  private constructor(
    private readonly kms: Kms,
    /** Always the key ARN, even when configured by alias: an alias retargeted later must not change the CA. */
    readonly keyArn: string,
    readonly keySpec: string,
    private readonly spec: SpecInfo,
    private readonly pub: SshPublicKey,
    private readonly limit: ConcurrencyLimit,
    private readonly now: () => number,
  ) {
    this.algorithm = spec.ssh;
  }

  /**
   * DescribeKey and GetPublicKey once (GetPublicKey's quota is tiny, so the
   * key is cached for the signer's life). `keyRef` is a key ARN or an alias.
   */
  static async open(deps: { kms: Kms; keyRef: string; expectedSpec?: string; maxConcurrency?: number; now?: () => number }): Promise<KmsSigner> {
    let described;
    try {
      described = await deps.kms.send(new DescribeKeyCommand({ KeyId: deps.keyRef }));
    } catch (err) {
      throw kmsError(err, deps.keyRef, 'DescribeKey');
    }
    const { arn, spec, specName } = checkMetadata(described.KeyMetadata, deps.keyRef, deps.expectedSpec);
    let got;
    try {
      got = await deps.kms.send(new GetPublicKeyCommand({ KeyId: arn }));
    } catch (err) {
      throw kmsError(err, arn, 'GetPublicKey');
    }
    if (got.KeyId !== arn || got.KeySpec !== specName || got.KeyUsage !== 'SIGN_VERIFY' || !got.PublicKey) {
      throw invalid('UNAVAILABLE_KMS_RESPONSE', 'GetPublicKey answered for another key or spec', arn);
    }
    let pub: SshPublicKey;
    try {
      pub = publicKeyFromKeyObject(createPublicKey({ key: Buffer.from(got.PublicKey), format: 'der', type: 'spki' }));
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_KMS_RESPONSE', 'GetPublicKey returned an unusable key', { cause, retryAfterSeconds: 60 });
    }
    if (pub.type !== spec.keyType) throw invalid('UNAVAILABLE_KMS_RESPONSE', `GetPublicKey returned a ${pub.type} key for spec ${specName}`, arn);
    return new KmsSigner(deps.kms, arn, specName, spec, pub, new ConcurrencyLimit(deps.maxConcurrency ?? 32, 256), deps.now ?? Date.now);
  }

  publicKey(): SshPublicKey {
    return this.pub;
  }

  async sign(data: Buffer): Promise<Buffer> {
    // KMS caps RAW messages; a larger certificate must fail here, as the
    // caller's 400, not as a KMS error or a silently different scheme.
    if (this.spec.messageType === 'RAW' && data.length > KMS_RAW_MESSAGE_LIMIT) {
      throw new RequestError('REQUEST_CERTIFICATE_TOO_LARGE', `the certificate to sign is ${data.length} bytes; an Ed25519 KMS key signs at most ${KMS_RAW_MESSAGE_LIMIT}`);
    }
    const message = this.spec.hash ? createHash(this.spec.hash).update(data).digest() : data;
    const out = await this.limit.run(async () => {
      try {
        return await this.kms.send(new SignCommand({ KeyId: this.keyArn, Message: message, MessageType: this.spec.messageType, SigningAlgorithm: this.spec.kms as never }));
      } catch (err) {
        throw kmsError(err, this.keyArn, 'Sign');
      }
    });
    // An answer for another key or algorithm is never used, even if it verified.
    if (out.KeyId !== this.keyArn || out.SigningAlgorithm !== this.spec.kms || !out.Signature) {
      throw invalid('UNAVAILABLE_KMS_RESPONSE', 'KMS answered Sign for another key or algorithm', this.keyArn);
    }
    try {
      return signatureBlobFromBackend(this.algorithm, out.Signature);
    } catch (err) {
      if (err instanceof SignatureFormatError) throw new UnavailableError('UNAVAILABLE_KMS_RESPONSE', 'KMS returned a malformed signature', { cause: err, retryAfterSeconds: 5 });
      throw err;
    }
  }

  /** DescribeKey at most every 30 s: readiness probes must not eat the key's quota. */
  async ready(): Promise<void> {
    if (this.now() < this.readyUntil) return;
    let described;
    try {
      described = await this.kms.send(new DescribeKeyCommand({ KeyId: this.keyArn }));
    } catch (err) {
      throw kmsError(err, this.keyArn, 'DescribeKey');
    }
    checkMetadata(described.KeyMetadata, this.keyArn, this.keySpec);
    this.readyUntil = this.now() + 30_000;
  }
}

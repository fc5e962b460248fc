// Turns a decided template into a signed, self-verified certificate.
import { randomBytes } from 'node:crypto';
import { fingerprintOf } from '../../protocol/ssh-public-key.js';
import { UnavailableError } from '../errors.js';
import { appendSignature, certificateTypeName, encodeToBeSigned } from './certificate-encoder.js';
import type { CertificateTemplate } from './certificate-template.js';
import type { Signer } from './signer.js';
import { verifySshSignature } from './ssh-signature.js';

/** A signed certificate ready to record and return. */
export interface IssuedCertificate {
  readonly template: CertificateTemplate;
  /** `<cert type> <base64> <key id>` — the `-cert.pub` file line. */
  readonly line: string;
  readonly blob: Buffer;
  readonly fingerprint: string;
  readonly caFingerprint: string;
}

/** Signs certificates with one Signer and refuses to hand out any it cannot verify. */
export class CertificateAuthority {
  private readonly signer: Signer;
  private readonly random: (n: number) => Buffer;

  constructor(deps: { signer: Signer; random?: (n: number) => Buffer }) {
    this.signer = deps.signer;
    this.random = deps.random ?? randomBytes;
  }

  async issue(template: CertificateTemplate): Promise<IssuedCertificate> {
    const caKey = this.signer.publicKey();
    const tbs = encodeToBeSigned(template, this.random(32), caKey);
    const signature = await this.signer.sign(tbs);
    // Rule 13: a signer bug (or a KMS answer for another key) must never
    // reach a user as a certificate that sshd would reject or misread.
    if (!verifySshSignature(caKey, this.signer.algorithm, tbs, signature)) {
      throw new UnavailableError('UNAVAILABLE_SIGNER', 'the CA signature did not verify; nothing was issued');
    }
    const blob = appendSignature(tbs, signature);
    return {
      template,
      blob,
      line: `${certificateTypeName(template.publicKey)} ${blob.toString('base64')} ${template.keyId.replace(/\s/g, '_')}`,
      fingerprint: fingerprintOf(blob),
      caFingerprint: fingerprintOf(caKey.blob),
    };
  }
}

// `sshca status`: is there a certificate valid for long enough? Local only.
import { readCertificate } from './certificate-info.js';
import { keyPaths, readCertificateLine } from './key-files.js';

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid' | 'missing' | 'unreadable';

export interface StatusReport {
  readonly state: CertificateState;
  readonly certificatePath: string;
  readonly principals?: readonly string[];
  readonly serial?: string;
  readonly keyId?: string;
  readonly validAfter?: string;
  readonly validBefore?: string;
  readonly caFingerprint?: string;
}

/** A certificate counts as valid only if it stays valid for `minValidSeconds` more. */
export async function status(options: { key?: string; home?: string; now: Date; minValidSeconds: number }): Promise<StatusReport> {
  const paths = keyPaths(options.key, options.home);
  const line = await readCertificateLine(paths);
  if (line === undefined) return { state: 'missing', certificatePath: paths.certificate };
  let info;
  try {
    info = readCertificate(line);
  } catch {
    return { state: 'unreadable', certificatePath: paths.certificate };
  }
  const now = Math.floor(options.now.getTime() / 1000);
  const state: CertificateState = now < info.validAfter ? 'not-yet-valid' : now + options.minValidSeconds >= info.validBefore ? 'expired' : 'valid';
  return {
    state,
    certificatePath: paths.certificate,
    principals: info.principals,
    serial: info.serial.toString(),
    keyId: info.keyId,
    validAfter: new Date(info.validAfter * 1000).toISOString(),
    validBefore: new Date(info.validBefore * 1000).toISOString(),
    caFingerprint: info.caFingerprint,
  };
}

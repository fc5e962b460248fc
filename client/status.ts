// `sshca status`: is there a certificate valid for long enough? Local only,
// unless asked to check the server's revocation list too.
import { readCertificate } from './certificate-info.js';
import { remainingText, statusLine, validityAt, type ValidityState } from './certificate-validity.js';
import { keyPaths, readCertificateLine } from './key-files.js';
import type { RevocationState } from './revocation-check.js';

/** `revoked` only with `--check-revocation`, and then it wins over the rest. */
export type CertificateState = ValidityState | 'revoked' | 'missing' | 'unreadable';

export interface StatusReport {
  readonly state: CertificateState;
  readonly certificatePath: string;
  readonly principals?: readonly string[];
  readonly serial?: string;
  readonly keyId?: string;
  readonly validAfter?: string;
  readonly validBefore?: string;
  /** Whole seconds left, rounded down; 0 or negative once expired. */
  readonly remainingSeconds?: number;
  readonly caFingerprint?: string;
  /** With `checkRevocation`: what the server's KRL says. */
  readonly revocation?: RevocationState;
  readonly krlVersion?: string;
  /** Why the revocation state is `unknown`. */
  readonly revocationWarning?: { readonly code: string; readonly message: string };
}

/**
 * A certificate counts as valid only if it stays valid for `minValidSeconds`
 * more (`expiring` otherwise) and, with `checkRevocation`, is not revoked.
 */
export async function status(options: { key?: string; home?: string; now: Date; minValidSeconds: number; checkRevocation?: { server: string; home: string } }): Promise<StatusReport> {
  const paths = keyPaths(options.key, options.home);
  const line = await readCertificateLine(paths);
  if (line === undefined) return { state: 'missing', certificatePath: paths.certificate };
  let info;
  try {
    info = readCertificate(line);
  } catch {
    return { state: 'unreadable', certificatePath: paths.certificate };
  }
  const validity = validityAt(info, options.now.getTime(), options.minValidSeconds);
  const report: StatusReport = {
    state: validity.state,
    certificatePath: paths.certificate,
    principals: info.principals,
    serial: info.serial.toString(),
    keyId: info.keyId,
    validAfter: new Date(info.validAfter * 1000).toISOString(),
    validBefore: new Date(info.validBefore * 1000).toISOString(),
    remainingSeconds: validity.remainingSeconds,
    caFingerprint: info.caFingerprint,
  };
  if (!options.checkRevocation) return report;
  // Loaded only here: plain `status` stays free of the network code.
  const { checkRevocation } = await import('./revocation-check.js');
  const check = await checkRevocation({ ...options.checkRevocation, subject: info });
  return {
    ...report,
    ...(check.state === 'revoked' ? { state: 'revoked' as const } : {}),
    revocation: check.state,
    ...(check.krlVersion !== undefined ? { krlVersion: check.krlVersion } : {}),
    ...(check.problem ? { revocationWarning: check.problem } : {}),
  };
}

/** What `sshca status` prints (without --json). */
export function statusText(report: StatusReport): string {
  const { principals, validBefore, serial, caFingerprint, remainingSeconds } = report;
  if (!principals || !validBefore || serial === undefined || caFingerprint === undefined || remainingSeconds === undefined) return `${report.state}: ${report.certificatePath}\n`;
  const details = report.state === 'revoked'
    ? [`revoked by the server's KRL (version ${report.krlVersion ?? '?'})`]
    // Every other state of a readable certificate is a ValidityState.
    : [remainingText({ state: report.state as ValidityState, remainingSeconds }), ...(report.revocation === 'not-revoked' ? ['not revoked'] : report.revocation === 'unknown' ? ['revocation unknown'] : [])];
  return statusLine(report.state, { principals, validBefore: Date.parse(validBefore) / 1000, serial, caFingerprint }, details);
}

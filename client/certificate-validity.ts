// How long a certificate stays valid, judged the way sshd judges it, and
// said in words. Both `sshca status` paths (status.ts and the synchronous
// status-fast.ts) use it, so they never disagree; it imports nothing.

/**
 * `expiring`: valid now, but for less than the time asked for (`--min-valid`);
 * not the same as `expired`, which sshd would refuse.
 */
export type ValidityState = 'valid' | 'expiring' | 'expired' | 'not-yet-valid';

/** A certificate's validity at one moment. */
export interface Validity {
  readonly state: ValidityState;
  /**
   * Whole seconds until validBefore, rounded down (never more time than
   * there is); 0 or negative once expired.
   */
  readonly remainingSeconds: number;
}

/**
 * sshd compares whole seconds (time(NULL)): not yet valid while now <
 * validAfter, expired from now ≥ validBefore. "Valid for `minValidSeconds`
 * more" is measured to the millisecond, so 60.0 s left satisfies 60 s and
 * 59.9 s does not.
 */
export function validityAt(cert: { readonly validAfter: number; readonly validBefore: number }, nowMs: number, minValidSeconds: number): Validity {
  const remainingMs = cert.validBefore * 1000 - nowMs;
  const remainingSeconds = Math.floor(remainingMs / 1000);
  const nowSeconds = Math.floor(nowMs / 1000);
  if (nowSeconds < cert.validAfter) return { state: 'not-yet-valid', remainingSeconds };
  if (nowSeconds >= cert.validBefore) return { state: 'expired', remainingSeconds };
  return { state: remainingMs < minValidSeconds * 1000 ? 'expiring' : 'valid', remainingSeconds };
}

/** `59s`, `1m`, `1m30s`, `7h59m`: the two largest units, rounded down. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return m > 0 ? `${h}h${m}m` : `${h}h`;
  if (m > 0) return sec > 0 ? `${m}m${sec}s` : `${m}m`;
  return `${sec}s`;
}

/** The remaining time as `status` prints it: `59s left`, `expired 5m ago`. */
export function remainingText(v: Validity): string {
  if (v.state === 'expired') return v.remainingSeconds <= -1 ? `expired ${formatSeconds(-v.remainingSeconds)} ago` : 'expired just now';
  if (v.state === 'not-yet-valid') return 'not valid yet';
  return v.remainingSeconds >= 1 ? `${formatSeconds(v.remainingSeconds)} left` : 'less than 1s left';
}

/**
 * The line both `sshca status` paths print for a readable certificate:
 * `valid: alice until 2030-01-01T00:00:00.000Z (7h59m left; serial 42, CA SHA256:…)`.
 */
export function statusLine(state: string, cert: { readonly principals: readonly string[]; readonly validBefore: number; readonly serial: bigint | string; readonly caFingerprint: string }, details: readonly string[]): string {
  return `${state}: ${cert.principals.join(', ')} until ${new Date(cert.validBefore * 1000).toISOString()} (${[...details, `serial ${cert.serial}, CA ${cert.caFingerprint}`].join('; ')})\n`;
}

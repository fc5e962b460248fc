// Who may get which principals, for how long (DESIGN.md §3, rules 9–10).
import type { CallerIdentity } from '../identity/caller-identity.js';
import { PolicyError } from '../errors.js';
import type { HostRules } from './policy-file.js';
import { formatDuration } from '../../protocol/duration.js';

/** What the caller asked for (all optional: policy fills the defaults). */
export interface CertificateRequest {
  readonly principals?: readonly string[];
  readonly ttlSeconds?: number;
  readonly reason?: string;
  /** The caller's address, for `source-address` templates. */
  readonly sourceIp?: string;
}

/** What policy grants for one request. */
export interface PolicyDecision {
  readonly principals: readonly string[];
  readonly ttlSeconds: number;
  readonly extensions: Readonly<Record<string, string>>;
  readonly criticalOptions: Readonly<Record<string, string>>;
  /** The rule that decided, for the audit record. */
  readonly ruleName?: string;
}

/** Decides a request, or throws a PolicyError with a POLICY_* code. */
export interface Policy {
  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision;
  /** The sshca roles (`admin`, `auditor`) the identity holds. */
  rolesFor(identity: CallerIdentity): readonly string[];
  /** The `hosts:` section, when host certificates are issued at all. */
  hostRules(): HostRules | undefined;
}

/** Rule 9: principals are 1–64 of [A-Za-z0-9._@-]; never empty, never a pattern. */
export const PRINCIPAL_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;

export function assertValidPrincipal(principal: string): void {
  if (!PRINCIPAL_PATTERN.test(principal)) {
    throw new PolicyError('POLICY_PRINCIPAL_INVALID', `principal ${JSON.stringify(principal.slice(0, 80))} is not 1–64 characters of [A-Za-z0-9._@-]`);
  }
}

/**
 * Narrows the granted principals to those requested. Requesting nothing means
 * all granted; requesting anything not granted is refused, never dropped,
 * so the user learns they asked for something they may not have.
 */
export function selectPrincipals(granted: readonly string[], requested: readonly string[] | undefined): string[] {
  if (requested === undefined) return [...granted];
  const wanted = [...new Set(requested)];
  for (const p of wanted) {
    assertValidPrincipal(p);
    // The caller is authenticated: telling them what they may have is the next step, not a leak.
    if (!granted.includes(p)) throw new PolicyError('POLICY_PRINCIPAL_DENIED', `principal ${p} is not granted to this identity; it may have: ${granted.length ? granted.join(', ') : 'none'}`);
  }
  return wanted;
}

/** TTL: the default when none is asked; above the cap is refused (not cut). */
export function selectTtl(requested: number | undefined, defaultSeconds: number, maxSeconds: number): number {
  const ttl = requested ?? defaultSeconds;
  if (ttl > maxSeconds) throw new PolicyError('POLICY_TTL_EXCEEDED', `a lifetime of ${formatDuration(ttl)} is more than this identity may have: at most ${formatDuration(maxSeconds)}`);
  return ttl;
}

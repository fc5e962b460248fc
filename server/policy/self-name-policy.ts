// The embedded default's policy (and the interim production one until policy
// files arrive): an IAM user may log in as its own user name, nothing else.
// Which accounts may authenticate at all is the authenticator's allowlist.
import { DEFAULT_USER_EXTENSIONS } from '../ca/certificate-template.js';
import { PolicyError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { assertValidPrincipal, selectPrincipals, selectTtl, type CertificateRequest, type Policy, type PolicyDecision } from './policy.js';

export const DEFAULT_TTL_SECONDS = 8 * 3600;
export const MAX_TTL_SECONDS = 12 * 3600;

/** Grants IAM user `name` the single principal `name`. */
export class SelfNamePolicy implements Policy {
  constructor(
    private readonly options: {
      readonly defaultTtlSeconds?: number;
      readonly maxTtlSeconds?: number;
    },
  ) {}

  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision {
    if (identity.kind !== 'iam-user') {
      throw new PolicyError('POLICY_NO_RULE', 'no rule grants this identity a certificate');
    }
    assertValidPrincipal(identity.name);
    // Rule 9: root only when a rule names it literally; this policy never does.
    if (identity.name === 'root' || request.principals?.includes('root')) {
      throw new PolicyError('POLICY_PRINCIPAL_DENIED', 'principal root is never granted by this policy');
    }
    const principals = selectPrincipals([identity.name], request.principals);
    const ttlSeconds = selectTtl(request.ttlSeconds, this.options.defaultTtlSeconds ?? DEFAULT_TTL_SECONDS, this.options.maxTtlSeconds ?? MAX_TTL_SECONDS);
    return { principals, ttlSeconds, extensions: DEFAULT_USER_EXTENSIONS, criticalOptions: {} };
  }
}

// The policy of a policy file: the first rule that matches the identity
// decides (rules read top to bottom, like a firewall), so one look at the
// file tells what a person gets.
import { PolicyError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import type { HostRules, PolicyDocument, PolicyRole, PolicyRule } from './policy-file.js';
import { PRINCIPAL_PATTERN, selectPrincipals, selectTtl, type CertificateRequest, type Policy, type PolicyDecision } from './policy.js';
import { renderSourceAddress } from './source-address.js';

/** A key of a rule's `match`, as the policy file writes it. */
export type MatchKey = 'account' | 'iamUser' | 'role' | 'ssoPermissionSet';

/**
 * The first `match` key (in this order) the identity does not fit, or
 * undefined when the rule matches. The one test of a match: the server's
 * decision and `sshca-server policy explain`'s "why not" are the same code.
 */
export function ruleMismatch(rule: PolicyRule, id: CallerIdentity): MatchKey | undefined {
  const m = rule.match;
  if (m.accounts && !m.accounts.includes(id.accountId)) return 'account';
  if (m.iamUsers && !(id.kind === 'iam-user' && m.iamUsers.includes(id.arn))) return 'iamUser';
  if (m.roles && !(id.roleArn !== undefined && m.roles.some((r) => id.roleArn!.startsWith(r.prefix) && r.name.test(id.roleArn!.slice(r.prefix.length))))) return 'role';
  if (m.ssoPermissionSets && !(id.ssoPermissionSet !== undefined && m.ssoPermissionSets.includes(id.ssoPermissionSet))) return 'ssoPermissionSet';
  return undefined;
}

/**
 * Whether the rule names this identity: its IAM user ARN, its exact role
 * ARN, or its SSO permission set. Checked again here although
 * parsePolicyFile refuses role-granting rules that name nobody, so a
 * document built any other way cannot make an account-wide match an admin.
 */
export function namesIdentity(rule: PolicyRule, id: CallerIdentity): boolean {
  const m = rule.match;
  if (m.iamUsers && id.kind === 'iam-user' && m.iamUsers.includes(id.arn)) return true;
  if (m.roles && id.roleArn !== undefined && m.roles.some((r) => !/[*?]/.test(r.pattern) && r.pattern === id.roleArn)) return true;
  return m.ssoPermissionSets !== undefined && id.ssoPermissionSet !== undefined && m.ssoPermissionSets.includes(id.ssoPermissionSet);
}

/**
 * The session name a template may use, or undefined. Only trusted session
 * names count (anyone who assumes another role chooses its own); with
 * `sessionDomains`, only `local@domain` names in one of those domains, so
 * alice@corp.com and alice@other.org never both become `alice`.
 */
export function sessionFor(rule: PolicyRule, id: CallerIdentity): string | undefined {
  if (!id.sessionTrusted || id.sessionName === undefined) return undefined;
  if (rule.sessionDomains === undefined) return id.sessionName;
  const parts = id.sessionName.split('@');
  // Exactly one @, a local part, and the whole domain equal to a listed one:
  // no suffix or prefix matching (example.com.evil.org, evil-example.com).
  if (parts.length !== 2 || !parts[0] || !rule.sessionDomains.includes(parts[1]!.toLowerCase())) return undefined;
  return id.sessionName;
}

/**
 * Renders a principal template. A placeholder with no trustworthy value
 * (an untrusted session name, `{{user}}` for a role) drops the principal
 * rather than guessing. A template may never produce `root`: root is only
 * granted when a rule writes it literally (rule 9).
 */
export function renderPrincipal(template: string, rule: PolicyRule, id: CallerIdentity): string | undefined {
  if (!template.includes('{{')) return template;
  const session = sessionFor(rule, id);
  const values: Record<string, string | undefined> = {
    user: id.kind === 'iam-user' ? id.name : undefined,
    session,
    sessionLocalPart: session?.split('@')[0],
  };
  let missing = false;
  const out = template.replace(/\{\{(\w+)\}\}/g, (_, v: string) => values[v] ?? ((missing = true), ''));
  if (missing || out === 'root' || !PRINCIPAL_PATTERN.test(out)) return undefined;
  return out;
}

/** Every principal the rule grants this identity (possibly none). */
export function grantedPrincipals(rule: PolicyRule, id: CallerIdentity): string[] {
  return [...new Set(rule.principals.map((t) => renderPrincipal(t, rule, id)).filter((p): p is string => p !== undefined))];
}

/** Decides requests by a PolicyDocument. */
export class FilePolicy implements Policy {
  constructor(readonly document: PolicyDocument) {}

  private ruleFor(identity: CallerIdentity): PolicyRule | undefined {
    return this.document.rules.find((r) => ruleMismatch(r, identity) === undefined);
  }

  /**
   * Roles (`admin`, `auditor`) of the identity's first matching rule — only
   * when that rule names the identity (rule 17) and grants it at least one
   * principal: a rule that cannot say who the caller is (an untrusted
   * session filling `{{session}}`) gives no certificate and no role either.
   */
  rolesFor(identity: CallerIdentity): readonly PolicyRole[] {
    if (identity.kind === 'ec2-instance') return [];
    const rule = this.ruleFor(identity);
    if (!rule || rule.roles.length === 0) return [];
    if (!namesIdentity(rule, identity) || grantedPrincipals(rule, identity).length === 0) return [];
    return rule.roles;
  }

  accountAllowed(accountId: string): boolean {
    return this.document.accounts.includes(accountId);
  }

  hostRules(): HostRules | undefined {
    return this.document.hosts;
  }

  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision {
    // An instance proves which machine it is, never which person: an
    // account-wide rule must not give it a user certificate.
    if (identity.kind === 'ec2-instance') throw new PolicyError('POLICY_INSTANCE_IDENTITY', 'an instance identity gets host certificates only');
    const rule = this.ruleFor(identity);
    if (!rule) throw new PolicyError('POLICY_NO_RULE', 'no rule grants this identity a certificate');
    const granted = grantedPrincipals(rule, identity);
    if (granted.length === 0) throw new PolicyError('POLICY_NO_PRINCIPALS', `rule ${rule.name} grants this identity no principal (an untrusted or out-of-domain session name cannot fill a template)`);
    const principals = selectPrincipals(granted, request.principals);
    if (rule.requireReason && !request.reason?.trim()) throw new PolicyError('POLICY_REASON_REQUIRED', `rule ${rule.name} requires a reason`);
    const ttlSeconds = selectTtl(request.ttlSeconds, rule.ttlSeconds, rule.maxTtlSeconds);
    const criticalOptions: Record<string, string> = { ...rule.criticalOptions };
    const sourceAddress = rule.criticalOptions['source-address'];
    if (sourceAddress !== undefined) {
      // Rules 11 and 21: {{sourceIp}} becomes exactly the caller's address (/32 or /128).
      const rendered = renderSourceAddress(sourceAddress, request.sourceIp ?? '');
      if (rendered === undefined) throw new PolicyError('POLICY_SOURCE_ADDRESS', 'the source address cannot be expressed as the rule requires');
      criticalOptions['source-address'] = rendered;
    }
    return { principals, ttlSeconds, extensions: rule.extensions, criticalOptions, ruleName: rule.name };
  }
}

// The policy of a policy file: the first rule that matches the identity
// decides (rules read top to bottom, like a firewall), so one look at the
// file tells what a person gets.
import { PolicyError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { checkSourceAddress, type PolicyDocument, type PolicyRole, type PolicyRule } from './policy-file.js';
import { PRINCIPAL_PATTERN, selectPrincipals, selectTtl, type CertificateRequest, type Policy, type PolicyDecision } from './policy.js';

function matches(rule: PolicyRule, id: CallerIdentity): boolean {
  const m = rule.match;
  if (m.accounts && !m.accounts.includes(id.accountId)) return false;
  if (m.iamUsers && !(id.kind === 'iam-user' && m.iamUsers.includes(id.arn))) return false;
  if (m.roles && !(id.roleArn !== undefined && m.roles.some((r) => id.roleArn!.startsWith(r.prefix) && r.name.test(id.roleArn!.slice(r.prefix.length))))) return false;
  if (m.ssoPermissionSets && !(id.ssoPermissionSet !== undefined && m.ssoPermissionSets.includes(id.ssoPermissionSet))) return false;
  return true;
}

/**
 * Renders a principal template. A placeholder with no trustworthy value
 * (an untrusted session name, `{{user}}` for a role) drops the principal
 * rather than guessing. A template may never produce `root`: root is only
 * granted when a rule writes it literally (rule 9).
 */
function render(template: string, id: CallerIdentity): string | undefined {
  if (!template.includes('{{')) return template;
  const values: Record<string, string | undefined> = {
    user: id.kind === 'iam-user' ? id.name : undefined,
    session: id.sessionTrusted ? id.sessionName : undefined,
    sessionLocalPart: id.sessionTrusted ? id.sessionName?.split('@')[0] : undefined,
  };
  let missing = false;
  const out = template.replace(/\{\{(\w+)\}\}/g, (_, v: string) => values[v] ?? ((missing = true), ''));
  if (missing || out === 'root' || !PRINCIPAL_PATTERN.test(out)) return undefined;
  return out;
}

/** IPv4-mapped IPv6 (how a dual-stack socket reports IPv4 callers) back to IPv4. */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Decides requests by a PolicyDocument. */
export class FilePolicy implements Policy {
  constructor(readonly document: PolicyDocument) {}

  private ruleFor(identity: CallerIdentity): PolicyRule | undefined {
    return this.document.rules.find((r) => matches(r, identity));
  }

  /** Roles (`admin`, `auditor`) of the identity's first matching rule. */
  rolesFor(identity: CallerIdentity): readonly PolicyRole[] {
    return this.ruleFor(identity)?.roles ?? [];
  }

  accountAllowed(accountId: string): boolean {
    return this.document.accounts.includes(accountId);
  }

  decide(identity: CallerIdentity, request: CertificateRequest): PolicyDecision {
    const rule = this.ruleFor(identity);
    if (!rule) throw new PolicyError('POLICY_NO_RULE', 'no rule grants this identity a certificate');
    const granted = [...new Set(rule.principals.map((t) => render(t, identity)).filter((p): p is string => p !== undefined))];
    if (granted.length === 0) throw new PolicyError('POLICY_NO_PRINCIPALS', `rule ${rule.name} grants this identity no principal (an untrusted session name cannot fill a template)`);
    const principals = selectPrincipals(granted, request.principals);
    if (rule.requireReason && !request.reason?.trim()) throw new PolicyError('POLICY_REASON_REQUIRED', `rule ${rule.name} requires a reason`);
    const ttlSeconds = selectTtl(request.ttlSeconds, rule.ttlSeconds, rule.maxTtlSeconds);
    const criticalOptions: Record<string, string> = { ...rule.criticalOptions };
    const sourceAddress = rule.criticalOptions['source-address'];
    if (sourceAddress !== undefined) {
      const ip = plainIp(request.sourceIp ?? '');
      const rendered = sourceAddress.replaceAll('{{sourceIp}}', ip);
      // Rule 11: source-address is CIDR-checked after the caller's address is filled in.
      if (!checkSourceAddress(rendered, ip)) throw new PolicyError('POLICY_SOURCE_ADDRESS', 'the source address cannot be expressed as the rule requires');
      criticalOptions['source-address'] = rendered;
    }
    return { principals, ttlSeconds, extensions: rule.extensions, criticalOptions, ruleName: rule.name };
  }
}

// What the server would decide for one identity and one request, and why —
// without AWS. The identity is parsed by the server's parseCallerIdentity
// from an ARN, the decision is the server's own Policy (decide, rolesFor)
// and host rules (checkHostCaller, decideHost); this module only runs them
// in the order the routes do and keeps the trace. `sshca-server policy
// explain` prints the result; CI compares its JSON against expectations.
import { createHash } from 'node:crypto';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { AuthnError, PolicyError, SshcaError } from '../errors.js';
import { INSTANCE_IDENTITY_ROLE, parseCallerIdentity, type CallerIdentity, type IdentityRules, type Partition } from '../identity/caller-identity.js';
import { grantedPrincipals, namesIdentity, renderPrincipal, ruleMismatch, sessionFor, type MatchKey } from './file-policy.js';
import { checkHostCaller, decideHost } from './host-policy.js';
import type { HostRules, PolicyDocument, PolicyRule } from './policy-file.js';
import type { CertificateRequest, Policy, PolicyDecision } from './policy.js';
import { SOURCE_IP } from './source-address.js';

/** The identity and request to explain; everything but the ARN is optional. */
export interface ExplainInput {
  readonly arn: string;
  /** STS's UserId; synthesised from the ARN when absent (it decides nothing but its own form). */
  readonly userId?: string;
  /** As the server is configured (SSHCA_TRUSTED_SESSION_ROLES, SSHCA_ALLOW_FEDERATED_USERS). */
  readonly identityRules: IdentityRules;
  readonly request: Omit<CertificateRequest, 'sourceIp'> & { readonly sourceIp?: string };
  /** Instance identities: the region the instance asks in (`POST /v1/certs/host` body `region`). */
  readonly region?: string;
  /** Instance identities: EC2's DescribeInstances answer for the instance, as `aws ec2 describe-instances` prints it. */
  readonly describeInstances?: unknown;
}

/** The server's objects: the loaded policy (PolicyStore) and, for the trace, the document it was read from. */
export interface ExplainDeps {
  readonly policy: Pick<Policy, 'decide' | 'rolesFor' | 'hostRules'>;
  /** The authenticator's account allowlist (PolicyStore.accounts). */
  readonly accounts: { has(accountId: string): boolean };
  readonly document: PolicyDocument;
}

/** Why one rule did not match: the first `match` key that failed, what it wants, what the identity has. */
export interface RuleTrace {
  readonly name: string;
  readonly line: number;
  readonly matched: boolean;
  readonly failed: { readonly key: MatchKey; readonly expected: readonly string[]; readonly actual: string | null } | null;
}

/** The identity as the server sees it (CallerIdentity, with nulls for absent fields). */
export interface ExplainedIdentity {
  readonly arn: string;
  readonly kind: CallerIdentity['kind'];
  readonly partition: Partition;
  readonly accountId: string;
  readonly userId: string;
  readonly userIdSynthesised: boolean;
  readonly name: string;
  readonly roleArn: string | null;
  readonly sessionName: string | null;
  /** `sso` (IAM Identity Center role), `trusted-session-role` (listed by the operator), `untrusted`; null without a role session. */
  readonly sessionTrust: 'sso' | 'trusted-session-role' | 'untrusted' | null;
  readonly ssoPermissionSet: string | null;
  readonly instanceId: string | null;
}

/** The explanation; `sshca-server policy explain --json` prints it as is (docs/policy.md lists the fields). */
export interface Explanation {
  readonly certificate: 'user' | 'host';
  /** issue: a certificate would be issued; refuse: `code` says why; undetermined: `needs` names the missing inputs. */
  readonly decision: 'issue' | 'refuse' | 'undetermined';
  readonly code: string | null;
  readonly message: string | null;
  /** Flags without which the decision cannot be made (`--source-ip`, `--region`, `--instance`). */
  readonly needs: readonly string[];
  readonly identity: ExplainedIdentity | null;
  /** The deciding rule (`hosts` for host certificates). */
  readonly rule: { readonly name: string; readonly line: number } | null;
  /** Every rule read, top to bottom, up to the first that matches. */
  readonly rules: readonly RuleTrace[];
  /** What the certificate would carry (empty unless issued). */
  readonly principals: readonly string[];
  /** Everything the deciding rule grants this identity, and its templates that rendered nothing. */
  readonly granted: readonly string[];
  readonly dropped: ReadonlyArray<{ readonly template: string; readonly reason: string }>;
  readonly ttl: { readonly defaultSeconds: number; readonly maxSeconds: number; readonly requestedSeconds: number | null; readonly seconds: number | null } | null;
  /** The rule's; critical options filled in when issued, as written otherwise. */
  readonly extensions: readonly string[];
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly requireReason: boolean;
  /** The sshca roles the identity holds (rolesFor), and why the deciding rule's roles do not apply when they don't. */
  readonly roles: readonly string[];
  readonly rolesNote: string | null;
  /** Host certificates: what the instance must be, and tagged names left out. */
  readonly host: { readonly region: string | null; readonly requirements: readonly string[]; readonly ignoredNames: readonly string[] } | null;
}

/** A stable, plausible UserId for an ARN: the same ARN always gets the same one. */
export function synthesiseUserId(arn: string): string {
  const m = /^arn:[^:]*:(?:iam|sts)::(\d{12}):(.*)$/.exec(arn);
  const account = m?.[1] ?? '';
  const resource = m?.[2] ?? '';
  const last = resource.split('/').at(-1) ?? '';
  const uniqueId = (prefix: string, of: string) => prefix + [...createHash('sha256').update(of).digest()].slice(0, 16).map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b % 32]).join('');
  if (resource === 'root') return account;
  if (resource.startsWith(`assumed-role/${INSTANCE_IDENTITY_ROLE}/`)) return `${account}:${INSTANCE_IDENTITY_ROLE}:${last}`;
  // One role id per role, whatever the session: as IAM keeps it.
  if (resource.startsWith('assumed-role/')) return `${uniqueId('AROA', arn.slice(0, arn.length - last.length))}:${last}`;
  if (resource.startsWith('federated-user/')) return `${account}:${resource.slice('federated-user/'.length)}`;
  return uniqueId('AIDA', arn);
}

/** Runs the server's identity parsing and policy on `input`, as POST /v1/certs/user or /v1/certs/host would. */
export async function explainPolicy(deps: ExplainDeps, input: ExplainInput): Promise<Explanation> {
  const userIdSynthesised = input.userId === undefined;
  const userId = input.userId ?? synthesiseUserId(input.arn);
  const partition = (/^arn:(aws|aws-us-gov|aws-cn):/.exec(input.arn)?.[1] ?? 'aws') as Partition;
  const account = /^arn:[^:]*:(?:iam|sts)::(\d{12}):/.exec(input.arn)?.[1] ?? '';
  const empty = { rule: null, rules: [], principals: [], granted: [], dropped: [], ttl: null, extensions: [], criticalOptions: {}, requireReason: false, roles: [], rolesNote: null, host: null, needs: [] };
  let identity: CallerIdentity;
  try {
    // Account and partition as STS would answer for this ARN; a malformed one fails the same checks.
    identity = parseCallerIdentity(input.arn, account, userId, partition, input.identityRules);
  } catch (err) {
    if (!(err instanceof AuthnError)) throw err;
    return { ...empty, certificate: 'user', decision: 'refuse', code: err.code, message: err.message, identity: null };
  }
  const explained: ExplainedIdentity = {
    arn: identity.arn,
    kind: identity.kind,
    partition: identity.partition,
    accountId: identity.accountId,
    userId: identity.userId,
    userIdSynthesised,
    name: identity.name,
    roleArn: identity.roleArn ?? null,
    sessionName: identity.sessionName ?? null,
    sessionTrust: identity.kind !== 'assumed-role' ? null : identity.ssoPermissionSet !== undefined ? 'sso' : identity.sessionTrusted ? 'trusted-session-role' : 'untrusted',
    ssoPermissionSet: identity.ssoPermissionSet ?? null,
    instanceId: identity.instanceId ?? null,
  };
  const certificate = identity.kind === 'ec2-instance' ? 'host' : 'user';
  // The authenticator's last check, after STS has answered.
  if (!deps.accounts.has(identity.accountId)) {
    return { ...empty, certificate, decision: 'refuse', code: 'AUTHN_ACCOUNT_NOT_ALLOWED', message: `account ${identity.accountId} is not allowlisted`, identity: explained };
  }
  return certificate === 'host' ? explainHost(deps, input, identity, explained) : explainUser(deps, input, identity, explained);
}

function explainUser(deps: ExplainDeps, input: ExplainInput, identity: CallerIdentity, explained: ExplainedIdentity): Explanation {
  const rules: RuleTrace[] = [];
  let rule: PolicyRule | undefined;
  for (const r of deps.document.rules) {
    const failed = ruleMismatch(r, identity);
    rules.push({ name: r.name, line: r.line, matched: failed === undefined, failed: failed === undefined ? null : { key: failed, ...mismatchDetail(r, failed, identity) } });
    if (failed === undefined) {
      rule = r;
      break;
    }
  }
  const roles = deps.policy.rolesFor(identity);
  const base = {
    certificate: 'user' as const,
    identity: explained,
    rule: rule ? { name: rule.name, line: rule.line } : null,
    rules,
    granted: rule ? grantedPrincipals(rule, identity) : [],
    dropped: rule ? rule.principals.filter((t) => renderPrincipal(t, rule, identity) === undefined).map((template) => ({ template, reason: dropReason(template, rule, identity) })) : [],
    requireReason: rule?.requireReason ?? false,
    extensions: rule ? Object.keys(rule.extensions).sort() : [],
    roles,
    rolesNote: rule && rule.roles.length > 0 && roles.length === 0 ? rolesNote(rule, identity) : null,
    host: null,
  };
  const ttl = (seconds: number | null) => (rule ? { defaultSeconds: rule.ttlSeconds, maxSeconds: rule.maxTtlSeconds, requestedSeconds: input.request.ttlSeconds ?? null, seconds } : null);
  // The route always has the caller's address; here it is a flag, and a rule that puts it in the certificate needs it.
  if (rule && input.request.sourceIp === undefined && rule.criticalOptions['source-address']?.split(',').includes(SOURCE_IP)) {
    return {
      ...base,
      decision: 'undetermined',
      code: null,
      message: `rule ${rule.name} writes the caller's address into source-address: pass --source-ip`,
      needs: ['--source-ip'],
      principals: [],
      ttl: ttl(null),
      criticalOptions: rule.criticalOptions,
    };
  }
  let decision: PolicyDecision;
  try {
    decision = deps.policy.decide(identity, { ...input.request, sourceIp: input.request.sourceIp ?? '' });
  } catch (err) {
    if (!(err instanceof SshcaError)) throw err;
    return { ...base, decision: 'refuse', code: err.code, message: err.message, needs: [], principals: [], ttl: ttl(null), criticalOptions: rule?.criticalOptions ?? {} };
  }
  return { ...base, decision: 'issue', code: null, message: null, needs: [], principals: decision.principals, ttl: ttl(decision.ttlSeconds), criticalOptions: decision.criticalOptions };
}

async function explainHost(deps: ExplainDeps, input: ExplainInput, identity: CallerIdentity, explained: ExplainedIdentity): Promise<Explanation> {
  const rules = deps.policy.hostRules();
  const base = {
    certificate: 'host' as const,
    identity: explained,
    rule: rules ? { name: 'hosts', line: rules.line } : null,
    rules: [],
    granted: [],
    dropped: [],
    ttl: null,
    extensions: [],
    criticalOptions: {},
    requireReason: false,
    roles: deps.policy.rolesFor(identity),
    rolesNote: null,
    host: { region: input.region ?? null, requirements: rules ? hostRequirements(rules) : [], ignoredNames: [] },
  };
  const refuse = (err: unknown): Explanation => {
    if (!(err instanceof SshcaError)) throw err;
    return { ...base, decision: 'refuse', code: err.code, message: err.message, needs: [], principals: [] };
  };
  const needs = (flags: string[], message: string): Explanation => ({ ...base, decision: 'undetermined', code: null, message, needs: flags, principals: [] });
  let checked: HostRules;
  try {
    // No region given: any region passes unless the policy lists some.
    checked = checkHostCaller(rules, identity.accountId, input.region ?? '');
  } catch (err) {
    if (input.region === undefined && err instanceof SshcaError && err.code === 'POLICY_HOST_REGION') return needs(['--region'], 'the policy limits host certificates to some regions: pass --region');
    return refuse(err);
  }
  if (input.describeInstances === undefined) {
    return needs(['--instance'], 'the decision depends on what EC2 says about the instance: pass --instance with the output of aws ec2 describe-instances --instance-ids ' + identity.instanceId);
  }
  // The server's own reading of EC2's answer, given that answer instead of
  // asking EC2. Imported here: it loads the EC2 SDK (~0.4 s), which nothing
  // else explain or check does needs.
  const { Ec2InstanceDirectory } = await import('../hosts/instance-directory.js');
  const answer = input.describeInstances;
  const directory = new Ec2InstanceDirectory({ clientFor: () => ({ send: async () => answer }) as unknown as EC2Client });
  const instance = await directory.describe(identity.accountId, input.region ?? '', identity.instanceId!);
  if (!instance) return refuse(new PolicyError('POLICY_HOST_INSTANCE_UNKNOWN', `the describe-instances answer has no instance ${identity.instanceId} owned by ${identity.accountId}`));
  try {
    const decided = decideHost(checked, instance);
    return {
      ...base,
      decision: 'issue',
      code: null,
      message: null,
      needs: [],
      principals: decided.principals,
      granted: decided.principals,
      ttl: { defaultSeconds: checked.ttlSeconds, maxSeconds: checked.ttlSeconds, requestedSeconds: null, seconds: decided.ttlSeconds },
      host: { ...base.host, ignoredNames: decided.ignoredNames },
    };
  } catch (err) {
    return refuse(err);
  }
}

/** What a failed `match` key wants, and what the identity has for it (null: nothing of that kind). */
function mismatchDetail(rule: PolicyRule, key: MatchKey, id: CallerIdentity): { expected: readonly string[]; actual: string | null } {
  const m = rule.match;
  switch (key) {
    case 'account':
      return { expected: m.accounts ?? [], actual: id.accountId };
    case 'iamUser':
      return { expected: m.iamUsers ?? [], actual: id.kind === 'iam-user' ? id.arn : null };
    case 'role':
      return { expected: (m.roles ?? []).map((r) => r.pattern), actual: id.roleArn ?? null };
    case 'ssoPermissionSet':
      return { expected: m.ssoPermissionSets ?? [], actual: id.ssoPermissionSet ?? null };
  }
}

/** Why a template rendered nothing; whether it did is renderPrincipal's answer, this only says why. */
function dropReason(template: string, rule: PolicyRule, id: CallerIdentity): string {
  const vars = [...template.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]);
  if (vars.includes('user') && id.kind !== 'iam-user') return '{{user}} has no value: the identity is not an IAM user';
  if ((vars.includes('session') || vars.includes('sessionLocalPart')) && sessionFor(rule, id) === undefined) {
    if (id.sessionName === undefined) return 'the identity has no session name';
    if (!id.sessionTrusted) return `the session name is chosen by whoever assumes ${id.roleArn ?? 'the role'}: not an IAM Identity Center role, nor a trusted session role`;
    return `the session name is not local@domain with a domain of sessionDomains (${(rule.sessionDomains ?? []).join(', ')})`;
  }
  return 'it renders to root (granted only when written literally) or to something that is not a principal';
}

/** Why a rule's roles do not go to this identity (rolesFor said none). */
function rolesNote(rule: PolicyRule, id: CallerIdentity): string {
  if (id.kind === 'ec2-instance') return 'an instance identity holds no role';
  if (!namesIdentity(rule, id)) return `rule ${rule.name} matches but does not name this identity (an IAM user ARN, an exact role ARN or a permission set): its roles are not given`;
  if (grantedPrincipals(rule, id).length === 0) return `rule ${rule.name} grants this identity no principal, so it gets none of the rule's roles`;
  return `rule ${rule.name}'s roles do not apply`;
}

/** What an instance must be for a host certificate, in the policy's words (checked against --instance, never against EC2). */
function hostRequirements(rules: HostRules): string[] {
  return [
    `account one of ${rules.accounts.join(', ')}`,
    ...(rules.regions ? [`region one of ${rules.regions.join(', ')}`] : []),
    'state running or pending',
    `IMDSv2 only (HttpTokens required), hop limit at most ${rules.maxImdsHopLimit}`,
    ...(rules.vpcs ? [`VPC one of ${rules.vpcs.join(', ')}`] : []),
    ...(rules.tags ?? []).map(({ key, values }) => `tag ${key} one of ${values.map((v) => JSON.stringify(v)).join(', ')}`),
    `names: instance id, EC2's DNS names and addresses${rules.nameTag ? `, and names in tag ${rules.nameTag}${rules.nameDomains ? ` within ${rules.nameDomains.join(', ')}` : ''}` : ''}`,
  ];
}

// Reads a policy file (YAML) into a validated PolicyDocument. Every error
// names the file, line and field, because an operator fixing a policy under
// pressure should not have to guess.
import { isIP } from 'node:net';
import { LineCounter, parseDocument } from 'yaml';
import { parseDuration } from '../../protocol/duration.js';
import { PRINCIPAL_PATTERN } from './policy.js';

export type PolicyRole = 'admin' | 'auditor';

/** One rule: which identities it matches and what it grants. */
export interface PolicyRule {
  readonly name: string;
  readonly line: number;
  readonly match: {
    readonly accounts?: readonly string[];
    readonly iamUsers?: readonly string[];
    /** Role ARN patterns: prefix matched exactly, `*`/`?` glob on the role name only. */
    readonly roles?: ReadonlyArray<{ readonly prefix: string; readonly name: RegExp }>;
    readonly ssoPermissionSets?: readonly string[];
  };
  readonly principals: readonly string[];
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly extensions: Readonly<Record<string, string>>;
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly requireReason: boolean;
  readonly roles: readonly PolicyRole[];
}

/** A whole policy: who may authenticate, and the rules in order (first match wins). */
export interface PolicyDocument {
  readonly accounts: readonly string[];
  readonly rules: readonly PolicyRule[];
}

/** The file is invalid; `message` says `<file>:<line>: <field>: <problem>`. */
export class PolicyFileError extends Error {
  readonly code = 'CONFIG_POLICY_INVALID';
}

export const DEFAULT_TTL = '8h';
/** maxTtl when a rule gives none (or its ttl, if longer). */
export const DEFAULT_MAX_TTL_SECONDS = 12 * 3600;
/** No rule may allow more than a week: sshca certificates are meant to live for hours. */
const MAX_TTL_CEILING = 7 * 24 * 3600;
const EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'];
const DEFAULT_EXTENSIONS = ['permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty'];
const TEMPLATE_VARS = ['user', 'session', 'sessionLocalPart'];
const ACCOUNT = /^\d{12}$/;
const IAM_USER_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::\d{12}:user\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const ROLE_ARN_PATTERN = /^(arn:(?:aws|aws-us-gov|aws-cn):iam::\d{12}:role\/)([\w+=,.@*?-]{1,64})$/;

type Path = ReadonlyArray<string | number>;

/** Parses and validates `text`; `source` names the file in messages. */
export function parsePolicyFile(text: string, source: string): PolicyDocument {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new PolicyFileError(`${source}:${e.linePos?.[0]?.line ?? 1}: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (path: Path): number => {
    for (let p = [...path]; ; p = p.slice(0, -1)) {
      const node = p.length ? (doc.getIn(p, true) as { range?: [number] } | undefined) : (doc.contents as { range?: [number] } | null);
      if (node?.range) return lines.linePos(node.range[0]).line;
      if (p.length === 0) return 1;
    }
  };
  const fail = (path: Path, problem: string): never => {
    const field = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(top)';
    throw new PolicyFileError(`${source}:${lineOf(path)}: ${field}: ${problem}`);
  };
  const root: unknown = doc.toJS();
  const obj = (v: unknown, path: Path, allowed: readonly string[]): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(path, 'expected a mapping');
    for (const k of Object.keys(v)) if (!allowed.includes(k)) fail([...path, k], `unknown field (allowed: ${allowed.join(', ')})`);
    return v as Record<string, unknown>;
  };
  const strings = (v: unknown, path: Path, check: (s: string, p: Path) => void, { single = false, min = 1 } = {}): string[] => {
    const list = single && typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) return fail(path, single ? 'expected a string or a list of strings' : 'expected a list of strings');
    if (list.length < min) fail(path, `expected at least ${min} entr${min === 1 ? 'y' : 'ies'}`);
    return list.map((s, i) => {
      if (typeof s !== 'string') return fail([...path, i], 'expected a string');
      check(s, [...path, i]);
      return s;
    });
  };
  const duration = (v: unknown, path: Path): number => {
    const seconds = typeof v === 'string' || typeof v === 'number' ? parseDuration(String(v)) : undefined;
    if (seconds === undefined || seconds < 60) return fail(path, 'expected a duration of at least 1 minute, like 8h or 30m');
    if (seconds > MAX_TTL_CEILING) fail(path, 'at most 7 days');
    return seconds;
  };

  const top = obj(root, [], ['accounts', 'rules']);
  const accounts = strings(top.accounts, ['accounts'], (s, p) => ACCOUNT.test(s) || fail(p, 'expected a 12-digit AWS account id'));
  if (!Array.isArray(top.rules) || top.rules.length === 0) fail(['rules'], 'expected a list of at least one rule');
  const names = new Set<string>();
  const rules = (top.rules as unknown[]).map((raw, i): PolicyRule => {
    const at = ['rules', i];
    const r = obj(raw, at, ['name', 'match', 'principals', 'ttl', 'maxTtl', 'extensions', 'criticalOptions', 'requireReason', 'roles']);
    if (typeof r.name !== 'string' || !/^[\w.-]{1,64}$/.test(r.name)) fail([...at, 'name'], 'expected a name of letters, digits, _ . -');
    const name = r.name as string;
    if (names.has(name)) fail([...at, 'name'], `duplicate rule name ${name}`);
    names.add(name);
    const m = obj(r.match, [...at, 'match'], ['account', 'iamUser', 'role', 'ssoPermissionSet']);
    if (Object.keys(m).length === 0) fail([...at, 'match'], 'a rule must match on something');
    const mp = [...at, 'match'];
    const match: PolicyRule['match'] = {
      ...(m.account !== undefined ? { accounts: strings(m.account, [...mp, 'account'], (s, p) => ACCOUNT.test(s) || fail(p, 'expected a 12-digit AWS account id'), { single: true }) } : {}),
      ...(m.iamUser !== undefined ? { iamUsers: strings(m.iamUser, [...mp, 'iamUser'], (s, p) => IAM_USER_ARN.test(s) || fail(p, 'expected an IAM user ARN'), { single: true }) } : {}),
      ...(m.role !== undefined
        ? {
            roles: strings(m.role, [...mp, 'role'], (s, p) => ROLE_ARN_PATTERN.test(s) || fail(p, 'expected arn:<partition>:iam::<account>:role/<name or glob> (no path)'), { single: true }).map((s) => {
              const [, prefix, glob] = ROLE_ARN_PATTERN.exec(s)! as unknown as [string, string, string];
              return { prefix, name: new RegExp(`^${glob.replace(/[.+=,@-]/g, '\\$&').replace(/\*/g, '[\\w+=,.@-]*').replace(/\?/g, '[\\w+=,.@-]')}$`) };
            }),
          }
        : {}),
      ...(m.ssoPermissionSet !== undefined ? { ssoPermissionSets: strings(m.ssoPermissionSet, [...mp, 'ssoPermissionSet'], (s, p) => /^[\w+=,.@-]{1,32}$/.test(s) || fail(p, 'expected a permission set name'), { single: true }) } : {}),
    };
    const principals = strings(r.principals, [...at, 'principals'], (s, p) => checkPrincipalTemplate(s) || fail(p, `not a principal or template (placeholders: ${TEMPLATE_VARS.map((v) => `{{${v}}}`).join(', ')})`));
    const ttlSeconds = duration(r.ttl ?? DEFAULT_TTL, [...at, 'ttl']);
    const maxTtlSeconds = r.maxTtl !== undefined ? duration(r.maxTtl, [...at, 'maxTtl']) : Math.max(ttlSeconds, DEFAULT_MAX_TTL_SECONDS);
    if (ttlSeconds > maxTtlSeconds) fail([...at, 'ttl'], 'ttl is longer than maxTtl');
    const extensionNames = r.extensions === undefined ? DEFAULT_EXTENSIONS : strings(r.extensions, [...at, 'extensions'], (s, p) => EXTENSIONS.includes(s) || fail(p, `unknown extension (known: ${EXTENSIONS.join(', ')})`), { min: 0 });
    const co = r.criticalOptions === undefined ? {} : obj(r.criticalOptions, [...at, 'criticalOptions'], ['force-command', 'source-address']);
    const criticalOptions: Record<string, string> = {};
    if (co['force-command'] !== undefined) {
      if (typeof co['force-command'] !== 'string' || co['force-command'].length === 0) fail([...at, 'criticalOptions', 'force-command'], 'expected a command');
      criticalOptions['force-command'] = co['force-command'] as string;
    }
    if (co['source-address'] !== undefined) {
      if (typeof co['source-address'] !== 'string' || !checkSourceAddress(co['source-address'])) fail([...at, 'criticalOptions', 'source-address'], 'expected comma-separated CIDRs, {{sourceIp}}/32 allowed');
      criticalOptions['source-address'] = co['source-address'] as string;
    }
    if (r.requireReason !== undefined && typeof r.requireReason !== 'boolean') fail([...at, 'requireReason'], 'expected true or false');
    const roles = r.roles === undefined ? [] : strings(r.roles, [...at, 'roles'], (s, p) => s === 'admin' || s === 'auditor' || fail(p, 'expected admin or auditor'), { min: 0 });
    return {
      name,
      line: lineOf(at),
      match,
      principals,
      ttlSeconds,
      maxTtlSeconds,
      extensions: Object.fromEntries(extensionNames.map((e) => [e, ''])),
      criticalOptions,
      requireReason: r.requireReason === true,
      roles: [...new Set(roles)] as PolicyRole[],
    };
  });
  return { accounts, rules };
}

/** A literal principal, or one built from the allowed placeholders and literal characters. */
function checkPrincipalTemplate(template: string): boolean {
  const literal = template.replace(/\{\{(\w+)\}\}/g, (whole, v: string) => (TEMPLATE_VARS.includes(v) ? 'x' : whole));
  return PRINCIPAL_PATTERN.test(literal);
}

/** Comma-separated CIDRs; `{{sourceIp}}` stands for the caller's address. */
export function checkSourceAddress(value: string, sourceIp = '192.0.2.1'): boolean {
  return value.split(',').every((part) => {
    const m = /^([^/\s]+)\/(\d{1,3})$/.exec(part.trim().replace('{{sourceIp}}', sourceIp));
    if (!m) return false;
    const family = isIP(m[1]!);
    return family !== 0 && Number(m[2]) <= (family === 4 ? 32 : 128);
  });
}

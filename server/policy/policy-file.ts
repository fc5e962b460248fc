// Reads a policy file (YAML) into a validated PolicyDocument. Every error
// names the file, line and field, because an operator fixing a policy under
// pressure should not have to guess.
import { LineCounter, isMap, isScalar, parseDocument, visit, type Document } from 'yaml';
import { parseDuration } from '../../protocol/duration.js';
import { PRINCIPAL_PATTERN } from './policy.js';
import { sourceAddressProblem } from './source-address.js';

export type PolicyRole = 'admin' | 'auditor';

/** One rule: which identities it matches and what it grants. */
export interface PolicyRule {
  readonly name: string;
  readonly line: number;
  readonly match: {
    readonly accounts?: readonly string[];
    readonly iamUsers?: readonly string[];
    /**
     * Role ARN patterns: prefix matched exactly, `*`/`?` glob on the role
     * name only. `pattern` is the ARN as written (exact when it has no glob).
     */
    readonly roles?: ReadonlyArray<{ readonly pattern: string; readonly prefix: string; readonly name: RegExp }>;
    readonly ssoPermissionSets?: readonly string[];
  };
  readonly principals: readonly string[];
  /**
   * When set, `{{session}}` and `{{sessionLocalPart}}` render only for a
   * session name `local@domain` with `domain` (lower case) in this list.
   */
  readonly sessionDomains?: readonly string[];
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly extensions: Readonly<Record<string, string>>;
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly requireReason: boolean;
  readonly roles: readonly PolicyRole[];
}

/** The `hosts:` section: which instances get host certificates, and what they say (issue 12). */
export interface HostRules {
  readonly line: number;
  /** Accounts whose instances may get host certificates (a subset of the top-level accounts). */
  readonly accounts: readonly string[];
  readonly regions?: readonly string[];
  readonly vpcs?: readonly string[];
  /** Every key must match; a key's list means any of its values. */
  readonly tags?: ReadonlyArray<{ readonly key: string; readonly values: readonly string[] }>;
  /** A tag whose value (comma/space separated) adds DNS names as principals. */
  readonly nameTag?: string;
  /** Names from the tag must be one of these domains or below one (lower case); unset: any valid name. */
  readonly nameDomains?: readonly string[];
  /** The highest IMDS hop limit an instance may have (default 1: no container on it reaches IMDS through a bridge). */
  readonly maxImdsHopLimit: number;
  readonly ttlSeconds: number;
}

/** A whole policy: who may authenticate, and the rules in order (first match wins). */
export interface PolicyDocument {
  readonly accounts: readonly string[];
  readonly rules: readonly PolicyRule[];
  /** Absent: no host certificates. */
  readonly hosts?: HostRules;
}

/**
 * The file is invalid; `message` says `<file>:<line>: <field>: <problem>`.
 * `line` and `field` say the same for programs (`sshca-server policy
 * check`, CI annotations), so nobody has to parse the message.
 */
export class PolicyFileError extends Error {
  readonly code = 'CONFIG_POLICY_INVALID';
  /** 1-based line of the offending node, when the problem is at one place in the file. */
  readonly line?: number;
  /** The offending field as a path (`rules[2].match.role[0]`), when one field is at fault. */
  readonly field?: string;

  constructor(message: string, options: { cause?: unknown; line?: number; field?: string } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    if (options.line !== undefined) this.line = options.line;
    if (options.field !== undefined) this.field = options.field;
  }
}

/**
 * Larger policy files are refused before parsing. A rule is a few hundred
 * bytes, so this holds a thousand rules; and it keeps the worst file yaml
 * can be given (measured: ~4 s per MiB of pathological input) well under a
 * second, since a reload blocks the server while it parses.
 */
export const MAX_POLICY_BYTES = 256 * 1024;
/** Flow collections nest at most this deep (a policy needs three). */
export const MAX_FLOW_DEPTH = 64;
/**
 * How far anchors and aliases may expand (yaml's count × nesting measure):
 * enough to share a list among a few rules, far too little for a
 * "billion laughs" file to cost the parser or the validator anything.
 */
export const MAX_ALIAS_COUNT = 20;

export const DEFAULT_TTL = '8h';
/** maxTtl when a rule gives none (or its ttl, if longer). */
export const DEFAULT_MAX_TTL_SECONDS = 12 * 3600;
/** No rule may allow more than a week: sshca certificates are meant to live for hours. */
const MAX_TTL_CEILING = 7 * 24 * 3600;
/** Host certificates: a few days by default (renewed at half-life), at most 30 days. */
export const DEFAULT_HOST_TTL = '3d';
const MAX_HOST_TTL = 30 * 24 * 3600;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const VPC_ID = /^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
/** EC2 tag keys: 1–128 characters; values up to 256. */
const TAG_KEY = /^[^\x00-\x1f]{1,128}$/;
const TAG_VALUE = /^[^\x00-\x1f]{0,256}$/;
const EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'];
const DEFAULT_EXTENSIONS = ['permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty'];
const TEMPLATE_VARS = ['user', 'session', 'sessionLocalPart'];
const ACCOUNT = /^\d{12}$/;
const IAM_USER_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::\d{12}:user\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const ROLE_ARN_PATTERN = /^(arn:(?:aws|aws-us-gov|aws-cn):iam::\d{12}:role\/)([\w+=,.@*?-]{1,64})$/;
/** A DNS name of at least two labels, compared in lower case. */
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

type Path = ReadonlyArray<string | number>;

/**
 * Refuses flow collections (`[`, `{`) nested deeper than MAX_FLOW_DEPTH
 * before yaml sees the text: a policy needs three levels, and a file of
 * nothing but brackets costs the parser seconds per hundred kilobytes.
 * Brackets are counted everywhere, quoted or commented too: being wrong only
 * ever refuses an absurd file, never lets one through.
 */
function checkFlowDepth(text: string, source: string, lines: LineCounter): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_FLOW_DEPTH) {
        const line = lines.linePos(i).line;
        throw new PolicyFileError(`${source}:${line}: brackets nested more than ${MAX_FLOW_DEPTH} deep`, { line });
      }
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
}

/**
 * YAML text to a Document and its plain value, with every resource bound
 * in place: size, bracket depth, aliases; duplicate keys found in one pass
 * (yaml's own uniqueKeys check compares every pair of keys in a mapping).
 */
function parseYaml(text: string, source: string): { doc: Document.Parsed; lines: LineCounter; root: unknown } {
  // Characters here; PolicyStore checks bytes before decoding. Either way the parser never sees more.
  if (text.length > MAX_POLICY_BYTES) throw new PolicyFileError(`${source}: more than ${MAX_POLICY_BYTES} characters; a policy file is at most ${MAX_POLICY_BYTES / 1024} KiB`);
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
  checkFlowDepth(text, source, lines);
  let doc: Document.Parsed;
  // yaml records one Error object per problem, and a hostile file has one
  // per few bytes; capturing a stack trace for each is most of the parse
  // time. Nothing else runs during this synchronous call.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  } catch (err) {
    // yaml reports problems in doc.errors; a throw is still just an invalid file.
    throw new PolicyFileError(`${source}: cannot parse: ${(err as Error).message}`, { cause: err });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  const first = doc.errors[0];
  if (first) {
    const line = lines.linePos(first.pos[0]).line;
    throw new PolicyFileError(`${source}:${line}: ${first.message.split('\n')[0]}`, { line });
  }
  let duplicate: number | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        // Scalar keys compare by value (as yaml's check does); any other key by identity.
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) {
          duplicate = (pair.key as { range?: [number] } | null)?.range?.[0] ?? map.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  if (duplicate !== undefined) {
    const line = lines.linePos(duplicate).line;
    throw new PolicyFileError(`${source}:${line}: map keys must be unique`, { line });
  }
  try {
    return { doc, lines, root: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (err) {
    const message = (err as Error).message;
    if (!/alias/i.test(message)) throw new PolicyFileError(`${source}: cannot parse: ${message}`, { cause: err });
    let aliasLine = 1;
    visit(doc, {
      Alias(_, node) {
        if (node.range) aliasLine = lines.linePos(node.range[0]).line;
        return visit.BREAK;
      },
    });
    throw new PolicyFileError(`${source}:${aliasLine}: anchors and aliases expand too far (${message}); write the values out`, { cause: err, line: aliasLine });
  }
}

/** Parses and validates `text`; `source` names the file in messages. Throws only PolicyFileError. */
export function parsePolicyFile(text: string, source: string): PolicyDocument {
  try {
    return validate(text, source);
  } catch (err) {
    if (err instanceof PolicyFileError) throw err;
    // Whatever a hostile file makes the parser or the walk over its nodes
    // throw (a stack overflow, say) is still just an invalid file.
    throw new PolicyFileError(`${source}: cannot parse: ${err instanceof Error ? err.message : 'unknown error'}`, { cause: err });
  }
}

function validate(text: string, source: string): PolicyDocument {
  const { doc, lines, root } = parseYaml(text, source);
  const lineOf = (path: Path): number => {
    for (let p = [...path]; ; p = p.slice(0, -1)) {
      // A field's line is its key's: a block value (`roles:` with `- admin`
      // below it) starts a line later, and an empty one has no node at all.
      const last = p.at(-1);
      const parent = p.length > 1 ? doc.getIn(p.slice(0, -1), true) : doc.contents;
      const key = typeof last === 'string' && isMap(parent) ? parent.items.find((pair) => isScalar(pair.key) && pair.key.value === last)?.key : undefined;
      const node = (key ?? (p.length ? doc.getIn(p, true) : doc.contents)) as { range?: [number] } | null | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
      if (p.length === 0) return 1;
    }
  };
  const fail = (path: Path, problem: string): never => {
    const field = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(top)';
    const line = lineOf(path);
    throw new PolicyFileError(`${source}:${line}: ${field}: ${problem}`, { line, field });
  };
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
  const duration = (v: unknown, path: Path, ceiling = MAX_TTL_CEILING): number => {
    const seconds = typeof v === 'string' || typeof v === 'number' ? parseDuration(String(v)) : undefined;
    if (seconds === undefined || seconds < 60) return fail(path, 'expected a duration of at least 1 minute, like 8h or 30m');
    if (seconds > ceiling) fail(path, `at most ${ceiling / 86400} days`);
    return seconds;
  };

  const top = obj(root, [], ['accounts', 'rules', 'hosts']);
  const accounts = strings(top.accounts, ['accounts'], (s, p) => ACCOUNT.test(s) || fail(p, 'expected a 12-digit AWS account id'));
  if (!Array.isArray(top.rules) || top.rules.length === 0) fail(['rules'], 'expected a list of at least one rule');
  const names = new Set<string>();
  const rules = (top.rules as unknown[]).map((raw, i): PolicyRule => {
    const at = ['rules', i];
    const r = obj(raw, at, ['name', 'match', 'principals', 'sessionDomains', 'ttl', 'maxTtl', 'extensions', 'criticalOptions', 'requireReason', 'roles']);
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
              return { pattern: s, prefix, name: new RegExp(`^${glob.replace(/[.+=,@-]/g, '\\$&').replace(/\*/g, '[\\w+=,.@-]*').replace(/\?/g, '[\\w+=,.@-]')}$`) };
            }),
          }
        : {}),
      ...(m.ssoPermissionSet !== undefined ? { ssoPermissionSets: strings(m.ssoPermissionSet, [...mp, 'ssoPermissionSet'], (s, p) => /^[\w+=,.@-]{1,32}$/.test(s) || fail(p, 'expected a permission set name'), { single: true }) } : {}),
    };
    const principals = strings(r.principals, [...at, 'principals'], (s, p) => checkPrincipalTemplate(s) || fail(p, `not a principal or template (placeholders: ${TEMPLATE_VARS.map((v) => `{{${v}}}`).join(', ')})`));
    const sessionDomains =
      r.sessionDomains === undefined
        ? undefined
        : [...new Set(strings(r.sessionDomains, [...at, 'sessionDomains'], (s, p) => DOMAIN.test(s) || fail(p, 'expected a domain name like example.com (no @, no wildcard)'), { single: true }).map((d) => d.toLowerCase()))];
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
      const value = co['source-address'];
      if (typeof value !== 'string') return fail([...at, 'criticalOptions', 'source-address'], 'expected comma-separated CIDRs and {{sourceIp}}');
      const problem = sourceAddressProblem(value);
      if (problem !== undefined) fail([...at, 'criticalOptions', 'source-address'], problem);
      criticalOptions['source-address'] = value.split(',').map((e) => e.trim()).join(',');
    }
    if (r.requireReason !== undefined && typeof r.requireReason !== 'boolean') fail([...at, 'requireReason'], 'expected true or false');
    const roles = r.roles === undefined ? [] : strings(r.roles, [...at, 'roles'], (s, p) => s === 'admin' || s === 'auditor' || fail(p, 'expected admin or auditor'), { min: 0 });
    if (roles.length > 0) {
      // Rule 17: roles go only to identities the rule names. An account match
      // names nobody, and a role glob is an account-wide match in disguise
      // (anyone who can create or assume a role it covers gets the role).
      for (const [j, role] of (match.roles ?? []).entries()) {
        if (/[*?]/.test(role.pattern)) fail([...mp, 'role', j], 'a rule that grants roles must name each role ARN exactly (no * or ? glob)');
      }
      if (!match.iamUsers && !match.roles && !match.ssoPermissionSets) {
        fail([...at, 'roles'], 'roles are granted only to identities a rule names: match on iamUser, an exact role ARN or ssoPermissionSet, not on account alone');
      }
    }
    return {
      name,
      line: lineOf(at),
      match,
      principals,
      ...(sessionDomains ? { sessionDomains } : {}),
      ttlSeconds,
      maxTtlSeconds,
      extensions: Object.fromEntries(extensionNames.map((e) => [e, ''])),
      criticalOptions,
      requireReason: r.requireReason === true,
      roles: [...new Set(roles)] as PolicyRole[],
    };
  });
  const hosts = top.hosts === undefined ? undefined : hostRules(top.hosts, accounts);
  return { accounts, rules, ...(hosts ? { hosts } : {}) };

  function hostRules(raw: unknown, topAccounts: readonly string[]): HostRules {
    const at = ['hosts'];
    // `hosts: {}` (or an empty `hosts:`) switches host certificates on with every default.
    const h = obj(raw ?? {}, at, ['accounts', 'regions', 'vpcs', 'tags', 'nameTag', 'nameDomains', 'maxImdsHopLimit', 'ttl']);
    const hop = h.maxImdsHopLimit ?? 1;
    if (typeof hop !== 'number' || !Number.isInteger(hop) || hop < 1 || hop > 64) fail([...at, 'maxImdsHopLimit'], 'expected a whole number from 1 to 64 (EC2\'s range)');
    const hostAccounts =
      h.accounts === undefined
        ? topAccounts
        : strings(h.accounts, [...at, 'accounts'], (s, p) => (ACCOUNT.test(s) && topAccounts.includes(s)) || fail(p, 'expected one of the top-level accounts (only they may authenticate)'), { single: true });
    const regions = h.regions === undefined ? undefined : strings(h.regions, [...at, 'regions'], (s, p) => REGION.test(s) || fail(p, 'expected a region name like eu-west-1'), { single: true });
    const vpcs = h.vpcs === undefined ? undefined : strings(h.vpcs, [...at, 'vpcs'], (s, p) => VPC_ID.test(s) || fail(p, 'expected a VPC id like vpc-0a1b2c3d'), { single: true });
    let tags: HostRules['tags'];
    if (h.tags !== undefined) {
      const t = h.tags;
      if (typeof t !== 'object' || t === null || Array.isArray(t) || Object.keys(t).length === 0) return fail([...at, 'tags'], 'expected a mapping of tag key to value(s)');
      tags = Object.entries(t as Record<string, unknown>).map(([key, v]) => {
        if (!TAG_KEY.test(key)) fail([...at, 'tags', key], 'expected a tag key of 1–128 printable characters');
        const values = strings(typeof v === 'number' || typeof v === 'boolean' ? String(v) : v, [...at, 'tags', key], (s, p) => TAG_VALUE.test(s) || fail(p, 'expected a tag value of at most 256 printable characters'), { single: true });
        return { key, values };
      });
    }
    if (h.nameTag !== undefined && (typeof h.nameTag !== 'string' || !TAG_KEY.test(h.nameTag))) fail([...at, 'nameTag'], 'expected a tag key of 1–128 printable characters');
    const nameDomains =
      h.nameDomains === undefined
        ? undefined
        : strings(h.nameDomains, [...at, 'nameDomains'], (s, p) => DOMAIN.test(s) || fail(p, 'expected a domain name like corp.example.com (no wildcard)'), { single: true }).map((d) => d.toLowerCase());
    if (nameDomains && h.nameTag === undefined) fail([...at, 'nameDomains'], 'nameDomains restricts the names of nameTag; set nameTag too');
    const ttlSeconds = duration(h.ttl ?? DEFAULT_HOST_TTL, [...at, 'ttl'], MAX_HOST_TTL);
    return {
      line: lineOf(at),
      accounts: [...new Set(hostAccounts)],
      ...(regions ? { regions } : {}),
      ...(vpcs ? { vpcs } : {}),
      ...(tags ? { tags } : {}),
      ...(typeof h.nameTag === 'string' ? { nameTag: h.nameTag } : {}),
      ...(nameDomains ? { nameDomains } : {}),
      maxImdsHopLimit: hop as number,
      ttlSeconds,
    };
  }
}

/** A literal principal, or one built from the allowed placeholders and literal characters. */
function checkPrincipalTemplate(template: string): boolean {
  const literal = template.replace(/\{\{(\w+)\}\}/g, (whole, v: string) => (TEMPLATE_VARS.includes(v) ? 'x' : whole));
  return PRINCIPAL_PATTERN.test(literal);
}

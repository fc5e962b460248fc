// `sshca-server policy check|explain`: test a policy file before it ships.
// check loads it as the server does (start-up and SIGHUP); explain runs the
// server's identity parsing and policy for one ARN (policy-explain.ts).
// Neither starts a server, opens a store or calls AWS.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatDuration, parseDuration } from '../../protocol/duration.js';
import { parseCallerIdentity, type Partition } from '../identity/caller-identity.js';
import { MAX_REQUESTABLE_TTL_SECONDS } from '../routes/user-certificate-route.js';
import { PolicyFileError, parsePolicyFile, type PolicyDocument } from './policy-file.js';
import { explainPolicy, type ExplainInput, type Explanation } from './policy-explain.js';
import { PolicyStore, readPolicyText } from './policy-store.js';

export const POLICY_USAGE = `usage: sshca-server policy check FILE [--json]
       sshca-server policy explain FILE --arn ARN [--user-id ID] [--source-ip IP] [--principal P]... [--ttl D] [--reason TEXT]
                [--trusted-session-role ROLE_ARN]... [--allow-federated-users] [--region R] [--instance FILE] [--json]

check    validates FILE exactly as the server loads it (at start-up and on SIGHUP) and prints a one-line summary.
         Exit 0: valid; 1: invalid, printed as FILE:LINE: message [CODE]; 2: usage.
explain  what the server would decide with FILE for the AWS identity ARN (as STS's GetCallerIdentity reports it):
         the rule that matches, or for each rule the first condition that failed; principals, lifetime,
         extensions, critical options and sshca roles. An instance identity
         (arn:aws:sts::ACCOUNT:assumed-role/aws:ec2-instance/i-…) is explained as a host certificate. No AWS calls.
  --user-id ID                  STS's UserId (default: a plausible one made from the ARN)
  --source-ip IP                the caller's address, for source-address {{sourceIp}}
  --principal P, --ttl D, --reason TEXT
                                what sshca login would ask for (default: every principal granted, the rule's ttl)
  --trusted-session-role ARN    a role whose session names are trusted (repeatable; default: SSHCA_TRUSTED_SESSION_ROLES)
  --allow-federated-users       accept federated users (default: SSHCA_ALLOW_FEDERATED_USERS)
  --region R                    instance identity: the region the instance asks in
  --instance FILE               instance identity: what aws ec2 describe-instances --instance-ids ID prints (JSON)
  --json                        one JSON object (fields: docs/policy.md, "Test a policy before it ships")
         Exit 0: a certificate would be issued; 1: refused (the code is printed); 2: usage error, invalid FILE,
         or more input needed (the missing flags are printed).`;

/** Where the command writes, and the environment it reads (SSHCA_TRUSTED_SESSION_ROLES, SSHCA_ALLOW_FEDERATED_USERS). */
export interface PolicyCommandIo {
  readonly env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
}

const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/** A usage problem: printed with the usage, exit 2. */
class UsageError extends Error {
  readonly code = 'POLICY_COMMAND_USAGE';
}

/** `sshca-server policy …` (argv after `policy`); resolves to the exit code. */
export async function policyCommand(argv: readonly string[], io: PolicyCommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
      io.stdout(`${POLICY_USAGE}\n`);
      return EXIT.ok;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(`${POLICY_USAGE}\n`);
      return EXIT.ok;
    }
    if (sub === 'check') return check(rest, io);
    if (sub === 'explain') return await explain(rest, io);
    throw new UsageError(`unknown policy command ${JSON.stringify(sub)}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`sshca-server policy: ${err.message}\n${POLICY_USAGE}\n`);
    return EXIT.usage;
  }
}

/** The policy as the server loads it, and the document it was built from (for the trace). */
function loadPolicy(path: string): { store: PolicyStore; document: PolicyDocument } {
  // PolicyStore.load is what start-up and SIGHUP run: whatever it refuses, check refuses.
  const store = PolicyStore.load(path);
  // Its document stays private to it; the same two steps it takes give the rules for the trace.
  return { store, document: parsePolicyFile(readPolicyText(path), path) };
}

/** `FILE:LINE: message [CODE]` (the message already starts with the file, and the line where there is one). */
const errorLine = (err: PolicyFileError) => `${err.message} [${err.code}]\n`;

function positionalFile(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the policy FILE' : `one policy FILE, not ${positionals.length}`);
  return positionals[0]!;
}

function args<T extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function check(argv: readonly string[], io: PolicyCommandIo): number {
  const { values, positionals } = args(argv, { json: { type: 'boolean' } });
  const path = positionalFile(positionals);
  let document: PolicyDocument;
  try {
    document = loadPolicy(path).document;
  } catch (err) {
    if (!(err instanceof PolicyFileError)) throw err;
    if (values.json) io.stdout(`${JSON.stringify({ valid: false, file: path, code: err.code, line: err.line ?? null, field: err.field ?? null, message: err.message })}\n`);
    else io.stderr(errorLine(err));
    return EXIT.refused;
  }
  const hosts = document.hosts ? `on (accounts ${document.hosts.accounts.join(', ')})` : 'off';
  if (values.json) {
    io.stdout(`${JSON.stringify({ valid: true, file: path, rules: document.rules.map((r) => ({ name: r.name, line: r.line })), accounts: document.accounts, hosts: document.hosts !== undefined })}\n`)
  } else {
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    io.stdout(`${path}: valid: ${plural(document.rules.length, 'rule')}, ${plural(document.accounts.length, 'account')} (${document.accounts.join(', ')}), host certificates ${hosts}\n`);
  }
  return EXIT.ok;
}

/**
 * SSHCA_TRUSTED_SESSION_ROLES as the server's configuration lists it
 * (comma-separated). An entry only counts when it is exactly the role ARN
 * parseCallerIdentity derives for a session of that role (no path): anything
 * else never matches, and the server refuses it at start.
 */
function trustedSessionRoles(flags: readonly string[] | undefined, env: NodeJS.ProcessEnv): Set<string> {
  const roles = flags ?? (env.SSHCA_TRUSTED_SESSION_ROLES ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
  for (const role of roles) {
    const m = /^arn:([\w-]+):iam::(\d{12}):role\/(.+)$/.exec(role);
    let usable = false;
    try {
      const probe = m && parseCallerIdentity(`arn:${m[1]}:sts::${m[2]}:assumed-role/${m[3]}/probe`, m[2]!, 'AROAPROBEPROBEPROBE1:probe', m[1] as Partition, { trustedSessionRoles: new Set([role]), allowFederatedUsers: false });
      usable = probe?.roleArn === role && probe.sessionTrusted;
    } catch {
      usable = false;
    }
    if (!usable) throw new UsageError(`trusted session role ${JSON.stringify(role)} is not arn:<partition>:iam::<account>:role/<name> (without a path)`);
  }
  return new Set(roles);
}

function allowFederatedUsers(flag: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  if (flag) return true;
  const value = env.SSHCA_ALLOW_FEDERATED_USERS ?? 'false';
  if (value !== 'true' && value !== 'false') throw new UsageError('SSHCA_ALLOW_FEDERATED_USERS must be true or false');
  return value === 'true';
}

/** `--instance FILE`: DescribeInstances' answer as the AWS CLI prints it; only its shape is checked here, the server's reader does the rest. */
function describeInstances(path: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`--instance ${path}: ${(err as Error).message}`);
  }
  const reservations = (json as { Reservations?: unknown } | null)?.Reservations;
  const wellFormed = Array.isArray(reservations) && reservations.every((r) => typeof r === 'object' && r !== null && Array.isArray((r as { Instances?: unknown }).Instances) && (r as { Instances: unknown[] }).Instances.every((i) => typeof i === 'object' && i !== null));
  if (!wellFormed) throw new UsageError(`--instance ${path}: expected the JSON aws ec2 describe-instances prints ({"Reservations": [{"Instances": [...], "OwnerId": ...}]})`);
  return json;
}

async function explain(argv: readonly string[], io: PolicyCommandIo): Promise<number> {
  const { values: o, positionals } = args(argv, {
    arn: { type: 'string' },
    'user-id': { type: 'string' },
    'source-ip': { type: 'string' },
    principal: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    reason: { type: 'string' },
    'trusted-session-role': { type: 'string', multiple: true },
    'allow-federated-users': { type: 'boolean' },
    region: { type: 'string' },
    instance: { type: 'string' },
    json: { type: 'boolean' },
  });
  const path = positionalFile(positionals);
  const arn = o.arn as string | undefined;
  if (!arn) throw new UsageError('--arn is required');
  let ttlSeconds: number | undefined;
  if (o.ttl !== undefined) {
    ttlSeconds = parseDuration(o.ttl as string);
    if (ttlSeconds === undefined) throw new UsageError(`--ttl ${JSON.stringify(o.ttl)} is not a duration like 8h, 30m or 1h30m`);
    // The request schema's bounds: the server answers anything outside them with 400 before policy is asked.
    if (ttlSeconds < 60 || ttlSeconds > MAX_REQUESTABLE_TTL_SECONDS) throw new UsageError(`--ttl must be from 1m to ${formatDuration(MAX_REQUESTABLE_TTL_SECONDS)}`);
  }
  const sourceIp = o['source-ip'] as string | undefined;
  if (sourceIp !== undefined && isIP(sourceIp) === 0) throw new UsageError(`--source-ip ${JSON.stringify(sourceIp)} is not an IP address`);
  const principals = o.principal as string[] | undefined;
  const input: ExplainInput = {
    arn,
    ...(o['user-id'] !== undefined ? { userId: o['user-id'] as string } : {}),
    identityRules: {
      trustedSessionRoles: trustedSessionRoles(o['trusted-session-role'] as string[] | undefined, io.env),
      allowFederatedUsers: allowFederatedUsers(o['allow-federated-users'] as boolean | undefined, io.env),
    },
    request: {
      ...(principals ? { principals } : {}),
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
      ...(o.reason !== undefined ? { reason: o.reason as string } : {}),
      ...(sourceIp !== undefined ? { sourceIp } : {}),
    },
    ...(o.region !== undefined ? { region: o.region as string } : {}),
    ...(o.instance !== undefined ? { describeInstances: describeInstances(o.instance as string) } : {}),
  };
  let loaded: ReturnType<typeof loadPolicy>;
  try {
    loaded = loadPolicy(path);
  } catch (err) {
    if (!(err instanceof PolicyFileError)) throw err;
    io.stderr(errorLine(err));
    return EXIT.usage;
  }
  const explanation = await explainPolicy({ policy: loaded.store, accounts: loaded.store.accounts, document: loaded.document }, input);
  io.stdout(o.json ? `${JSON.stringify({ policy: path, ...explanation })}\n` : explanationText(path, explanation));
  if (explanation.decision === 'undetermined') io.stderr(`sshca-server policy: needs ${explanation.needs.join(', ')}: ${explanation.message}\n`);
  return explanation.decision === 'issue' ? EXIT.ok : explanation.decision === 'refuse' ? EXIT.refused : EXIT.usage;
}

/** The explanation for people: one labelled section per line, continuation lines indented. */
export function explanationText(path: string, e: Explanation): string {
  const out: string[] = [];
  const row = (label: string, ...lines: string[]) => lines.forEach((l, i) => out.push(`${(i === 0 ? label : '').padEnd(17)}${l}`));
  const id = e.identity;
  row('policy', path);
  if (id) {
    const what =
      id.kind === 'iam-user' ? `IAM user ${id.name}`
      : id.kind === 'ec2-instance' ? `instance identity of ${id.instanceId}`
      : id.kind === 'federated-user' ? `federated user ${id.name}`
      : `role ${id.name}, session ${id.sessionName} (${id.sessionTrust === 'sso' ? `IAM Identity Center, permission set ${id.ssoPermissionSet}` : id.sessionTrust === 'trusted-session-role' ? 'trusted session name' : 'untrusted session name: whoever assumes the role chooses it'})`;
    row('identity', id.arn, `${what}; account ${id.accountId}`, `user id ${id.userId}${id.userIdSynthesised ? ' (made up from the ARN; --user-id for the real one)' : ''}`);
  }
  if (e.rules.length > 0) {
    row('rules', ...e.rules.map((r) => `${r.name} (line ${r.line}): ${r.matched ? 'matches' : `no: match.${r.failed!.key} wants ${r.failed!.expected.join(' or ')}; this identity has ${r.failed!.actual ?? 'none'}`}`));
  } else if (e.certificate === 'user' && id) {
    row('rules', 'none');
  }
  const rule = e.rule ? ` from ${e.certificate === 'host' ? 'the hosts: section' : `rule ${e.rule.name}`} (line ${e.rule.line})` : '';
  if (e.decision === 'issue') row('decision', `issue a ${e.certificate} certificate${rule}`);
  else if (e.decision === 'refuse') row('decision', `refuse ${e.code}: ${e.message}`);
  else row('decision', `undetermined${rule}: ${e.message}`);
  if (e.decision === 'issue' || e.granted.length > 0 || e.dropped.length > 0) {
    const shown = e.decision === 'issue' ? e.principals : e.granted;
    row(e.decision === 'issue' ? 'principals' : 'granted', shown.length ? shown.join(', ') : 'none', ...e.dropped.map((d) => `dropped ${d.template}: ${d.reason}`));
  }
  if (e.ttl) {
    const t = e.ttl;
    const range = e.certificate === 'host' ? `the hosts: ttl` : `default ${formatDuration(t.defaultSeconds)}, at most ${formatDuration(t.maxSeconds)}`;
    row('lifetime', `${t.seconds !== null ? formatDuration(t.seconds) : t.requestedSeconds !== null ? `${formatDuration(t.requestedSeconds)} asked` : '-'} (${range})`);
  }
  if (e.certificate === 'user' && e.rule) {
    row('extensions', e.extensions.length ? e.extensions.join(', ') : 'none');
    const options = Object.entries(e.criticalOptions);
    row('critical options', ...(options.length ? options.map(([k, v]) => `${k} ${v}`) : ['none']));
    if (e.requireReason) row('reason', 'required (--reason)');
  }
  if (e.host) {
    row('instance must be', ...e.host.requirements);
    if (e.host.ignoredNames.length) row('names left out', e.host.ignoredNames.join(', '));
  }
  if (id) row('sshca roles', e.roles.length ? e.roles.join(', ') : 'none', ...(e.rolesNote ? [e.rolesNote] : []));
  if (e.needs.length) row('needs', e.needs.join(', '));
  return `${out.join('\n')}\n`;
}

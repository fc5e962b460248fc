// Rule 17: roles (admin, auditor) only for identities a rule names — at load
// time (the file is refused), at run time (rolesFor), through the app, and in
// the policy the dev server generates.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { IdentityTokenSigner } from '../../../client/identity-token-signer.js';
import { REQUEST_HEADER, requestBinding } from '../../../protocol/identity-token.js';
import { LocalSigner } from '../../../server/ca/local-signer.js';
import { DEV_ACCOUNT, LEGACY_DEV_POLICY, devPolicy, prepareDevEnvironment } from '../../../server/dev/dev-environment.js';
import { parseCallerIdentity } from '../../../server/identity/caller-identity.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile, type PolicyDocument, type PolicyRule } from '../../../server/policy/policy-file.js';
import { PolicyStore } from '../../../server/policy/policy-store.js';
import { startDevServer, type DevServer } from '../../fixtures/dev-server.js';
import { ACCOUNT, type FixturePrincipal, type StsFixture } from '../../fixtures/sts-fixture.js';
import { craftToken, startHarness } from '../../fixtures/sts-verifier-harness.js';
import { startTestApp } from '../../fixtures/test-app.js';

const A = '111111111111';
const rules = { trustedSessionRoles: new Set([`arn:aws:iam::${A}:role/Pinned`]), allowFederatedUsers: false };
const user = (name: string) => parseCallerIdentity(`arn:aws:iam::${A}:user/${name}`, A, 'AIDAEXAMPLEEXAMPLE12', 'aws', rules);
const role = (name: string, session: string) => parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/${name}/${session}`, A, `AROAEXAMPLEEXAMPLE12:${session}`, 'aws', rules);
const sso = (set: string, session: string) => role(`AWSReservedSSO_${set}_0123456789abcdef`, session);

/** The error parsePolicyFile throws for `text`, or undefined. */
function refusal(text: string): { code?: string; message: string } | undefined {
  try {
    parsePolicyFile(text, 'p.yaml');
    return undefined;
  } catch (err) {
    return err as { code?: string; message: string };
  }
}

const policyWith = (rule: string) => `accounts: ['${A}']\nrules:\n  - name: r\n${rule}`;

t.test('load time: a rule with roles must name the identity', async (t) => {
  const refused: Array<[string, string, number, string]> = [
    ['account only', `    match: { account: '${A}' }\n    principals: ['{{user}}']\n    roles: [admin]\n`, 6, 'rules[0].roles'],
    ['account only, auditor', `    match:\n      account: ['${A}']\n    principals: [ops]\n    roles: [auditor]\n`, 7, 'rules[0].roles'],
    ['role glob *', `    match: { role: 'arn:aws:iam::${A}:role/*' }\n    principals: [ops]\n    roles: [admin]\n`, 4, 'rules[0].match.role[0]'],
    ['role glob ? in a list', `    match:\n      role:\n        - 'arn:aws:iam::${A}:role/BreakGlass'\n        - 'arn:aws:iam::${A}:role/Admin?'\n    principals: [ops]\n    roles: [admin]\n`, 7, 'rules[0].match.role[1]'],
    ['role glob with an account', `    match: { account: '${A}', role: 'arn:aws:iam::${A}:role/Ops-*' }\n    principals: [ops]\n    roles: [auditor]\n`, 4, 'rules[0].match.role[0]'],
  ];
  for (const [name, rule, line, field] of refused) {
    const err = refusal(policyWith(rule));
    t.equal(err?.code, 'CONFIG_POLICY_INVALID', `${name}: refused`);
    t.equal(Number(/^p\.yaml:(\d+):/.exec(err?.message ?? '')?.[1]), line, `${name}: line ${line}`);
    t.equal(/^p\.yaml:\d+: ([^:]+):/.exec(err?.message ?? '')?.[1], field, `${name}: field ${field}`);
  }
  const accepted: Array<[string, string]> = [
    ['IAM user ARN', `    match: { iamUser: 'arn:aws:iam::${A}:user/alice' }\n    principals: ['{{user}}']\n    roles: [admin, auditor]\n`],
    ['exact role ARN', `    match: { role: 'arn:aws:iam::${A}:role/BreakGlass' }\n    principals: [root]\n    roles: [admin]\n`],
    ['exact role ARN and an account', `    match: { account: '${A}', role: 'arn:aws:iam::${A}:role/BreakGlass' }\n    principals: [root]\n    roles: [admin]\n`],
    ['SSO permission set', '    match: { ssoPermissionSet: Admin }\n    principals: [\'{{sessionLocalPart}}\']\n    roles: [auditor]\n'],
    ['account only, no roles', `    match: { account: '${A}' }\n    principals: ['{{user}}']\n`],
    ['account only, empty roles', `    match: { account: '${A}' }\n    principals: ['{{user}}']\n    roles: []\n`],
    ['role glob without roles', `    match: { role: 'arn:aws:iam::${A}:role/Deploy-*' }\n    principals: [deploy]\n`],
  ];
  for (const [name, rule] of accepted) t.equal(refusal(policyWith(rule)), undefined, `${name}: accepted`);
});

/** A rule as parsePolicyFile would build it, for documents that skip its checks. */
function rawRule(over: Partial<PolicyRule>): PolicyRule {
  return { name: 'raw', line: 1, match: {}, principals: ['{{user}}'], ttlSeconds: 3600, maxTtlSeconds: 3600, extensions: {}, criticalOptions: {}, requireReason: false, roles: ['admin', 'auditor'], ...over };
}

t.test('run time: rolesFor gives roles only to a named identity with a principal', async (t) => {
  // Documents built by hand, past parsePolicyFile's checks.
  const accountWide: PolicyDocument = { accounts: [A], rules: [rawRule({ match: { accounts: [A] }, principals: ['{{user}}', 'ops'] })] };
  t.same(new FilePolicy(accountWide).rolesFor(user('bob')), [], 'account-only match: an IAM user gets no role');
  t.same(new FilePolicy(accountWide).rolesFor(role('Deploy', 'ci-run-42')), [], 'account-only match: a role session gets no role');
  t.same(new FilePolicy(accountWide).decide(role('Deploy', 'ci-run-42'), {}).principals, ['ops'], 'the same rule still decides certificates');
  const glob: PolicyDocument = { accounts: [A], rules: [rawRule({ match: { roles: [{ pattern: `arn:aws:iam::${A}:role/*`, prefix: `arn:aws:iam::${A}:role/`, name: /^.*$/ }] }, principals: ['ops'] })] };
  t.same(new FilePolicy(glob).rolesFor(role('Deploy', 'ci-run-42')), [], 'a role glob names nobody');

  const policy = new FilePolicy(
    parsePolicyFile(
      `accounts: ['${A}']
rules:
  - name: admins
    match: { iamUser: 'arn:aws:iam::${A}:user/alice' }
    principals: ['{{user}}']
    roles: [admin, auditor]
  - name: session-only
    match: { iamUser: 'arn:aws:iam::${A}:user/svc' }
    principals: ['{{session}}']
    roles: [admin]
  - name: pinned
    match: { role: ['arn:aws:iam::${A}:role/Pinned', 'arn:aws:iam::${A}:role/Unpinned'] }
    principals: ['{{session}}']
    roles: [auditor]
  - name: sso-auditors
    match: { ssoPermissionSet: Audit }
    principals: ['{{sessionLocalPart}}']
    sessionDomains: [corp.com]
    roles: [auditor]
  - name: everyone
    match: { account: '${A}' }
    principals: ['{{user}}']
`,
      'p.yaml',
    ),
  );
  const cases: Array<[string, ReturnType<typeof user>, string[]]> = [
    ['named IAM user', user('alice'), ['admin', 'auditor']],
    ['named IAM user whose rule renders no principal', user('svc'), []],
    ['another IAM user (account rule)', user('bob'), []],
    ['named role with a trusted session', role('Pinned', 'carol'), ['auditor']],
    ['named role, untrusted session: no principal, no role', role('Unpinned', 'carol'), []],
    ['SSO set, session in the domain', sso('Audit', 'dana@corp.com'), ['auditor']],
    ['SSO set, session outside the domain', sso('Audit', 'dana@other.org'), []],
    ['SSO look-alike set', sso('Audit_Prod', 'dana@corp.com'), []],
    ['role session falling to the account rule', role('Deploy', 'ci-run-42'), []],
  ];
  for (const [name, identity, want] of cases) t.same(policy.rolesFor(identity), want, name);
});

/** GET /v1/audit as `principal`, with a token bound to that request. */
async function auditAs(app: Awaited<ReturnType<typeof startTestApp>>['app'], sts: StsFixture, principal: FixturePrincipal) {
  const path = `/v1/audit?nonce=${randomBytes(8).toString('hex')}`;
  const token = await craftToken(sts, principal, { extraHeaders: { [REQUEST_HEADER]: requestBinding('GET', path, '') } });
  const res = await app.inject({ method: 'GET', url: path, headers: { authorization: `SSHCA-AWS4 ${token}` } });
  return { status: res.statusCode, code: (res.json() as { code?: string }).code };
}

t.test('attack: a role session matched only by account gets no role', async (t) => {
  const harness = await startHarness(t);
  const signer = LocalSigner.openOrCreate(join(t.testdir(), 'ca.pem'), 'ed25519');
  const roleArn = `arn:aws:iam::${ACCOUNT}:role/Deploy`;

  // The file an attacker-friendly operator might write is refused outright.
  const accountWide = `accounts: ['${ACCOUNT}']\nrules:\n  - name: everyone\n    match: { account: '${ACCOUNT}' }\n    principals: [deploy]\n    roles: [auditor]\n`;
  t.equal(refusal(accountWide)?.code, 'CONFIG_POLICY_INVALID', 'an account-only rule with roles does not load');

  // The same document built past the loader: still no role at run time.
  const bypass = await startTestApp(t, harness, signer, {
    policy: new FilePolicy({ accounts: [ACCOUNT], rules: [rawRule({ name: 'everyone', match: { accounts: [ACCOUNT] }, principals: ['deploy'], roles: ['auditor'] })] }),
  });
  t.same(await auditAs(bypass.app, harness.sts, harness.sts.principals.roleSession), { status: 403, code: 'POLICY_ROLE_REQUIRED' }, 'account-wide match: the role session is refused');

  // A rule naming the role whose only principal is the (untrusted) session name.
  const untrusted = await startTestApp(t, harness, signer, {
    policy: new FilePolicy(parsePolicyFile(`accounts: ['${ACCOUNT}']\nrules:\n  - name: deploy\n    match: { role: '${roleArn}' }\n    principals: ['{{session}}']\n    roles: [auditor]\n`, 'p.yaml')),
  });
  t.same(await auditAs(untrusted.app, harness.sts, harness.sts.principals.roleSession), { status: 403, code: 'POLICY_ROLE_REQUIRED' }, 'named role, no principal for an untrusted session: refused');

  // Control: the same role named, with a principal it can have, is an auditor.
  const named = await startTestApp(t, harness, signer, {
    policy: new FilePolicy(parsePolicyFile(`accounts: ['${ACCOUNT}']\nrules:\n  - name: deploy\n    match: { role: '${roleArn}' }\n    principals: [deploy]\n    roles: [auditor]\n`, 'p.yaml')),
  });
  t.equal((await auditAs(named.app, harness.sts, harness.sts.principals.roleSession)).status, 200, 'named role with a principal: allowed');
});

t.test('the generated dev policy gives roles to the dev user only', async (t) => {
  const dir = t.testdir();
  const env = prepareDevEnvironment(join(dir, 'fresh'), 'ida', 'ed25519');
  t.equal(readFileSync(env.policyPath, 'utf8'), devPolicy(env.identity.arn), 'a fresh data dir gets the new policy');
  const store = PolicyStore.load(env.policyPath);
  const dev = parseCallerIdentity(env.identity.arn, DEV_ACCOUNT, env.identity.userId, 'aws', rules);
  const other = parseCallerIdentity(`arn:aws:iam::${DEV_ACCOUNT}:user/mallory`, DEV_ACCOUNT, 'AIDAEXAMPLEEXAMPLE99', 'aws', rules);
  t.same(store.rolesFor(dev), ['admin', 'auditor'], 'the dev user is admin and auditor');
  t.same(store.decide(dev, {}).principals, ['ida']);
  t.same(store.rolesFor(other), [], 'another identity of the dev account gets no role');
  t.same(store.decide(other, {}).principals, ['mallory'], 'but still its own name');

  // A data dir from an older version: exactly the old generated text is upgraded.
  const legacyDir = join(dir, 'legacy');
  prepareDevEnvironment(legacyDir, 'ida', 'ed25519');
  writeFileSync(join(legacyDir, 'policy.yaml'), LEGACY_DEV_POLICY);
  t.equal(refusal(LEGACY_DEV_POLICY)?.code, 'CONFIG_POLICY_INVALID', 'the old generated policy no longer loads');
  const upgraded = prepareDevEnvironment(legacyDir, 'ida', 'ed25519');
  t.equal(readFileSync(upgraded.policyPath, 'utf8'), devPolicy(upgraded.identity.arn), 'the old generated policy is replaced');

  // Anything else is the operator's: never overwritten, even when it will not load.
  const editedDir = join(dir, 'edited');
  prepareDevEnvironment(editedDir, 'ida', 'ed25519');
  const edited = LEGACY_DEV_POLICY.replace('ttl: 8h', 'ttl: 9h');
  writeFileSync(join(editedDir, 'policy.yaml'), edited);
  prepareDevEnvironment(editedDir, 'ida', 'ed25519');
  t.equal(readFileSync(join(editedDir, 'policy.yaml'), 'utf8'), edited, 'an edited policy is left alone');
  t.throws(() => PolicyStore.load(join(editedDir, 'policy.yaml')), { code: 'CONFIG_POLICY_INVALID' }, 'and refused, naming why');
  writeFileSync(join(editedDir, 'policy.yaml'), LEGACY_DEV_POLICY.trimEnd());
  prepareDevEnvironment(editedDir, 'ida', 'ed25519');
  t.equal(readFileSync(join(editedDir, 'policy.yaml'), 'utf8'), LEGACY_DEV_POLICY.trimEnd(), 'not even a one-byte difference');
});

/** GET /v1/audit on a dev server as its dev user, with the real SDK signer. */
async function devAudit(dev: DevServer): Promise<number> {
  const path = `/v1/audit?nonce=${randomBytes(8).toString('hex')}`;
  const token = await new IdentityTokenSigner({ credentials: dev.credentials }).sign({ endpoint: dev.endpoint, audience: dev.audience, method: 'GET', pathAndQuery: path, body: '' });
  return (await fetch(`${dev.url}${path}`, { headers: { authorization: `SSHCA-AWS4 ${token}` } })).status;
}

t.test('a dev server on an old data dir starts, and its dev user is still an auditor', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sshca-dev-legacy-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  writeFileSync(join(dataDir, 'policy.yaml'), LEGACY_DEV_POLICY);
  const dev = await startDevServer(t, { dataDir, devUser: 'ida' });
  t.equal(readFileSync(join(dataDir, 'policy.yaml'), 'utf8'), devPolicy(`arn:aws:iam::${DEV_ACCOUNT}:user/ida`));
  t.equal(await devAudit(dev), 200, 'the dev user reads the audit log');
});

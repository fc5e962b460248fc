// `sshca-server policy explain` agrees with the server. One production-mode
// server (main.ts's startServer on a loadConfig configuration, its STS
// allowlist pointed at the STS fixture, EC2 at the EC2 fixture) issues real
// certificates to each identity kind the STS fixture answers as; the built
// `sshca-server policy explain --json`, run as a process on the same policy
// file, must name the same rule, principals, lifetime, extensions, critical
// options and roles — and the same code when the server refuses.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import t, { type Test } from 'tap';
import { REQUEST_HEADER, requestBinding } from '../../../protocol/identity-token.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { BACKDATE_SECONDS } from '../../../server/ca/certificate-template.js';
import { LocalSigner } from '../../../server/ca/local-signer.js';
import { loadConfig, type ProductionConfig } from '../../../server/config.js';
import { startServer } from '../../../server/main.js';
import type { Explanation } from '../../../server/policy/policy-explain.js';
import { runCommand } from '../../fixtures/cli.js';
import { FIXTURE_INSTANCES, NAME_TAG, VPC_A, startEc2Fixture } from '../../fixtures/ec2-fixture.js';
import { keygenList, needsOpenSsh } from '../../fixtures/openssh.js';
import { SERVER_BIN } from '../../fixtures/server-process.js';
import { ACCOUNT, FIXTURE_REGION, startStsFixture, type FixturePrincipal } from '../../fixtures/sts-fixture.js';
import { craftToken } from '../../fixtures/sts-verifier-harness.js';

const ENGINEER_ROLE = `arn:aws:iam::${ACCOUNT}:role/Engineer`;
const POLICY = `accounts: ['${ACCOUNT}']
rules:
  - name: sso-admins
    match: { ssoPermissionSet: Admin }
    principals: ['{{sessionLocalPart}}', ops]
    sessionDomains: [corp.com]
    ttl: 4h
    roles: [auditor]
  - name: engineers
    match: { role: '${ENGINEER_ROLE}' }
    principals: ['{{sessionLocalPart}}', '{{session}}']
    ttl: 2h
    maxTtl: 6h
    roles: [admin]
  - name: deploy
    match: { role: 'arn:aws:iam::${ACCOUNT}:role/Deploy' }
    principals: [deploy, '{{session}}']
    ttl: 10m
    maxTtl: 30m
    extensions: []
    criticalOptions:
      force-command: /usr/local/bin/deploy
      source-address: '{{sourceIp}},10.0.0.0/8'
  - name: alice
    match: { iamUser: 'arn:aws:iam::${ACCOUNT}:user/engineering/alice' }
    principals: ['{{user}}', ops]
    extensions: [permit-pty]
    roles: [admin, auditor]
hosts:
  vpcs: [${VPC_A}]
  tags: { Environment: prod }
  nameTag: '${NAME_TAG}'
  nameDomains: [corp.example.com]
  ttl: 2d
`;

// ---- one server, one set of fixtures, for every case below ----
const dir = t.testdir();
const sts = await startStsFixture(t);
const ec2 = await startEc2Fixture(t, { sts });
const policyPath = join(dir, 'policy.yaml');
writeFileSync(policyPath, POLICY);
const checkpointPath = join(dir, 'checkpoint.pem');
writeFileSync(checkpointPath, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
LocalSigner.openOrCreate(join(dir, 'user-ca.pem'), 'ed25519');
LocalSigner.openOrCreate(join(dir, 'host-ca.pem'), 'ed25519');
/** What the server reads, and what explain reads too (SSHCA_TRUSTED_SESSION_ROLES). */
const trustEnv = { SSHCA_TRUSTED_SESSION_ROLES: ENGINEER_ROLE };
const config: ProductionConfig = {
  ...(loadConfig([], {
    ...trustEnv,
    SSHCA_AUDIENCE: 'https://sshca.test.example',
    SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com/',
    SSHCA_POLICY: policyPath,
    SSHCA_USER_CA: `file:${join(dir, 'user-ca.pem')}`,
    SSHCA_HOST_CA: `file:${join(dir, 'host-ca.pem')}`,
    SSHCA_CHECKPOINT_KEY: checkpointPath,
    SSHCA_AUDIT_DB: join(dir, 'audit.db'),
    SSHCA_EC2_ENDPOINT: ec2.url,
    SSHCA_PORT: '0',
    SSHCA_METRICS_PORT: 'off',
    SSHCA_RATE_LIMIT_PER_MINUTE: '0',
    SSHCA_REFUSAL_SUMMARY_SECONDS: '1',
  }, 'sshca', dir) as ProductionConfig),
  // Production accepts only real STS URLs; the fixture stands in for one, reached through the allowlist alone.
  stsEndpoints: [{ url: sts.url, region: FIXTURE_REGION, partition: 'aws' }],
};
// The server's own credentials (the default chain: environment) read EC2, as in production.
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: sts.principals.ec2Reader.accessKeyId,
  AWS_SECRET_ACCESS_KEY: sts.principals.ec2Reader.secretAccessKey,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
  AWS_CONFIG_FILE: join(dir, 'none'),
});
const server = await startServer(config, { logger: false });
t.teardown(() => server.close());

// A session of a role the operator trusts (the session name is pinned by its trust policy).
sts.assumableRoles.add(ENGINEER_ROLE);
const stsClient = new STSClient({ endpoint: sts.url, region: FIXTURE_REGION, credentials: sts.principals.user, maxAttempts: 1 });
t.teardown(() => stsClient.destroy());
await stsClient.send(new AssumeRoleCommand({ RoleArn: ENGINEER_ROLE, RoleSessionName: 'alice@corp.com' }));
const engineer = sts.assumed.at(-1)!.principal;

const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
const nonce = () => randomBytes(12).toString('hex');

/** A signed request to the running server, as the client makes it. */
async function call(principal: FixturePrincipal, method: 'GET' | 'POST', path: string, body?: Record<string, unknown>) {
  const payload = body ? JSON.stringify(body) : '';
  const token = await craftToken(sts, principal, { audience: config.audience, boundPath: path, boundBody: payload, extraHeaders: { [REQUEST_HEADER]: requestBinding(method, path, payload) } });
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `SSHCA-AWS4 ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: payload } : {}) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** The audit record of one certificate, read as an auditor (IAM user alice) through GET /v1/audit. */
async function auditRecord(serial: string): Promise<Record<string, unknown>> {
  const r = await call(sts.principals.user, 'GET', `/v1/audit?serial=${serial}&kind=issued&limit=1&nonce=${nonce()}`);
  const record = (r.json.records as Array<{ data: Record<string, unknown> }>)[0];
  if (!record) throw new Error(`no audit record for serial ${serial}: ${JSON.stringify(r.json)}`);
  return record.data;
}

/** The sshca roles the server gives `principal`, found by asking for what each role allows. */
async function serverRoles(principal: FixturePrincipal): Promise<string[]> {
  const roles: string[] = [];
  // Admin: a revocation of a serial nobody was issued is 404 for an admin, 403 POLICY_ROLE_REQUIRED otherwise; nothing changes either way.
  const revoke = await call(principal, 'POST', '/v1/revocations', { serial: '1', reason: 'policy explain test: role probe', nonce: nonce() });
  if (revoke.status === 404) roles.push('admin');
  else if (revoke.json.code !== 'POLICY_ROLE_REQUIRED') throw new Error(`unexpected revocation answer ${JSON.stringify(revoke.json)}`);
  const audit = await call(principal, 'GET', `/v1/audit?limit=1&nonce=${nonce()}`);
  if (audit.status === 200) roles.push('auditor');
  else if (audit.json.code !== 'POLICY_ROLE_REQUIRED') throw new Error(`unexpected audit answer ${JSON.stringify(audit.json)}`);
  return roles;
}

/** The built `sshca-server policy explain FILE --json …`, as a process. */
async function explain(args: string[], env: Record<string, string> = trustEnv) {
  const r = await runCommand(SERVER_BIN, ['policy', 'explain', policyPath, '--json', ...args], env);
  return { code: r.code, stderr: r.stderr, json: r.stdout ? (JSON.parse(r.stdout) as Explanation & { policy: string }) : undefined };
}
const identityArgs = (p: FixturePrincipal) => ['--arn', p.arn, '--user-id', p.userId];

/** Issues a certificate to `principal` and holds everything about it against explain's answer for the same identity and request. */
async function agrees(t: Test, name: string, principal: FixturePrincipal, expected: { rule: string; principals: string[]; ttlSeconds: number; extensions: string[]; criticalOptions: Record<string, string>; roles: string[] }, args: string[] = identityArgs(principal)) {
  const host = principal.arn.includes(':assumed-role/aws:ec2-instance/');
  const issued = host
    ? await call(principal, 'POST', '/v1/certs/host', { publicKey, region: FIXTURE_REGION, nonce: nonce() })
    : await call(principal, 'POST', '/v1/certs/user', { publicKey, nonce: nonce() });
  t.equal(issued.status, 201, `${name}: the server issues (${JSON.stringify(issued.json)})`);
  const record = await auditRecord(issued.json.serial as string);
  const certPath = join(dir, `${name.replace(/\W+/g, '-')}-cert.pub`);
  writeFileSync(certPath, `${issued.json.certificate as string}\n`);
  const listing = keygenList(certPath);
  const server = {
    rule: record.policyRule,
    principals: record.principals,
    ttlSeconds: (record.validBefore as number) - (record.validAfter as number) - BACKDATE_SECONDS,
    extensions: record.extensions,
    criticalOptions: record.criticalOptions,
    roles: await serverRoles(principal),
  };
  t.same(server, expected, `${name}: the server decided as the test expects`);
  t.same(listing.principals, server.principals, `${name}: the certificate carries the recorded principals`);
  t.same(listing.extensions, server.extensions, `${name}: and the recorded extensions`);
  t.same(listing.criticalOptions, Object.entries(server.criticalOptions as Record<string, string>).map(([k, v]) => `${k} ${v}`), `${name}: and the recorded critical options`);
  const e = await explain(args);
  t.equal(e.code, 0, `${name}: explain exits 0 (${e.stderr})`);
  t.same(
    { rule: e.json?.rule?.name, principals: e.json?.principals, ttlSeconds: e.json?.ttl?.seconds, extensions: e.json?.extensions, criticalOptions: e.json?.criticalOptions, roles: e.json?.roles },
    server,
    `${name}: explain agrees with the server`,
  );
  t.equal(e.json?.decision, 'issue');
  t.equal(e.json?.certificate, host ? 'host' : 'user');
  return e.json!;
}

/** A request the server refuses with a 403 and explain refuses with the same code (exit 1). */
async function refusesAlike(t: Test, name: string, principal: FixturePrincipal, body: Record<string, unknown>, args: string[], code: string) {
  const r = await call(principal, 'POST', '/v1/certs/user', { publicKey, nonce: nonce(), ...body });
  t.same([r.status, r.json.code], [403, code], `${name}: the server refuses with ${code}`);
  const e = await explain([...identityArgs(principal), ...args]);
  t.same([e.code, e.json?.decision, e.json?.code], [1, 'refuse', code], `${name}: explain refuses with ${code}, exit 1`);
  return e.json!;
}

t.test('each identity kind: explain names what the server issued', needsOpenSsh, async (t) => {
  const p = sts.principals;
  const user = await agrees(t, 'IAM user', p.user, { rule: 'alice', principals: ['alice', 'ops'], ttlSeconds: 8 * 3600, extensions: ['permit-pty'], criticalOptions: {}, roles: ['admin', 'auditor'] });
  t.match(user.identity, { kind: 'iam-user', name: 'alice', userIdSynthesised: false, userId: p.user.userId });
  t.same(user.rules.map((r) => [r.name, r.matched, r.failed?.key ?? null]), [['sso-admins', false, 'ssoPermissionSet'], ['engineers', false, 'role'], ['deploy', false, 'role'], ['alice', true, null]], 'the trace: each rule before the match, and why not');

  const untrusted = await agrees(t, 'assumed role, untrusted session', p.roleSession, { rule: 'deploy', principals: ['deploy'], ttlSeconds: 600, extensions: [], criticalOptions: { 'force-command': '/usr/local/bin/deploy', 'source-address': '127.0.0.1/32,10.0.0.0/8' }, roles: [] }, [...identityArgs(p.roleSession), '--source-ip', '127.0.0.1']);
  t.match(untrusted.identity, { kind: 'assumed-role', sessionTrust: 'untrusted', sessionName: 'ci-run-42' });
  t.same(untrusted.dropped.map((d) => d.template), ['{{session}}'], 'the untrusted session name fills no template');

  const trusted = await agrees(t, 'assumed role, trusted session', engineer, { rule: 'engineers', principals: ['alice', 'alice@corp.com'], ttlSeconds: 7200, extensions: ['permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty'], criticalOptions: {}, roles: ['admin'] });
  t.equal(trusted.identity?.sessionTrust, 'trusted-session-role');

  // No --user-id: a synthesised one decides the same.
  const sso = await agrees(t, 'IAM Identity Center session', p.ssoSession, { rule: 'sso-admins', principals: ['alice', 'ops'], ttlSeconds: 4 * 3600, extensions: ['permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty'], criticalOptions: {}, roles: ['auditor'] }, ['--arn', p.ssoSession.arn]);
  t.match(sso.identity, { sessionTrust: 'sso', ssoPermissionSet: 'Admin', userIdSynthesised: true, userId: /^AROA[A-Z2-7]{16}:alice@corp\.com$/ });

  // The instance's describe-instances answer, as the AWS CLI would print it, read by the server's own EC2 reader.
  const running = FIXTURE_INSTANCES.running;
  const described = await ec2.client(p.ec2Reader).send(new DescribeInstancesCommand({ InstanceIds: [running.instanceId] }));
  const instanceFile = join(dir, 'describe-instances.json');
  writeFileSync(instanceFile, JSON.stringify(described));
  const instance = sts.mintInstanceIdentity(running.instanceId);
  const hostPrincipals = [running.instanceId, 'ip-10-0-1-10.ec2.internal', 'ec2-203-0-113-10.compute-1.amazonaws.com', 'web-1.corp.example.com', '10.0.1.10', '10.0.1.11', '203.0.113.10', '2600:1f18:abcd:1200::10'];
  const host = await agrees(t, 'instance identity (host certificate)', instance, { rule: 'hosts', principals: hostPrincipals, ttlSeconds: 2 * 86400, extensions: [], criticalOptions: {}, roles: [] }, [...identityArgs(instance), '--region', FIXTURE_REGION, '--instance', instanceFile]);
  t.same(host.host?.ignoredNames, ['web.internal'], 'a tagged name outside nameDomains is named as left out');
});

t.test('refusals: the same code as the server, and the why-not lines', async (t) => {
  const p = sts.principals;
  const noRule = await refusesAlike(t, 'a look-alike permission set', p.ssoLookalike, {}, [], 'POLICY_NO_RULE');
  t.same(
    noRule.rules.map((r) => [r.name, r.line, r.matched, r.failed?.key, r.failed?.actual]),
    [
      ['sso-admins', 3, false, 'ssoPermissionSet', 'Admin_Prod'],
      ['engineers', 9, false, 'role', p.ssoLookalike.arn.replace(/^arn:aws:sts::(\d+):assumed-role\/([^/]+)\/.*$/, 'arn:aws:iam::$1:role/$2')],
      ['deploy', 15, false, 'role', p.ssoLookalike.arn.replace(/^arn:aws:sts::(\d+):assumed-role\/([^/]+)\/.*$/, 'arn:aws:iam::$1:role/$2')],
      ['alice', 24, false, 'iamUser', null],
    ],
    'every rule, its line, the first condition that failed and what the identity had',
  );
  t.same(noRule.rules[0]?.failed?.expected, ['Admin']);
  t.equal(noRule.rule, null);
  await refusesAlike(t, 'a principal not granted', p.user, { principals: ['root'] }, ['--principal', 'root'], 'POLICY_PRINCIPAL_DENIED');
  const long = await refusesAlike(t, 'a lifetime above maxTtl', p.user, { ttlSeconds: 13 * 3600 }, ['--ttl', '13h'], 'POLICY_TTL_EXCEEDED');
  t.match(long.ttl, { defaultSeconds: 8 * 3600, maxSeconds: 12 * 3600, requestedSeconds: 13 * 3600, seconds: null });
  t.equal(long.rule?.name, 'alice', 'the deciding rule is still named');
  const ok = await explain([...identityArgs(p.user), '--ttl', '12h', '--principal', 'ops']);
  t.same([ok.code, ok.json?.principals, ok.json?.ttl?.seconds], [0, ['ops'], 12 * 3600], 'within bounds: the subset asked, for as long as asked');

  // Refused while authenticating: the client sees AUTHN_FAILED, the refusal summary on the record keeps the code.
  const authn: Array<[string, FixturePrincipal, string]> = [
    ['root', p.root, 'AUTHN_ROOT_REFUSED'],
    ['a federated user', p.federated, 'AUTHN_FEDERATED_REFUSED'],
    ['an account not in the policy', p.otherAccount, 'AUTHN_ACCOUNT_NOT_ALLOWED'],
  ];
  for (const [name, principal, code] of authn) {
    const r = await call(principal, 'POST', '/v1/certs/user', { publicKey, nonce: nonce() });
    t.same([r.status, r.json.code], [401, 'AUTHN_FAILED'], `${name}: the server's uniform 401`);
    const e = await explain(identityArgs(principal));
    t.same([e.code, e.json?.decision, e.json?.code], [1, 'refuse', code], `${name}: explain says ${code}`);
  }
  const summarised = new Set<string>();
  for (let i = 0; i < 100 && !authn.every(([, , code]) => summarised.has(code)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const page = await call(p.user, 'GET', `/v1/audit?kind=refused-summary&limit=20&nonce=${nonce()}`);
    for (const record of page.json.records as Array<{ data: { counts: Array<{ code: string }> } }>) for (const c of record.data.counts) summarised.add(c.code);
  }
  for (const [name, , code] of authn) t.ok(summarised.has(code), `${name}: the server's record says ${code} too`);

  const federatedAllowed = await explain([...identityArgs(p.federated), '--allow-federated-users']);
  t.same([federatedAllowed.code, federatedAllowed.json?.code, federatedAllowed.json?.identity?.kind], [1, 'POLICY_NO_RULE', 'federated-user'], '--allow-federated-users: the policy decides (no rule here)');
  const malformed = await explain(['--arn', `arn:aws:iam::${ACCOUNT}:group/ops`]);
  t.same([malformed.code, malformed.json?.code], [1, 'AUTHN_IDENTITY_KIND'], 'an identity kind STS never answers as a caller');
  const garbage = await explain(['--arn', 'not-an-arn']);
  t.same([garbage.code, garbage.json?.code, garbage.json?.identity], [1, 'AUTHN_STS_RESPONSE', null], 'a malformed ARN');
});

t.test('trusted session roles: the environment as the server reads it, or the flag', async (t) => {
  const args = identityArgs(engineer);
  const fromEnv = await explain(args, trustEnv);
  const fromFlag = await explain([...args, '--trusted-session-role', ENGINEER_ROLE], {});
  const neither = await explain(args, {});
  t.same([fromEnv.code, fromEnv.json?.principals], [0, ['alice', 'alice@corp.com']], 'SSHCA_TRUSTED_SESSION_ROLES');
  t.same(fromFlag.json?.principals, fromEnv.json?.principals, '--trusted-session-role');
  t.same([neither.code, neither.json?.code, neither.json?.identity?.sessionTrust, neither.json?.roles], [1, 'POLICY_NO_PRINCIPALS', 'untrusted', []], 'untrusted: no principal, and so no role');
  t.match(neither.json?.rolesNote, /no principal/);
  t.same(neither.json?.dropped.map((d) => d.template), ['{{sessionLocalPart}}', '{{session}}']);
});

t.test('what explain cannot know without a flag is asked for (exit 2), never guessed', async (t) => {
  const noIp = await explain(identityArgs(sts.principals.roleSession));
  t.same([noIp.code, noIp.json?.decision, noIp.json?.needs], [2, 'undetermined', ['--source-ip']], 'a {{sourceIp}} rule needs --source-ip');
  t.equal(noIp.json?.criticalOptions['source-address'], '{{sourceIp}},10.0.0.0/8', 'the template is shown as written');
  const instance = sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId);
  const noInstance = await explain(identityArgs(instance));
  t.same([noInstance.code, noInstance.json?.certificate, noInstance.json?.needs], [2, 'host', ['--instance']], 'a host certificate needs what EC2 says');
  t.ok(noInstance.json?.host?.requirements.some((r) => r.includes(VPC_A)), 'and says what the instance must be');
  const stopped = join(dir, 'stopped.json');
  writeFileSync(stopped, JSON.stringify(await ec2.client(sts.principals.ec2Reader).send(new DescribeInstancesCommand({ InstanceIds: [FIXTURE_INSTANCES.stopped.instanceId] }))));
  const stoppedIdentity = sts.mintInstanceIdentity(FIXTURE_INSTANCES.stopped.instanceId);
  const r = await call(stoppedIdentity, 'POST', '/v1/certs/host', { publicKey, region: FIXTURE_REGION, nonce: nonce() });
  const e = await explain([...identityArgs(stoppedIdentity), '--instance', stopped]);
  t.same([e.code, e.json?.code], [1, r.json.code], 'a stopped instance: the server and explain refuse alike');
  t.equal(r.json.code, 'POLICY_HOST_INSTANCE_STATE');
  const wrong = await explain([...identityArgs(instance), '--instance', stopped]);
  t.same([wrong.code, wrong.json?.code], [1, 'POLICY_HOST_INSTANCE_UNKNOWN'], "another instance's answer does not describe this one");
});

t.test('usage errors exit 2 with the usage', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['no --arn', []],
    ['a --ttl that is no duration', ['--arn', sts.principals.user.arn, '--ttl', 'soon']],
    ['a --ttl the request schema refuses', ['--arn', sts.principals.user.arn, '--ttl', '30s']],
    ['a --source-ip that is no address', ['--arn', sts.principals.user.arn, '--source-ip', 'example.com']],
    ['a trusted session role with a path', ['--arn', sts.principals.user.arn, '--trusted-session-role', `arn:aws:iam::${ACCOUNT}:role/ops/Engineer`]],
    ['an unknown flag', ['--arn', sts.principals.user.arn, '--everything']],
    ['--instance that is not describe-instances output', ['--arn', sts.principals.user.arn, '--instance', policyPath]],
  ];
  for (const [name, args] of cases) {
    const r = await runCommand(SERVER_BIN, ['policy', 'explain', policyPath, ...args], {});
    t.equal(r.code, 2, name);
    t.match(r.stderr, /usage: sshca-server policy/, `${name}: with the usage`);
  }
  const help = await runCommand(SERVER_BIN, ['policy', '--help'], {});
  t.same([help.code, /sshca-server policy explain FILE --arn ARN/.test(help.stdout)], [0, true], 'policy --help');
  const text = await runCommand(SERVER_BIN, ['policy', 'explain', policyPath, '--arn', sts.principals.user.arn], {});
  t.equal(text.code, 0);
  t.match(text.stdout, /^decision +issue a user certificate from rule alice \(line 24\)$/m, 'without --json: lines for people');
});

// POST /v1/certs/host (issue 12) through the real parts: tokens signed for
// the STS fixture (SigV4 verified for real), the server's EC2 client (the
// AWS SDK) asking the EC2 fixture, OpenSSH reading what comes back. Every
// refusal has its own code and lands on the audit record.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../../protocol/ssh-public-key.js';
import { generateCaKey, LocalSigner } from '../../../server/ca/local-signer.js';
import { ec2Clients } from '../../../server/hosts/ec2-clients.js';
import { Ec2InstanceDirectory } from '../../../server/hosts/instance-directory.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';
import { FIXTURE_INSTANCES, NAME_TAG, OTHER_REGION, VPC_A, startEc2Fixture, type Ec2Fixture } from '../../fixtures/ec2-fixture.js';
import { generateUserKey, keygenList, needsOpenSsh } from '../../fixtures/openssh.js';
import { ACCOUNT, EC2_READ_ROLE_NAME, FIXTURE_REGION, OTHER_ACCOUNT, ec2ReadRoleArn, type FixturePrincipal } from '../../fixtures/sts-fixture.js';
import { craftToken, startHarness, type Harness } from '../../fixtures/sts-verifier-harness.js';
import { startTestApp, type TestApp } from '../../fixtures/test-app.js';

const PATH = '/v1/certs/host';
const policyText = (hosts: string) => `accounts: ['${ACCOUNT}', '${OTHER_ACCOUNT}']\nrules:\n  - name: users\n    match: { account: '${ACCOUNT}' }\n    principals: ['{{user}}']\n${hosts}`;

interface Setup {
  readonly harness: Harness;
  readonly ec2: Ec2Fixture;
  readonly app: TestApp;
  readonly hostCa: LocalSigner;
  readonly hostKey: { path: string; line: string };
  request(principal: FixturePrincipal, body?: Record<string, unknown>, path?: string): Promise<{ statusCode: number; json: () => Record<string, unknown> }>;
}

async function setup(t: Test, options: { hosts?: string; role?: boolean; hostCa?: boolean } = {}): Promise<Setup> {
  const harness = await startHarness(t, { accounts: [ACCOUNT, OTHER_ACCOUNT] });
  const ec2 = await startEc2Fixture(t, { sts: harness.sts });
  const reader = harness.sts.principals.ec2Reader;
  // The server's own factory (main.ts), pointed at the fixtures: its own credentials, or the read role assumed in the instance's account.
  const clients = ec2Clients({
    endpoint: () => ec2.url,
    maxAttempts: 1,
    credentials: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
    ...(options.role ? { role: `arn:aws:iam::{account}:role/${EC2_READ_ROLE_NAME}`, stsEndpoint: harness.sts.url } : {}),
  });
  t.teardown(() => clients.destroy());
  const directory = new Ec2InstanceDirectory({ clientFor: clients.clientFor });
  const hostCa = new LocalSigner(generateCaKey('ed25519'));
  const policy = new FilePolicy(parsePolicyFile(policyText(options.hosts ?? 'hosts: {}\n'), 'host-policy.yaml'));
  const app = await startTestApp(t, harness, new LocalSigner(generateCaKey('ed25519')), { policy, instances: directory, ...(options.hostCa === false ? {} : { hostSigner: hostCa }) });
  const dir = t.testdir();
  const hostKey = generateUserKey(dir, 'ed25519', 'host');
  let n = 0;
  return {
    harness,
    ec2,
    app,
    hostCa,
    hostKey,
    async request(principal, body = {}, path = PATH) {
      const payload = JSON.stringify({ publicKey: hostKey.line, region: FIXTURE_REGION, nonce: `nonce-${n++}-abcdef`, ...body });
      const token = await craftToken(harness.sts, principal, { boundPath: path, boundBody: payload });
      const r = await app.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}` }, payload });
      return { statusCode: r.statusCode, json: () => r.json() as Record<string, unknown> };
    },
  };
}

t.test('an instance gets a host certificate naming exactly what EC2 says it is', needsOpenSsh, async (t) => {
  const s = await setup(t, { hosts: `hosts:\n  nameTag: '${NAME_TAG}'\n  nameDomains: [corp.example.com]\n  vpcs: [${VPC_A}]\n  tags: { Environment: prod }\n  ttl: 2d\n` });
  const running = FIXTURE_INSTANCES.running;
  const r = await s.request(s.harness.sts.mintInstanceIdentity(running.instanceId));
  t.equal(r.statusCode, 201, JSON.stringify(r.json()));
  const body = r.json();
  const certPath = join(t.testdir(), 'host-cert.pub');
  writeFileSync(certPath, `${body.certificate as string}\n`);
  const listing = keygenList(certPath);
  t.match(listing.type, /host certificate/, 'OpenSSH reads a host certificate');
  t.equal(listing.signingCa.split(' ')[1], fingerprintOf(s.hostCa.publicKey().blob), 'signed by the host CA, not the user CA');
  t.same(listing.principals, [
    running.instanceId,
    'ip-10-0-1-10.ec2.internal',
    'ec2-203-0-113-10.compute-1.amazonaws.com',
    'web-1.corp.example.com',
    '10.0.1.10',
    '10.0.1.11',
    '203.0.113.10',
    '2600:1f18:abcd:1200::10',
  ], 'instance id, DNS names, addresses and tagged names in the allowed domain; web.internal is outside it');
  t.same(body.principals, listing.principals);
  t.same(listing.extensions, [], 'no user extensions on a host certificate');
  t.equal((Date.parse(body.validBefore as string) - Date.parse(body.validAfter as string)) / 1000, 2 * 86400 + 300, 'policy ttl (plus the back-dating)');
  t.same(s.ec2.calls.at(-1), { account: ACCOUNT, region: FIXTURE_REGION, instanceIds: [running.instanceId] }, 'the server asked EC2 about that instance');
  const issued = (await s.app.audit.query({ kind: 'issued' }, { limit: 1 })).records[0]!;
  t.equal(issued.data.certificateType, 'host', 'on the audit record as a host certificate');
  t.equal(issued.data.callerArn, `arn:aws:sts::${ACCOUNT}:assumed-role/aws:ec2-instance/${running.instanceId}`);
  // The short (8-digit) id form and a pending instance (still booting) both work.
  t.equal((await s.request(s.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.shortId.instanceId))).statusCode, 201);
  t.equal((await s.request(s.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.pending.instanceId))).statusCode, 201);
});

t.test('every refusal has its own code and is on the record', needsOpenSsh, async (t) => {
  const s = await setup(t, { hosts: `hosts:\n  accounts: ['${ACCOUNT}']\n  regions: [${FIXTURE_REGION}, ${OTHER_REGION}]\n  vpcs: [${VPC_A}]\n  tags: { Environment: prod }\n` });
  const sts = s.harness.sts;
  const cases: Array<[string, FixturePrincipal, Record<string, unknown>, number, string]> = [
    ['an ordinary role session named like an instance', sts.principals.instanceLookalike, {}, 403, 'POLICY_NOT_INSTANCE_IDENTITY'],
    ['an IAM user', sts.principals.user, {}, 403, 'POLICY_NOT_INSTANCE_IDENTITY'],
    ['a stopped instance', sts.mintInstanceIdentity(FIXTURE_INSTANCES.stopped.instanceId), {}, 403, 'POLICY_HOST_INSTANCE_STATE'],
    ['a terminated instance', sts.mintInstanceIdentity(FIXTURE_INSTANCES.terminated.instanceId), {}, 403, 'POLICY_HOST_INSTANCE_STATE'],
    ['an instance EC2 does not know', sts.mintInstanceIdentity('i-0eeeeeeeeeeeeeee9'), {}, 403, 'POLICY_HOST_INSTANCE_UNKNOWN'],
    ['an instance of another account', sts.mintInstanceIdentity(FIXTURE_INSTANCES.otherAccount.instanceId, OTHER_ACCOUNT), {}, 403, 'POLICY_HOST_ACCOUNT'],
    ['a VPC not allowed', sts.mintInstanceIdentity(FIXTURE_INSTANCES.devVpcB.instanceId), {}, 403, 'POLICY_HOST_VPC'],
    ['a region not allowed', sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId), { region: 'ap-south-1' }, 403, 'POLICY_HOST_REGION'],
    ['the wrong region (EC2 finds nothing there)', sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId), { region: OTHER_REGION }, 403, 'POLICY_HOST_INSTANCE_UNKNOWN'],
    ['a body that is not the contract', sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId), { principals: ['db.corp.example.com'] }, 400, 'REQUEST_INVALID'],
  ];
  for (const [name, principal, body, status, code] of cases) {
    const r = await s.request(principal, body);
    t.equal(r.statusCode, status, name);
    t.equal(r.json().code, code, name);
  }
  const tagged = s.ec2.addInstance({ tags: { Environment: 'dev' } });
  t.equal((await s.request(sts.mintInstanceIdentity(tagged.instanceId))).json().code, 'POLICY_HOST_TAG', 'a tag not allowed');
  // IMDS as EC2 reports it (MetadataOptions, read by the SDK): IMDSv1 or a hop limit that lets containers in.
  const imdsV1 = s.ec2.addInstance({ tags: { Environment: 'prod' }, metadataOptions: { httpTokens: 'optional', httpPutResponseHopLimit: 1 } });
  t.equal((await s.request(sts.mintInstanceIdentity(imdsV1.instanceId))).json().code, 'POLICY_HOST_IMDS', 'IMDSv1 allowed on the instance');
  const hop2 = s.ec2.addInstance({ tags: { Environment: 'prod' }, metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 2 } });
  t.equal((await s.request(sts.mintInstanceIdentity(hop2.instanceId))).json().code, 'POLICY_HOST_IMDS', 'hop limit 2');
  // The other way round: an instance identity never gets a user certificate, whatever rule matches its account.
  const asUser = await s.request(sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId), { region: undefined }, '/v1/certs/user');
  t.equal(asUser.statusCode, 403);
  t.equal(asUser.json().code, 'POLICY_INSTANCE_IDENTITY');
  const refusals = (await s.app.audit.query({ kind: 'refused' }, { limit: 100 })).records.map((r) => r.data.code);
  for (const code of ['POLICY_HOST_IMDS', 'POLICY_NOT_INSTANCE_IDENTITY', 'POLICY_HOST_INSTANCE_STATE', 'POLICY_HOST_INSTANCE_UNKNOWN', 'POLICY_HOST_ACCOUNT', 'POLICY_HOST_VPC', 'POLICY_HOST_REGION', 'POLICY_HOST_TAG', 'POLICY_INSTANCE_IDENTITY']) {
    t.ok(refusals.includes(code), `${code} is on the audit record`);
  }
});

t.test('a revoked host key gets no certificate; no host CA or no hosts section is refused plainly', needsOpenSsh, async (t) => {
  const s = await setup(t);
  const instance = () => s.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId);
  await s.app.audit.recordRevocation({
    requestId: 'r', at: new Date(), publicKeyFingerprint: fingerprintOf(parsePublicKeyLine(s.hostKey.line).blob), revokedBy: 'publicKey',
    reason: 'host key leaked', callerArn: `arn:aws:iam::${ACCOUNT}:user/admin`, accountId: ACCOUNT, sourceIp: '127.0.0.1',
  });
  const revoked = await s.request(instance());
  t.equal(revoked.statusCode, 403);
  t.equal(revoked.json().code, 'POLICY_HOST_KEY_REVOKED');
  const otherKey = generateUserKey(t.testdir(), 'ecdsa-256', 'host2');
  t.equal((await s.request(instance(), { publicKey: otherKey.line })).statusCode, 201, 'another host key of the same instance is fine');

  const noHosts = await setup(t, { hosts: '' });
  t.equal((await noHosts.request(noHosts.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId))).json().code, 'POLICY_HOSTS_DISABLED');
  const noCa = await setup(t, { hostCa: false });
  const r = await noCa.request(noCa.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId));
  t.equal(r.statusCode, 404);
  t.equal(r.json().code, 'REQUEST_NO_HOST_CA');
});

t.test('member accounts through an assumed read role; EC2 trouble is a 503 and issues nothing', needsOpenSsh, async (t) => {
  const s = await setup(t, { role: true });
  const other = FIXTURE_INSTANCES.otherAccount;
  const r = await s.request(s.harness.sts.mintInstanceIdentity(other.instanceId, OTHER_ACCOUNT));
  t.equal(r.statusCode, 201, JSON.stringify(r.json()));
  t.ok((r.json().principals as string[]).includes('ip-10-3-0-5.ec2.internal'));
  t.equal(s.harness.sts.assumed.at(-1)?.roleArn, ec2ReadRoleArn(OTHER_ACCOUNT), 'the read role of the instance\'s own account was assumed');
  t.same(s.ec2.calls.at(-1)?.account, OTHER_ACCOUNT);
  const issuedBefore = (await s.app.audit.query({ kind: 'issued' }, { limit: 100 })).records.length;
  s.ec2.fault = 'throttle';
  const throttled = await s.request(s.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId));
  t.equal(throttled.statusCode, 503);
  t.equal(throttled.json().code, 'UNAVAILABLE_EC2');
  s.ec2.fault = 'unauthorized';
  t.equal((await s.request(s.harness.sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId))).json().code, 'UNAVAILABLE_EC2', 'access denied to EC2 is the server\'s problem, not the instance\'s');
  t.equal((await s.app.audit.query({ kind: 'issued' }, { limit: 100 })).records.length, issuedBefore, 'nothing issued');
});

// Host certificates end to end (issue 12): the bootstrap proves the instance
// with its instance identity role (IMDSv2 fixture, a token from its shell
// SigV4 signer), the server asks the EC2 fixture and signs, a real sshd
// presents the certificate, and a real ssh with StrictHostKeyChecking yes,
// an empty known_hosts and one @cert-authority line accepts it. Renewal at
// half-life; a failed renewal keeps the certificate and the rest of the refresh.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import t, { type Test } from 'tap';
import { fingerprintOf } from '../../protocol/ssh-public-key.js';
import { SSHD, ensureLoginAccount, freePort } from '../../scripts/throwaway-sshd.js';
import { buildApp } from '../../server/app.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { systemClock } from '../../server/clock.js';
import { Ec2InstanceDirectory } from '../../server/hosts/instance-directory.js';
import { StsAuthenticator } from '../../server/identity/sts-authenticator.js';
import { StsEndpointAllowlist } from '../../server/identity/sts-endpoints.js';
import { FilePolicy } from '../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../server/policy/policy-file.js';
import { FIXTURE_INSTANCES, NAME_TAG, VPC_A, startEc2Fixture, type Ec2Fixture } from '../fixtures/ec2-fixture.js';
import { startImdsFixture, type ImdsFixture } from '../fixtures/imds-fixture.js';
import { bootstrap, effectiveConfig, prepareDistroRoot, run, sshLoginStrict, startLoggingSshd, type DistroRoot } from '../fixtures/instance.js';
import { generateUserKey, keygenList, needsOpenSsh } from '../fixtures/openssh.js';
import { ACCOUNT, FIXTURE_REGION } from '../fixtures/sts-fixture.js';
import { craftToken, startHarness, type Harness } from '../fixtures/sts-verifier-harness.js';
import { listenOnLoopback } from '../fixtures/test-app.js';

const needsRoot = { skip: needsOpenSsh.skip || (process.env.CI !== 'true' && process.getuid?.() !== 0 ? 'needs root (creates a login account)' : false) };

const RUNNING = FIXTURE_INSTANCES.running;
const PRIVATE_DNS = RUNNING.privateDnsName!;
// Ten minutes plus the server's five minutes of backdating: renewal is due once 7.5 minutes are left.
const HOSTS_POLICY = `hosts:\n  nameTag: '${NAME_TAG}'\n  vpcs: [${VPC_A}]\n  tags: { Environment: prod }\n  ttl: 10m\n`;
const HOST_KEYS = ['ssh_host_ecdsa_key', 'ssh_host_ed25519_key', 'ssh_host_rsa_key'];

/** What the instance talks to: the STS, EC2 and IMDS fixtures, one audit store for every server. */
interface Fixtures {
  readonly harness: Harness;
  readonly ec2: Ec2Fixture;
  readonly imds: ImdsFixture;
  readonly audit: SqliteAuditLog;
  readonly checkpoints: CheckpointSigner;
  readonly dir: string;
}

async function startFixtures(t: Test): Promise<Fixtures> {
  const dir = t.testdir();
  const harness = await startHarness(t);
  const ec2 = await startEc2Fixture(t, { sts: harness.sts });
  const imds = await startImdsFixture(t, { sts: harness.sts });
  const checkpoints = CheckpointSigner.openOrCreate(join(dir, 'checkpoint.pem'));
  const audit = new SqliteAuditLog(join(dir, 'audit.db'), checkpoints);
  t.teardown(() => audit.close());
  return { harness, ec2, imds, audit, checkpoints, dir };
}

/**
 * The server as main.ts wires it, with a host CA, a `hosts:` policy and EC2
 * asked through the fixture, listening on loopback; its audience is its own
 * URL, as the bootstrap requires.
 */
async function startServer(t: Test, f: Fixtures, keys: { userCa: LocalSigner; hostCa: LocalSigner }) {
  let audience = '';
  const used = new Set<string>();
  const clients: EC2Client[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  const app = buildApp({
    audience: () => audience,
    endpoints: new StsEndpointAllowlist([{ url: f.harness.sts.url, region: FIXTURE_REGION, partition: 'aws' }]),
    authenticator: new StsAuthenticator({
      audience: () => audience,
      endpoints: new StsEndpointAllowlist([{ url: f.harness.sts.url, region: FIXTURE_REGION, partition: 'aws' }]),
      accounts: new Set([ACCOUNT]),
      identityRules: { trustedSessionRoles: new Set(), allowFederatedUsers: false },
      replayCache: { claim: async (key) => !used.has(key) && used.add(key) !== undefined },
      transport: f.harness.transport,
      clock: systemClock,
    }),
    policy: new FilePolicy(parsePolicyFile(`accounts: ['${ACCOUNT}']\nrules:\n  - name: users\n    match: { account: '${ACCOUNT}' }\n    principals: ['{{user}}']\n${HOSTS_POLICY}`, 'policy.yaml')),
    userSigner: keys.userCa,
    hostSigner: keys.hostCa,
    instances: new Ec2InstanceDirectory({
      clientFor: (_account, region) => {
        const client = f.ec2.client(f.harness.sts.principals.ec2Reader, { region });
        clients.push(client);
        return client;
      },
    }),
    ca: new CertificateAuthority({ signer: keys.userCa }),
    audit: f.audit,
    checkpoints: f.checkpoints,
    clock: systemClock,
  });
  t.teardown(() => app.close());
  const url = await listenOnLoopback(app);
  audience = url;
  return {
    url,
    /** A user certificate for the fixture's IAM user (principal alice), as `sshca login` gets one. */
    async userCertificate(publicKey: string): Promise<string> {
      const body = JSON.stringify({ publicKey, nonce: randomBytes(12).toString('hex') });
      const token = await craftToken(f.harness.sts, f.harness.sts.principals.user, { audience: url, boundPath: '/v1/certs/user', boundBody: body });
      const r = await fetch(`${url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}` }, body });
      const json = (await r.json()) as { certificate: string };
      return json.certificate;
    },
  };
}

/** The names EC2's answer gives the running instance, as docs/policy.md derives them: never anything the instance says. */
const expectedPrincipals = [
  RUNNING.instanceId,
  PRIVATE_DNS,
  RUNNING.publicDnsName!,
  ...RUNNING.tags![NAME_TAG]!.split(/[\s,]+/),
  RUNNING.privateIpAddress!,
  ...RUNNING.secondaryPrivateIpAddresses!,
  RUNNING.publicIpAddress!,
  ...RUNNING.ipv6Addresses!,
].sort();

const certPath = (root: DistroRoot, key: string) => join(root.etc, `${key}-cert.pub`);
const certs = (root: DistroRoot) => HOST_KEYS.map((k) => (existsSync(certPath(root, k)) ? readFileSync(certPath(root, k), 'utf8') : ''));
const dropin = (root: DistroRoot) => readFileSync(join(root.etc, 'sshd_config.d', '00-sshca.conf'), 'utf8');
const minutes = (n: number) => Date.now() + n * 60_000;

t.test('an instance gets host certificates, sshd presents them, strict ssh accepts them; renewal, and failed renewals', needsRoot, async (t) => {
  const account = ensureLoginAccount('sshcatest');
  const f = await startFixtures(t);
  const userCa = LocalSigner.openOrCreate(join(f.dir, 'user-ca.pem'), 'ed25519');
  const hostCa = LocalSigner.openOrCreate(join(f.dir, 'host-ca.pem'), 'ed25519');
  const server = await startServer(t, f, { userCa, hostCa });
  const root = await prepareDistroRoot(t, 'debian-cloud-init');
  const settings = join(root.root, 'etc', 'sshca', 'bootstrap.conf');
  const install = ['--server', server.url, '--ca-fingerprint', fingerprintOf(userCa.publicKey().blob), '--allow', `${account}=alice`, '--host-certificates', '--imds', f.imds.url, '--root', root.root];

  // First boot while IMDS loses the token request (a hop limit of 1 in a container): everything else is done.
  f.imds.tokenRefusal = 'hang';
  const first = await bootstrap(install);
  t.equal(first.code, 4, 'exit 4: done, except host certificates');
  t.match(first.stderr, /\[IMDS_UNREACHABLE\]/);
  t.same(certs(root), ['', '', ''], 'no certificate yet');
  t.notMatch(dropin(root), /HostCertificate/);
  t.equal((await effectiveConfig(root.sshdConfig, account)).get('passwordauthentication'), 'no', 'the sshd configuration is installed regardless');
  t.match(readFileSync(settings, 'utf8'), /^host-certificates=yes$/m, 'the setting is remembered');
  t.match(readFileSync(settings, 'utf8'), new RegExp(`^imds=${f.imds.url}$`, 'm'));

  // IMDS answers: the timer's refresh gets a certificate for every host key.
  f.imds.tokenRefusal = null;
  const got = await bootstrap(['--refresh', '--root', root.root]);
  t.equal(got.code, 0, got.stderr);
  t.equal(readFileSync(join(root.etc, 'sshca', 'trusted_host_ca_keys'), 'utf8'), (await (await fetch(`${server.url}/v1/ca/host.pub`)).text()), 'the host CA list is installed');
  const hostCaFingerprint = fingerprintOf(hostCa.publicKey().blob);
  for (const key of HOST_KEYS) {
    const path = certPath(root, key);
    t.equal(statSync(path).mode & 0o777, 0o644, `${key}: world-readable, like the public key`);
    const listed = keygenList(path);
    t.match(listed.type, / host certificate$/);
    t.match(listed.signingCa, hostCaFingerprint, `${key}: signed by the host CA`);
    t.same([...listed.principals].sort(), expectedPrincipals, `${key}: exactly the names from EC2's answer`);
    t.match(dropin(root), new RegExp(`^HostCertificate ${path}$`, 'm'));
  }
  const effective = (await run(SSHD, ['-T', '-f', root.sshdConfig])).stdout;
  t.same(effective.split('\n').filter((l) => l.startsWith('hostcertificate ')).sort(), HOST_KEYS.map((k) => `hostcertificate ${certPath(root, k)}`), 'sshd -T loads them');

  // A real sshd presenting the certificate; a real ssh knowing only the host CA.
  let stop = await startLoggingSshd(t, root);
  const user = generateUserKey(f.dir, 'ed25519', 'user');
  const userCert = join(f.dir, 'user-cert.pub');
  writeFileSync(userCert, `${await server.userCertificate(user.line)}\n`);
  const knownHosts = join(f.dir, 'known_hosts');
  const caLine = `@cert-authority *.ec2.internal,10.0.* ${hostCa.publicKey().type} ${hostCa.publicKey().blob.toString('base64')}\n`;
  writeFileSync(knownHosts, caLine);
  t.equal(await sshLoginStrict(root.port, account, user.path, userCert, knownHosts, PRIVATE_DNS), 0, 'strict host key checking accepts the host certificate');
  t.equal(await sshLoginStrict(root.port, account, user.path, userCert, knownHosts, RUNNING.privateIpAddress!), 0, 'by address too');
  t.equal(readFileSync(knownHosts, 'utf8'), caLine, 'and known_hosts is still the one @cert-authority line');
  t.not(await sshLoginStrict(root.port, account, user.path, userCert, knownHosts, 'ip-10-9-9-9.ec2.internal'), 0, 'a name the certificate does not carry is refused');
  const empty = join(f.dir, 'known_hosts.empty');
  writeFileSync(empty, '');
  t.not(await sshLoginStrict(root.port, account, user.path, userCert, empty, PRIVATE_DNS), 0, 'control: without the @cert-authority line the host is unknown');
  const stranger = LocalSigner.openOrCreate(join(f.dir, 'stranger.pem'), 'ed25519');
  const strangers = join(f.dir, 'known_hosts.stranger');
  writeFileSync(strangers, `@cert-authority * ${stranger.publicKey().type} ${stranger.publicKey().blob.toString('base64')}\n`);
  t.not(await sshLoginStrict(root.port, account, user.path, userCert, strangers, PRIVATE_DNS), 0, 'control: another CA does not vouch for it');

  // Renewal: nothing while more than half the lifetime is left, a new certificate after.
  const before = certs(root);
  const early = await bootstrap(['--refresh', '--root', root.root], { nowMs: minutes(1) });
  t.equal(early.code, 0, early.stderr);
  t.match(early.stderr, /no changes/);
  t.same(certs(root), before, 'not renewed early');
  const renewed = await bootstrap(['--refresh', '--root', root.root], { nowMs: minutes(3) });
  t.equal(renewed.code, 0, renewed.stderr);
  const after = certs(root);
  for (const [i, key] of HOST_KEYS.entries()) {
    t.not(after[i], before[i], `${key}: renewed`);
    t.not(keygenList(certPath(root, key)).serial, '', 'with a serial of its own');
  }
  t.same([...keygenList(certPath(root, 'ssh_host_ed25519_key')).principals].sort(), expectedPrincipals);
  await stop();
  stop = await startLoggingSshd(t, root);
  t.equal(await sshLoginStrict(root.port, account, user.path, userCert, knownHosts, PRIVATE_DNS), 0, 'sshd presents the renewed certificate');

  // Failed renewals (still due by the instance's clock): the certificate stays, the rest of the refresh happens.
  const kept = certs(root);
  const keptDropin = dropin(root);
  f.ec2.setState(RUNNING.instanceId, 'stopped');
  writeFileSync(settings, readFileSync(settings, 'utf8').replace(`allow=${account}=alice`, `allow=${account}=alice,ops`));
  const refused = await bootstrap(['--refresh', '--root', root.root], { nowMs: minutes(3) });
  t.equal(refused.code, 4, 'exit 4: a host certificate was not renewed');
  t.match(refused.stderr, /\[HOST_CERT_REFUSED\]/);
  t.match(refused.stderr, /POLICY_HOST_INSTANCE_STATE/, "the server's code is in the log");
  t.same(certs(root), kept, 'the current certificates are kept');
  t.equal(dropin(root), keptDropin, 'and still named in the drop-in');
  t.equal(readFileSync(join(root.etc, 'sshca', 'principals', account), 'utf8'), 'alice\nops\n', 'the allow map change is applied all the same');
  f.ec2.setState(RUNNING.instanceId, 'running');

  f.imds.tokenRefusal = 'drop';
  const noImds = await bootstrap(['--refresh', '--root', root.root], { nowMs: minutes(3) });
  t.equal(noImds.code, 4);
  t.match(noImds.stderr, /\[IMDS_UNREACHABLE\]/);
  t.same(certs(root), kept);
  f.imds.tokenRefusal = null;

  const down = await bootstrap(['--refresh', '--server', `http://127.0.0.1:${await freePort()}`, '--root', root.root], { nowMs: minutes(3) });
  t.equal(down.code, 1, 'the server unreachable: the refresh fails as any refresh does');
  t.match(down.stderr, /\[HOST_CERT_UNAVAILABLE\]/);
  t.same(certs(root), kept);
  t.equal(dropin(root), keptDropin);
  t.equal(await sshLoginStrict(root.port, account, user.path, userCert, knownHosts, PRIVATE_DNS), 0, 'strict ssh still accepts the kept certificate');
  await stop();
});

t.test('refused: a server that names itself otherwise, a host CA list nobody vouches for, a certificate from another CA', needsRoot, async (t) => {
  const f = await startFixtures(t);
  const userCa = LocalSigner.openOrCreate(join(f.dir, 'user-ca.pem'), 'ed25519');
  const hostCa = LocalSigner.openOrCreate(join(f.dir, 'host-ca.pem'), 'ed25519');
  const server = await startServer(t, f, { userCa, hostCa });
  const root = await prepareDistroRoot(t, 'debian-cloud-init');
  const pin = fingerprintOf(userCa.publicKey().blob);

  // The same server through another address: its audience is not this --server, so no token is signed for it.
  const port = Number(new URL(server.url).port);
  const relay = createTcpServer((s) => {
    const up = createConnection({ host: '127.0.0.1', port });
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, 'localhost', r));
  t.teardown(() => relay.close());
  const viaRelay = `http://localhost:${(relay.address() as { port: number }).port}`;
  const mismatch = await bootstrap(['--server', viaRelay, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--host-certificates', '--imds', f.imds.url, '--root', root.root]);
  t.equal(mismatch.code, 4, mismatch.stderr);
  t.match(mismatch.stderr, /\[HOST_AUDIENCE_MISMATCH\]/);
  t.same(certs(root), ['', '', '']);
  t.equal(f.imds.counts.tokenPuts, 1, 'IMDS was asked once for all host keys');

  const ok = await bootstrap(['--server', server.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--host-certificates', '--imds', f.imds.url, '--root', root.root]);
  t.equal(ok.code, 0, ok.stderr);
  const trustedHostCas = readFileSync(join(root.etc, 'sshca', 'trusted_host_ca_keys'), 'utf8');
  const kept = certs(root);

  // The server's host CA replaced by an unrelated key (not a rotation: the old key never vouched for it).
  const other = LocalSigner.openOrCreate(join(f.dir, 'other-host-ca.pem'), 'ed25519');
  const replaced = await startServer(t, f, { userCa, hostCa: other });
  const refused = await bootstrap(['--refresh', '--server', replaced.url, '--root', root.root]);
  t.equal(refused.code, 4, refused.stderr);
  t.match(refused.stderr, /\[HOST_CA_UNTRUSTED\]/);
  t.equal(readFileSync(join(root.etc, 'sshca', 'trusted_host_ca_keys'), 'utf8'), trustedHostCas, 'the trusted host CA list is unchanged');
  t.same(certs(root), kept, 'no renewal was due');
  // Once renewal is due, what that server signs is not installed.
  const invalid = await bootstrap(['--refresh', '--server', replaced.url, '--root', root.root], { nowMs: minutes(3) });
  t.equal(invalid.code, 4);
  t.match(invalid.stderr, /\[HOST_CERT_INVALID\]/);
  t.same(certs(root), kept, 'the certificates from the trusted host CA are kept');
});

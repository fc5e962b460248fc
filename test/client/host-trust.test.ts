// Issue 12, the client's half of host certificates, judged by OpenSSH: after
// `sshca config --write`, a real ssh with StrictHostKeyChecking yes and an
// empty ~/.ssh/known_hosts accepts a real sshd presenting a host certificate
// from the server's host CA, refuses the same host key without its
// certificate, and refuses it once it is revoked on the server and
// `sshca login` has refreshed RevokedHostKeys.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { SSHD, ensureLoginAccount, freePort, startThrowawaySshd, waitForPort } from '../../scripts/throwaway-sshd.js';
import { buildApp } from '../../server/app.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { systemClock } from '../../server/clock.js';
import { StsAuthenticator } from '../../server/identity/sts-authenticator.js';
import { StsEndpointAllowlist } from '../../server/identity/sts-endpoints.js';
import { undiciStsTransport } from '../../server/identity/sts-transport.js';
import { FilePolicy } from '../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../server/policy/policy-file.js';
import { CLI, errorCodeOf, runCli } from '../fixtures/cli.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { ACCOUNT, FIXTURE_REGION, startStsFixture } from '../fixtures/sts-fixture.js';
import { listenOnLoopback } from '../fixtures/test-app.js';

const execFileAsync = promisify(execFile);
const PROFILE = 'host-trust';

interface HostCaServer {
  readonly url: string;
  readonly app: FastifyInstance;
  /** The host CA's private key file (PEM: ssh-keygen -s reads ECDSA keys in it). */
  readonly hostCaKey?: string;
  /** An AWS credentials file for an identity the policy makes admin, with the principal `user`. */
  readonly credentials: string;
  /** Paths answered with 503, to see a refresh fail. */
  readonly faults: Set<string>;
  /** Status of each GET of the host CA list and the KRL, in order. */
  readonly fetches: Array<{ path: string; status: number }>;
}

/**
 * The app wired as main.ts wires it, with a host CA (an ECDSA key, so
 * ssh-keygen can sign host certificates with it, and a next key published
 * beside it) and an audience that is its own URL, so the real client logs in.
 */
async function startHostCaServer(t: Test, dir: string, user: string, options: { hostCa: boolean }): Promise<HostCaServer> {
  mkdirSync(dir, { recursive: true });
  const sts = await startStsFixture(t);
  const transport = undiciStsTransport({ connectTimeoutMs: 1000, totalTimeoutMs: 3000 });
  t.teardown(() => transport.close());
  let url = '';
  const audience = () => url;
  const endpoints = new StsEndpointAllowlist([{ url: sts.url, region: FIXTURE_REGION, partition: 'aws' }]);
  const admin = sts.principals.user;
  const policy = new FilePolicy(parsePolicyFile(`accounts: ['${ACCOUNT}']\nrules:\n  - name: admins\n    match: { iamUser: '${admin.arn}' }\n    principals: ['${user}']\n    roles: [admin]\n`, 'host-trust-policy.yaml'));
  const used = new Set<string>();
  const userSigner = LocalSigner.openOrCreate(join(dir, 'user-ca.pem'), 'ed25519');
  const hostCaKey = join(dir, 'host-ca.pem');
  const checkpoints = CheckpointSigner.openOrCreate(join(dir, 'checkpoint.pem'));
  const audit = new SqliteAuditLog(join(dir, 'audit.db'), checkpoints);
  const app = buildApp({
    audience,
    endpoints,
    authenticator: new StsAuthenticator({
      audience, endpoints, accounts: new Set([ACCOUNT]), identityRules: { trustedSessionRoles: new Set(), allowFederatedUsers: false },
      replayCache: { claim: async (key) => !used.has(key) && used.add(key) !== undefined }, transport, clock: systemClock,
    }),
    policy,
    userSigner,
    ...(options.hostCa ? { hostSigner: LocalSigner.openOrCreate(hostCaKey, 'ecdsa-p256'), hostCaNext: LocalSigner.openOrCreate(join(dir, 'host-ca-next.pem'), 'ed25519').publicKey() } : {}),
    ca: new CertificateAuthority({ signer: userSigner }),
    audit,
    checkpoints,
    clock: systemClock,
  });
  const faults = new Set<string>();
  const fetches: HostCaServer['fetches'] = [];
  app.addHook('onRequest', async (request, reply) => {
    if (faults.has(request.url)) return reply.code(503).send({ code: 'UNAVAILABLE_TEST_FAULT', message: 'fault injected by the test' });
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/v1/krl' || request.url === '/v1/ca/host.pub') fetches.push({ path: request.url, status: reply.statusCode });
  });
  t.teardown(async () => {
    await app.close();
    await audit.close();
  });
  url = await listenOnLoopback(app);
  const credentials = join(dir, 'aws-credentials');
  writeFileSync(credentials, `[${PROFILE}]\naws_access_key_id = ${admin.accessKeyId}\naws_secret_access_key = ${admin.secretAccessKey}\n`);
  return { url, app, ...(options.hostCa ? { hostCaKey } : {}), credentials, faults, fetches };
}

/** A second sshd from the throwaway sshd's own configuration, presenting `certificate` for its host key. */
async function startCertifiedSshd(t: Test, sshdDir: string, certificate: string): Promise<number> {
  const port = await freePort();
  // -p replaces the configuration's Port; -o values come first, and sshd keeps the first it reads.
  const child = spawn(SSHD, ['-D', '-e', '-f', join(sshdDir, 'sshd_config'), '-p', String(port), '-o', `HostCertificate=${certificate}`, '-o', `PidFile=${join(sshdDir, 'certified.pid')}`], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  await waitForPort(port, child, 10_000);
  return port;
}

t.test('host certificates: trusted through sshca config, refused once revoked, plain host keys refused', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dir = t.testdir();
  const server = await startHostCaServer(t, join(dir, 'server'), user, { hostCa: true });
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'known_hosts'), '');
  const env = { HOME: home, AWS_SHARED_CREDENTIALS_FILE: server.credentials, AWS_CONFIG_FILE: join(home, 'no-aws-config') };
  const cli = (args: string[], e: Record<string, string> = env) => runCli([...args, '--server', server.url, ...(args[0] === 'config' ? [] : ['--profile', PROFILE])], e);

  // A real sshd (host key A, plain), and a second one presenting a host certificate for the same key.
  const userCa = await (await fetch(`${server.url}/v1/ca/user.pub`)).text();
  const plain = await startThrowawaySshd(join(dir, 'sshd'), userCa);
  t.teardown(() => plain.stop());
  const hostKey = join(plain.dir, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-s', server.hostCaKey!, '-h', '-I', 'host-trust-test', '-n', '127.0.0.1', '-V', '-5m:+1h', `${hostKey}.pub`]);
  const certifiedPort = await startCertifiedSshd(t, plain.dir, `${hostKey}-cert.pub`);

  const login = await cli(['login', '--no-agent', '--json']);
  t.equal(login.code, 0, login.stderr);
  t.equal(JSON.parse(login.stdout).hostTrust, undefined, 'no host trust before sshca config');

  // Plain ssh, as a user types it once sshca config has written ~/.ssh/config: sshca on PATH for the Match exec line.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'sshca'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
  chmodSync(join(bin, 'sshca'), 0o755);
  const sshEnv = { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, SSH_AUTH_SOCK: '', SSHCA_SERVER: server.url, AWS_PROFILE: PROFILE, AWS_EC2_METADATA_DISABLED: 'true' };
  const key = join(home, '.ssh', 'sshca', 'id_ed25519');
  // Asynchronously: the server lives in this process and must keep answering.
  const ssh = async (port: number, config: string, ...extra: string[]) => {
    try {
      // `extra` first: ssh keeps the first value it reads.
      const r = await execFileAsync('ssh', ['-F', config, '-p', String(port), ...extra, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
        '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, 'echo host-trusted'], { env: sshEnv, encoding: 'utf8', timeout: 30_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const userConfig = join(home, '.ssh', 'config');
  const withoutSshca = ['-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', `UserKnownHostsFile=${join(home, '.ssh', 'known_hosts')}`];
  const unknown = await ssh(certifiedPort, '/dev/null', ...withoutSshca);
  t.equal(unknown.code, 255, 'control: without sshca config the host is unknown, and refused');
  const userAuthWorks = await ssh(plain.port, '/dev/null', '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null');
  t.equal(userAuthWorks.code, 0, `control: the user certificate logs in where host keys are not checked: ${userAuthWorks.stderr}`);

  // Host patterns: validated, a bare * only with --all-hosts, none at all refused for --write.
  const scratch = { ...env, HOME: join(dir, 'scratch-home') };
  for (const bad of ['*', '', 'a b', 'a,,b', '*.internal,', '10.0.0.0/8', '*.internal,**', '*.*', '[*]:*', '!*.?*']) {
    const r = await cli(['config', '--host', bad, '--write'], scratch);
    t.equal(r.code, 2, `--host ${JSON.stringify(bad)}: exit 2`);
    t.equal(errorCodeOf(r.stderr), 'CLIENT_USAGE', `--host ${JSON.stringify(bad)}: CLIENT_USAGE`);
  }
  const none = await cli(['config', '--write'], scratch);
  t.equal(errorCodeOf(none.stderr), 'CLIENT_USAGE', 'no host patterns: refused');
  t.notOk(existsSync(join(scratch.HOME, '.ssh', 'config')), 'nothing written by a refused config');
  t.equal((await cli(['config', '--host', '*', '--all-hosts', '--json'], scratch)).code, 0, '--host * with --all-hosts is accepted');

  // sshca config --write: the known_hosts file, the KRL, the block; the patterns remembered.
  const config = await cli(['config', '--host', '127.0.0.1', '--write', '--json']);
  t.equal(config.code, 0, config.stderr);
  const written = JSON.parse(config.stdout);
  const hostCaKeys = (JSON.parse(await (await fetch(`${server.url}/v1/ca`)).text()) as { hostCaKeys: string[] }).hostCaKeys;
  t.equal(hostCaKeys.length, 2, 'the server lists its active and next host CA keys');
  const knownHosts = readFileSync(written.knownHostsPath, 'utf8');
  const caLines = knownHosts.split('\n').filter((l) => l.startsWith('@cert-authority '));
  t.equal(caLines.length, 2, 'one @cert-authority line per host CA key');
  for (const k of hostCaKeys) t.ok(caLines.some((l) => l.includes(k.split(' ').slice(0, 2).join(' '))), `${k.split(' ')[2]} trusted`);
  t.ok(Buffer.from(await (await fetch(`${server.url}/v1/krl`)).arrayBuffer()).equals(readFileSync(written.revokedHostKeys)), 'RevokedHostKeys holds the server\'s KRL');
  t.same(JSON.parse(readFileSync(join(home, '.config', 'sshca', 'config.json'), 'utf8')).hostPatterns, ['127.0.0.1'], 'host patterns remembered');
  t.equal(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8'), '', 'the user\'s known_hosts is untouched (and empty)');
  const again = await cli(['config', '--write', '--json']);
  t.same(JSON.parse(again.stdout).hostPatterns, ['127.0.0.1'], 'the next config uses the remembered patterns');

  // Plain ssh with only sshca's files: the certified host is accepted, the same key without its certificate is not.
  const accepted = await ssh(certifiedPort, userConfig);
  t.equal(accepted.code, 0, `the host certificate is trusted with an empty known_hosts: ${accepted.stderr}`);
  t.match(accepted.stdout, /host-trusted/);
  t.equal((await ssh(plain.port, userConfig)).code, 255, 'the same host key without a certificate is refused');
  t.equal(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8'), '', 'nothing was learned on first use');

  // sshca ssh adds strict checking and sshca's files itself (here with no ssh_config at all).
  const sshcaSsh = (port: number) => runCli(['ssh', '--server', server.url, '--profile', PROFILE, '--', '-F', '/dev/null', '-p', String(port), '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, 'echo via-sshca-ssh'], { ...env, SSH_AUTH_SOCK: '' });
  const viaSshca = await sshcaSsh(certifiedPort);
  t.equal(viaSshca.code, 0, `sshca ssh accepts the certified host: ${viaSshca.stderr}`);
  t.match(viaSshca.stdout, /via-sshca-ssh/);
  t.equal((await sshcaSsh(plain.port)).code, 255, 'sshca ssh refuses a plain host key it does not know');

  // An unchanged list and KRL: fetched with If-None-Match, nothing rewritten.
  server.fetches.length = 0;
  const unchanged = await cli(['login', '--no-agent', '--json']);
  t.equal(unchanged.code, 0, unchanged.stderr);
  t.same(JSON.parse(unchanged.stdout).hostTrust, { knownHosts: 'unchanged', revokedHostKeys: 'unchanged' });
  t.same(server.fetches.map((f) => f.status).sort(), [304, 304], 'both answered 304 Not Modified');

  // A refresh that fails keeps the files and warns once; the login itself succeeds.
  const before = { known: readFileSync(written.knownHostsPath), krl: readFileSync(written.revokedHostKeys) };
  server.faults.add('/v1/krl').add('/v1/ca/host.pub');
  const failed = await cli(['login', '--no-agent']);
  t.equal(failed.code, 0, 'login succeeds');
  t.equal(failed.stderr.split('\n').filter((l) => /\[CLIENT_HOST_TRUST_STALE\]$/.test(l)).length, 1, 'one warning');
  t.equal(errorCodeOf(failed.stderr), 'CLIENT_HOST_TRUST_STALE');
  t.ok(readFileSync(written.knownHostsPath).equals(before.known) && readFileSync(written.revokedHostKeys).equals(before.krl), 'the previous files stay');
  t.equal((await ssh(certifiedPort, userConfig)).code, 0, 'and ssh keeps working with them');
  server.faults.clear();

  // A KRL that cannot be fetched at config time is not referenced (ssh would refuse every host) until login saves one.
  const home2 = join(dir, 'home2');
  const env2 = { ...env, HOME: home2 };
  server.faults.add('/v1/krl');
  const pending = await cli(['config', '--host', '127.0.0.1', '--write', '--json'], env2);
  t.equal(pending.code, 0, pending.stderr);
  t.equal(JSON.parse(pending.stdout).warning.code, 'CLIENT_HOST_KRL_PENDING');
  t.equal(JSON.parse(pending.stdout).revokedHostKeys, null);
  const revokedHostKeysOption = async (h: string) => (await execFileAsync('ssh', ['-G', '-F', join(h, '.ssh', 'config'), '127.0.0.1'], { env: { ...sshEnv, HOME: h }, encoding: 'utf8' })).stdout.split('\n').find((l) => l.startsWith('revokedhostkeys '));
  t.equal(await revokedHostKeysOption(home2), undefined, 'ssh_config names no RevokedHostKeys yet');
  t.notOk(existsSync(join(home2, '.ssh', 'sshca', 'revoked_host_keys.krl')), 'and no empty stand-in was written');
  server.faults.clear();
  const loginLater = await cli(['login', '--no-agent', '--json'], env2);
  t.equal(loginLater.code, 0, loginLater.stderr);
  t.equal(JSON.parse(loginLater.stdout).hostTrust.revokedHostKeys, 'updated');
  t.equal(await revokedHostKeysOption(home2), `revokedhostkeys ${join(home2, '.ssh', 'sshca', 'revoked_host_keys.krl')}`, 'login saved the KRL and ssh_config now names it');

  // The host key revoked on the server (by an admin): refused after the next sshca login.
  const revoke = await cli(['revoke', '--public-key', `${hostKey}.pub`, '--reason', 'host compromised']);
  t.equal(revoke.code, 0, revoke.stderr);
  t.equal((await ssh(certifiedPort, userConfig)).code, 0, 'until the KRL is refreshed the old one still lets it through');
  const refreshed = await cli(['login', '--no-agent', '--json']);
  t.equal(refreshed.code, 0, refreshed.stderr);
  t.same(JSON.parse(refreshed.stdout).hostTrust, { knownHosts: 'unchanged', revokedHostKeys: 'updated' });
  const revoked = await ssh(certifiedPort, userConfig);
  t.equal(revoked.code, 255, 'the revoked host key is refused, certificate or not');
  t.notMatch(revoked.stdout, /host-trusted/);
  t.equal((await sshcaSsh(certifiedPort)).code, 255, 'sshca ssh refuses it too');

  // Reset: --remove takes the block and sshca's host trust files away.
  const removed = await cli(['config', '--remove']);
  t.equal(removed.code, 0, removed.stderr);
  t.notMatch(readFileSync(userConfig, 'utf8'), />>> sshca/);
  t.notOk(existsSync(written.knownHostsPath) || existsSync(written.revokedHostKeys), 'host trust files removed');
});

t.test('a server without a host CA: no @cert-authority line, said plainly', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dir = t.testdir();
  const server = await startHostCaServer(t, join(dir, 'server'), user, { hostCa: false });
  const home = join(dir, 'home');
  const env = { HOME: home, AWS_SHARED_CREDENTIALS_FILE: server.credentials, AWS_CONFIG_FILE: join(home, 'no-aws-config') };
  const r = await runCli(['config', '--server', server.url, '--host', '*.internal,10.*', '--write', '--json'], env);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.hostCaKeys, 0);
  t.notMatch(readFileSync(out.knownHostsPath, 'utf8'), /^@cert-authority/m, 'no @cert-authority line');
  t.ok(existsSync(out.revokedHostKeys), 'the KRL is installed all the same (it also lists revoked host keys)');
  const login = await runCli(['login', '--server', server.url, '--profile', PROFILE, '--no-agent', '--json'], env);
  t.equal(login.code, 0, login.stderr);
  t.same(JSON.parse(login.stdout).hostTrust, { knownHosts: 'unchanged', revokedHostKeys: 'unchanged' });
});

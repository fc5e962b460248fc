// The `sshca` command's files, output and exit codes, against a dev server.
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../../scripts/throwaway-sshd.js';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';


t.test('login writes key 0600 and certificate 0644; status reports it; re-login replaces it', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'carol' });
  const home = t.testdir();
  const env = devLoginEnv(dev.dataDir, home);

  const missing = await runCli(['status', '--json'], env);
  t.equal(missing.code, 1, 'status without a certificate exits 1');
  t.equal(JSON.parse(missing.stdout).state, 'missing');

  const first = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--ttl', '2h', '--json'], env);
  t.equal(first.code, 0, first.stderr);
  const issued = JSON.parse(first.stdout);
  t.same(issued.principals, ['carol']);
  t.equal((Date.parse(issued.validBefore) - Date.parse(issued.validAfter)) / 1000, 2 * 3600 + 300, '--ttl 2h');
  const dir = join(home, '.ssh', 'sshca');
  t.equal(statSync(join(dir, 'id_ed25519')).mode & 0o777, 0o600, 'private key 0600');
  t.equal(statSync(join(dir, 'id_ed25519-cert.pub')).mode & 0o777, 0o644, 'certificate 0644');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'directory 0700');

  const st = await runCli(['status', '--json'], env);
  t.equal(st.code, 0, 'status exits 0 with a valid certificate');
  const report = JSON.parse(st.stdout);
  t.equal(report.state, 'valid');
  t.equal(report.serial, issued.serial);
  t.same(report.principals, ['carol']);

  // SSHCA_SERVER and AWS_PROFILE stand in for the flags.
  const second = await runCli(['login', '--json'], { ...env, SSHCA_SERVER: dev.url, AWS_PROFILE: 'sshca-dev' });
  t.equal(second.code, 0, second.stderr);
  t.not(JSON.parse(second.stdout).serial, issued.serial, 'a new certificate');
  t.equal(JSON.parse((await runCli(['status', '--json'], env)).stdout).serial, JSON.parse(second.stdout).serial, 'status sees the new one');
});

t.test('the same login twice in one second: both succeed (each request carries a fresh nonce)', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'hana' });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], env)).code, 0, 'first login creates the key');
  const [a, b] = await Promise.all([0, 1].map(() => runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--json'], env)));
  t.equal(a!.code, 0, a!.stderr);
  t.equal(b!.code, 0, b!.stderr);
});

t.test('status: expired and unreadable certificates exit 1', async (t) => {
  const home = t.testdir({ '.ssh': { sshca: { 'id_ed25519-cert.pub': 'ssh-ed25519-cert-v01@openssh.com AAAA\n' } } });
  const unreadable = await runCli(['status', '--json'], { HOME: home });
  t.equal(unreadable.code, 1);
  t.equal(JSON.parse(unreadable.stdout).state, 'unreadable');
});

t.test('every error path exits with its documented code', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'dave' });
  const home = t.testdir();
  const env = devLoginEnv(dev.dataDir, home);
  const cases: Array<[string, string[], Record<string, string>, number, string]> = [
    ['no server', ['login'], env, 2, 'CLIENT_USAGE'],
    ['unknown flag', ['login', '--server', dev.url, '--bogus'], env, 2, 'CLIENT_USAGE'],
    ['bad ttl', ['login', '--server', dev.url, '--ttl', 'soon'], env, 2, 'CLIENT_USAGE'],
    ['unknown command', ['frobnicate'], env, 2, 'CLIENT_USAGE'],
    ['server URL not a URL', ['login', '--server', 'not a url'], env, 2, 'CLIENT_USAGE'],
    ['root refused by policy', ['login', '--server', dev.url, '--profile', 'sshca-dev', '--principal', 'root'], env, 3, 'POLICY_PRINCIPAL_DENIED'],
    ['ttl above the cap', ['login', '--server', dev.url, '--profile', 'sshca-dev', '--ttl', '13h'], env, 3, 'POLICY_TTL_EXCEEDED'],
    ['no such profile', ['login', '--server', dev.url, '--profile', 'nope'], env, 5, 'CLIENT_PROFILE_NOT_FOUND'],
    ['--key that does not exist', ['login', '--server', dev.url, '--profile', 'sshca-dev', '--key', join(home, 'nope')], env, 6, 'CLIENT_KEY_MISSING'],
  ];
  for (const [name, args, e, code, errorCode] of cases) {
    const r = await runCli(args, e);
    t.equal(r.code, code, `${name}: exit ${code}`);
    t.equal(errorCodeOf(r.stderr), errorCode, `${name}: ${errorCode}`);
  }
  const closed = await freePort();
  const down = await runCli(['login', '--server', `http://127.0.0.1:${closed}`, '--profile', 'sshca-dev'], env);
  t.equal(down.code, 4, 'server unreachable: exit 4');
  t.equal(errorCodeOf(down.stderr), 'CLIENT_SERVER_UNREACHABLE');
  const wrongCreds = join(home, 'wrong-credentials');
  writeFileSync(wrongCreds, '[sshca-dev]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = nope\n');
  const refused = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], { ...env, AWS_SHARED_CREDENTIALS_FILE: wrongCreds });
  t.equal(refused.code, 3, 'credentials STS does not know: exit 3');
  t.equal(errorCodeOf(refused.stderr), 'AUTHN_FAILED');
});

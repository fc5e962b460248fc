// The client as engineers use it every day: ssh-agent, `sshca ssh` with an
// expired certificate, ssh_config, settings precedence, and plain errors.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount, startThrowawaySshd } from '../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { CLI, CLI_MODULES, devLoginEnv, errorCodeOf, runCli, runCommand } from '../fixtures/cli.js';
import { ShiftableClock, startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { freePort } from '../../scripts/throwaway-sshd.js';

const execFileAsync = promisify(execFile);
const login = (url: string, env: Record<string, string>, ...extra: string[]) => runCli(['login', '--server', url, '--profile', 'sshca-dev', ...extra], env);

t.test('ssh-agent: loaded with the certificate lifetime, removed by logout', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'liv' });
  const dir = t.testdir();
  // Unix socket paths are limited to ~108 bytes; tap's fixture dirs are longer.
  const sockDir = mkdtempSync(join(tmpdir(), 'sshca-agent-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const sock = join(sockDir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-d', '-a', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    agent.kill();
  });
  let agentLog = '';
  agent.stdout.on('data', (d: Buffer) => (agentLog += d.toString()));
  agent.stderr.on('data', (d: Buffer) => (agentLog += d.toString()));
  for (let i = 0; i < 100 && !agentLog.includes('SSH_AUTH_SOCK'); i++) await new Promise((r) => setTimeout(r, 20));
  const env = { ...devLoginEnv(dev.dataDir, join(dir, 'home')), SSH_AUTH_SOCK: sock };
  const r = await login(dev.url, env, '--ttl', '2h', '--json');
  t.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  const remaining = Math.floor((Date.parse(result.validBefore) - Date.now()) / 1000);
  t.ok(Math.abs(result.agentLifetimeSeconds - remaining) <= 5, `agent lifetime ${result.agentLifetimeSeconds}s ≈ remaining validity ${remaining}s`);
  await new Promise((r) => setTimeout(r, 200));
  const lives = [...agentLog.matchAll(/\(life: (\d+)\)/g)].map((m) => Number(m[1]));
  t.ok(lives.length >= 2 && lives.every((l) => l === result.agentLifetimeSeconds), `the agent holds key and certificate for that lifetime (${lives.join(',')})`);
  const listed = execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8' });
  t.match(listed, /ED25519-CERT/, 'the certificate is in the agent');
  const out = await runCli(['logout', '--json'], env);
  t.equal(out.code, 0, out.stderr);
  const after = (() => {
    try {
      return execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8' });
    } catch (e) {
      return String((e as { stdout?: string }).stdout);
    }
  })();
  t.match(after, /no identities/, 'logout removed them from the agent');
  t.equal(JSON.parse((await runCli(['status', '--json'], env)).stdout).state, 'missing', 'and from disk');
  const noAgent = await login(dev.url, env, '--no-agent', '--json');
  t.equal(JSON.parse(noAgent.stdout).agentLifetimeSeconds, undefined, '--no-agent leaves the agent alone');
});

t.test('sshca ssh renews an expired certificate, then logs in', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: user });
  const dir = t.testdir();
  const env = devLoginEnv(dev.dataDir, join(dir, 'home'));
  t.equal((await login(dev.url, env)).code, 0);
  const key = join(dir, 'home', '.ssh', 'sshca', 'id_ed25519');
  // Replace the certificate with an expired one from the same CA.
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(dev.dataDir, 'ca', 'user-ed25519.pem'), 'ed25519') });
  const serial = randomSerial();
  const now = Math.floor(Date.now() / 1000);
  const expired = await ca.issue({ kind: 'user', publicKey: parsePublicKeyLine(readFileSync(`${key}.pub`, 'utf8')), serial, keyId: keyIdFor('arn:test', serial), principals: [user], validAfter: now - 7200, validBefore: now - 60, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  writeFileSync(`${key}-cert.pub`, `${expired.line}\n`);
  t.equal(JSON.parse((await runCli(['status', '--json'], env)).stdout).state, 'expired');
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), await (await fetch(`${dev.url}/v1/ca/user.pub`)).text());
  t.teardown(() => sshd.stop());
  const r = await runCli(['ssh', '--server', dev.url, '--profile', 'sshca-dev', '--', '-F', '/dev/null', '-p', String(sshd.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, 'echo via-sshca-ssh'], { ...env, SSH_AUTH_SOCK: '' });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /via-sshca-ssh/, 'ssh ran with the renewed certificate');
  t.match(r.stderr, /certificate expired; logging in/);
  const st = JSON.parse((await runCli(['status', '--json'], env)).stdout);
  t.equal(st.state, 'valid');
  t.not(st.serial, serial.toString(), 'a new certificate');
});

t.test('sshca config: a block ssh itself accepts, written once however often', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'mo' });
  const dir = t.testdir();
  const home = join(dir, 'home');
  const env = devLoginEnv(dev.dataDir, home);
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'config'), 'Host legacy\n    User old\n');
  for (let i = 0; i < 2; i++) t.equal((await runCli(['config', '--server', dev.url, '--host', '*.internal', '--write'], env)).code, 0);
  const config = readFileSync(join(home, '.ssh', 'config'), 'utf8');
  t.equal(config.match(/>>> sshca/g)?.length, 1, 'one block after two writes');
  t.match(config, /^Host legacy\n {4}User old\n/, 'existing content kept');
  // A PATH where `sshca` is this build, so ssh's `Match exec` runs it for real.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const calls = join(dir, 'sshca-calls.log');
  writeFileSync(join(bin, 'sshca'), `#!/bin/sh\necho "$@" >> ${calls}\nexec ${process.execPath} ${CLI} "$@"\n`);
  chmodSync(join(bin, 'sshca'), 0o755);
  const sshEnv = { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}`, SSHCA_SERVER: dev.url, AWS_PROFILE: 'sshca-dev', AWS_EC2_METADATA_DISABLED: 'true' };
  // Asynchronously: the dev server lives in this process and must keep answering.
  const sshG = async (host: string) => (await execFileAsync('ssh', ['-G', '-F', join(home, '.ssh', 'config'), host], { env: sshEnv, encoding: 'utf8' })).stdout;
  const g = await sshG('db.internal');
  t.match(g, new RegExp(`certificatefile ${join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub')}`), 'ssh -G applies the block (Match exec logged in)');
  t.equal(JSON.parse((await runCli(['status', '--json'], env)).stdout).state, 'valid', 'the Match exec line logged in');
  const callsBefore = readFileSync(calls, 'utf8');
  const other = await sshG('example.com');
  t.notMatch(other, /sshca\/id_ed25519-cert\.pub/, 'other hosts are untouched');
  t.equal(readFileSync(calls, 'utf8'), callsBefore, 'and ssh did not even run sshca for them');
  const printed = JSON.parse((await runCli(['config', '--json'], env)).stdout);
  t.match(printed.sshConfig, /^Match host \*\.internal exec "sshca status --quiet \|\| sshca login --quiet 2>\/dev\/null"/, 'the remembered host patterns');
  // Logged out, and the credentials gone (an expired SSO session): ssh stays quiet and goes on without the block.
  await runCli(['logout'], env);
  const broken = await execFileAsync('ssh', ['-G', '-F', join(home, '.ssh', 'config'), 'db.internal'], { env: { ...sshEnv, AWS_PROFILE: 'no-such-profile' }, encoding: 'utf8' });
  t.match(readFileSync(calls, 'utf8'), /login --quiet\n$/, 'the hook tried to log in');
  t.notMatch(broken.stderr, /sshca|CLIENT_|AWS/, 'and printed nothing of its own');
  t.notMatch(broken.stdout, /sshca\/id_ed25519-cert\.pub/, 'the block does not apply without a certificate');
});

t.test('sshca ca, status --min-valid/--quiet, and settings precedence', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'ned' });
  const dir = t.testdir();
  const home = join(dir, 'home');
  const env = devLoginEnv(dev.dataDir, home);
  t.equal((await runCli(['ca', '--server', dev.url], env)).stdout, await (await fetch(`${dev.url}/v1/ca/user.pub`)).text(), 'ca prints the user CA');
  t.same(JSON.parse((await runCli(['ca', '--server', dev.url, '--host', '--json'], env)).stdout), { hostCaKeys: (await (await fetch(`${dev.url}/v1/ca/host.pub`)).text()).trim().split('\n') });

  const dead = `http://127.0.0.1:${await freePort()}`;
  const configDir = join(home, '.config', 'sshca');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ server: dev.url, profile: 'sshca-dev' }));
  t.equal((await runCli(['login', '--ttl', '2h'], env)).code, 0, 'server and profile from config.json');
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ server: dead, profile: 'sshca-dev' }));
  t.equal((await runCli(['login'], { ...env, SSHCA_SERVER: dev.url })).code, 0, 'SSHCA_SERVER beats the file');
  t.equal((await runCli(['login', '--server', dev.url], { ...env, SSHCA_SERVER: dead })).code, 0, '--server beats SSHCA_SERVER');
  t.equal((await runCli(['status', '--min-valid', '9h'], env)).code, 1, 'not valid for another 9h (the certificate lives 8h)');
  const quiet = await runCli(['status', '--quiet'], env);
  t.equal(quiet.code, 0);
  t.equal(quiet.stdout, '', '--quiet prints nothing');
  const plain = await runCli(['status'], env);
  t.match(plain.stdout, /^valid: ned until .* \(\d+h\d+m left; serial \d+, CA SHA256:/, 'the fast path prints what the full CLI prints');

  writeFileSync(join(configDir, 'config.json'), '{"server": 1}');
  const bad = await runCli(['login'], env);
  t.equal(bad.code, 6);
  t.equal(errorCodeOf(bad.stderr), 'CLIENT_CONFIG_INVALID');
  rmSync(join(configDir, 'config.json'));

  // Remembered: the first login's --server and --profile are saved (not with --no-save), so the next needs neither.
  const fresh = devLoginEnv(dev.dataDir, join(dir, 'fresh'));
  const freshFile = join(dir, 'fresh', '.config', 'sshca', 'config.json');
  const unsaved = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-save', '--json'], fresh);
  t.equal(unsaved.code, 0, unsaved.stderr);
  t.notOk(existsSync(freshFile), '--no-save writes no settings');
  t.notOk('remembered' in JSON.parse(unsaved.stdout));
  t.equal((await runCli(['login'], fresh)).code, 2, 'so a bare login still has no server');
  const first = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--json'], fresh);
  t.match(JSON.parse(first.stdout).remembered, { server: dev.url, profile: 'sshca-dev', settingsFile: freshFile });
  t.same(JSON.parse(readFileSync(freshFile, 'utf8')), { server: dev.url, profile: 'sshca-dev' }, 'saved in the settings file');
  const bare = await runCli(['login'], fresh);
  t.equal(bare.code, 0, `then a bare sshca login works ${bare.stderr}`);
  t.notMatch(bare.stdout, /remembered/, 'and saves nothing again');
  t.equal((await runCli(['login', '--server', dead, '--profile', 'sshca-dev'], fresh)).code, 4, 'a failed login…');
  t.same(JSON.parse(readFileSync(freshFile, 'utf8')), { server: dev.url, profile: 'sshca-dev' }, '…changes nothing');

  // status never loads the AWS SDK (nor needs a server).
  const forbid = join(import.meta.dirname, '..', 'fixtures', 'forbid-aws-sdk.mjs');
  const guarded = await runCommand(CLI_MODULES, ['status'], { ...env, NODE_OPTIONS: `--import=${forbid}` });
  t.equal(guarded.code, 0, `status ran with the AWS SDK forbidden: ${guarded.stderr}`);
  const control = await runCommand(CLI_MODULES, ['login', '--server', dev.url, '--profile', 'sshca-dev'], { ...env, NODE_OPTIONS: `--import=${forbid}` });
  t.match(control.stderr, /AWS SDK loaded/, 'control: the guard does catch login loading it');
});

t.test('clock skew and TLS errors are named', needsOpenSsh, async (t) => {
  const clock = new ShiftableClock();
  clock.offsetMs = 10 * 60_000;
  const dev = await startDevServer(t, { devUser: 'ola', clock });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const skew = await login(dev.url, env);
  t.equal(skew.code, 3);
  t.equal(errorCodeOf(skew.stderr), 'CLIENT_CLOCK_SKEW');
  t.match(skew.stderr, /10 minutes behind/);

  const dir = t.testdir();
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const tls = createServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (_req, res) => res.end('{}'));
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  t.teardown(() => tls.close());
  const r = await login(`https://127.0.0.1:${(tls.address() as { port: number }).port}`, env);
  t.equal(r.code, 4);
  t.equal(errorCodeOf(r.stderr), 'CLIENT_TLS_ERROR');
});

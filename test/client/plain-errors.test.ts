// The common mistakes in plain words (issue 15): each through the real
// client against the dev server, asserting the code, the exit status and
// that a next step is printed.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { ShiftableClock, startDevServer } from '../fixtures/dev-server.js';
import { CLI, devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

const execFileAsync = promisify(execFile);

t.test('a profile that does not exist is named, with the ones found and how to set one up', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'pia' });
  const home = t.testdir();
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'config'), '[default]\nregion = eu-west-1\n[profile dev-admin]\nsso_session = corp\n[sso-session corp]\nsso_region = eu-west-1\n');
  writeFileSync(join(home, '.aws', 'credentials'), '[ci]\naws_access_key_id = AKIAEXAMPLEEXAMPLE12\naws_secret_access_key = x\n');
  const r = await runCli(['login', '--server', dev.url, '--profile', 'dev-admn', '--no-save'], { HOME: home, AWS_EC2_METADATA_DISABLED: 'true' });
  t.equal(r.code, 5);
  t.equal(errorCodeOf(r.stderr), 'CLIENT_PROFILE_NOT_FOUND');
  t.match(r.stderr, /"dev-admn"/, 'names it');
  t.match(r.stderr, /ci, default, dev-admin/, 'lists the profiles found (not the sso-session)');
  t.match(r.stderr, /aws configure sso/, 'and the next step');
});

t.test('no AWS credentials at all: the next step is aws sso login', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'nils' });
  const home = t.testdir();
  const r = await runCli(['login', '--server', dev.url, '--no-save'], { HOME: home, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none') });
  t.equal(r.code, 5);
  t.equal(errorCodeOf(r.stderr), 'CLIENT_NO_CREDENTIALS');
  t.match(r.stderr, /aws sso login/);
});

t.test('a clock ahead by more than a minute, or behind by more than five, is named; 30 s is not', needsOpenSsh, async (t) => {
  const clock = new ShiftableClock();
  const dev = await startDevServer(t, { devUser: 'cleo', clock });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const login = () => runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-agent', '--no-save'], env);
  for (const [serverOffsetS, expected] of [[-90, 'ahead of'], [+330, 'behind']] as const) {
    clock.offsetMs = serverOffsetS * 1000;
    const r = await login();
    t.equal(r.code, 3, `server ${serverOffsetS} s off`);
    t.equal(errorCodeOf(r.stderr), 'CLIENT_CLOCK_SKEW');
    t.match(r.stderr, new RegExp(`your clock is .* ${expected} the server's`));
    t.match(r.stderr, /NTP/, 'with the fix');
  }
  clock.offsetMs = -30_000;
  t.equal((await login()).code, 0, 'half a minute apart still signs in');
});

t.test("the server's request id is on every server-side error, in text and in --json", needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'remy' });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const r = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--principal', 'root', '--no-agent', '--no-save', '--json'], env);
  t.equal(r.code, 3);
  const code = errorCodeOf(r.stderr)!;
  t.match(code, /^POLICY_/);
  const id = /\(request id ([^)]+)\)/.exec(r.stderr)?.[1];
  t.ok(id, 'the text line carries the request id');
  t.same(JSON.parse(r.stdout), { error: { code, message: (JSON.parse(r.stdout) as { error: { message: string } }).error.message, requestId: id, exitCode: 3 } }, '--json carries the same');
  t.match(r.stderr, /principal root is not granted to this identity; it may have: remy/, 'and says what the caller may have');

  // A lifetime past the policy's: in units, never a schema path (8d is above the old 7-day bound on the number).
  const long = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--ttl', '8d', '--no-agent', '--no-save'], env);
  t.equal(long.code, 3);
  t.equal(errorCodeOf(long.stderr), 'POLICY_TTL_EXCEEDED');
  t.match(long.stderr, /a lifetime of 8d is more than this identity may have: at most 12h/);
  t.notMatch(long.stderr, /body\/|ttlSeconds|must be/, 'no schema path');
});

t.test('https:// to a port that speaks plain HTTP is named as such', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'hana' });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const r = await runCli(['ca', '--server', dev.url.replace('http://', 'https://')], env);
  t.equal(r.code, 2);
  t.equal(errorCodeOf(r.stderr), 'CLIENT_NOT_HTTPS');
  t.match(r.stderr, /plain HTTP/);
  // A path is refused with the fix, never silently dropped.
  const withPath = await runCli(['ca', '--server', `${dev.url}/sshca`], env);
  t.equal(withPath.code, 2);
  t.equal(errorCodeOf(withPath.stderr), 'CLIENT_USAGE');
  t.match(withPath.stderr, /no path .*scheme:\/\/host/);
  t.equal((await runCli(['ca', '--server', `${dev.url}/`], env)).code, 0, 'a bare trailing slash is the root');
});

t.test('a stale SSH_AUTH_SOCK: the certificate is written, a warning says the agent was not loaded, exit 0', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'ivo' });
  const home = t.testdir();
  const env = { ...devLoginEnv(dev.dataDir, home), SSH_AUTH_SOCK: join(home, 'gone', 'agent.sock') };
  const r = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-save', '--json'], env);
  t.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { certificatePath: string; agentWarning?: { code: string }; agentLifetimeSeconds?: number };
  t.ok(existsSync(result.certificatePath), 'the certificate is written');
  t.equal(result.agentWarning?.code, 'CLIENT_AGENT_FAILED');
  t.equal(result.agentLifetimeSeconds, undefined, 'not claimed to be in the agent');
  t.match(r.stderr, /warning: .*not loaded into ssh-agent.*\[CLIENT_AGENT_FAILED\]/);
});

t.test('a 503 with Retry-After is retried, visibly and a bounded number of times', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'bo' });
  const env = devLoginEnv(dev.dataDir, t.testdir());
  // The store refuses issued records (503 UNAVAILABLE_STORE, Retry-After 5) until the trigger goes.
  const db = new Database(join(dev.dataDir, 'audit.db'));
  t.teardown(() => db.close());
  db.exec(`CREATE TRIGGER busy BEFORE INSERT ON audit_records WHEN NEW.kind = 'issued' BEGIN SELECT RAISE(ABORT, 'busy'); END`);
  const busyAnswers = () => (db.prepare("SELECT count(*) AS n FROM audit_records WHERE kind = 'refused' AND json_extract(data, '$.code') = 'UNAVAILABLE_STORE'").get() as { n: number }).n;
  const pending = runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-agent', '--no-save'], env);
  // The store recovers once the server has answered 503 once (its refusal is on the record), during the client's wait.
  for (const deadline = Date.now() + 30_000; busyAnswers() === 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
  db.exec('DROP TRIGGER busy');
  const r = await pending;
  t.equal(r.code, 0, `the retry got the certificate ${r.stderr}`);
  t.match(r.stderr, /server busy \(UNAVAILABLE_STORE\), retrying in 5 s \(1\/2\)/, 'said so while waiting');

  db.exec(`CREATE TRIGGER busy BEFORE INSERT ON audit_records WHEN NEW.kind = 'issued' BEGIN SELECT RAISE(ABORT, 'busy'); END`);
  const started = Date.now();
  const gaveUp = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-agent', '--no-save', '--quiet'], env);
  t.equal(gaveUp.code, 4, 'still busy after the retries: unavailable');
  t.equal(errorCodeOf(gaveUp.stderr), 'UNAVAILABLE_STORE');
  t.notMatch(gaveUp.stderr, /retrying/, '--quiet: no progress lines');
  t.ok(Date.now() - started >= 10_000, 'it did wait for both retries');
});

t.test('a slow server: "waiting for …" on a terminal after a second, never in a pipe or with --quiet', async (t) => {
  // Answers after 2.5 s, and with a refusal: what matters is the wait.
  const slow = createServer((_req, res) => setTimeout(() => res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"REQUEST_NOT_FOUND","message":"no such route"}'), 2500));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  t.teardown(() => slow.close());
  const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
  const home = t.testdir();
  const env = { HOME: home, AWS_EC2_METADATA_DISABLED: 'true' };
  const inPipe = await runCli(['login', '--server', url, '--no-save'], env);
  t.equal(errorCodeOf(inPipe.stderr), 'REQUEST_NOT_FOUND');
  t.notMatch(inPipe.stderr, /waiting for/, 'not in a pipe');
  // A pseudo-terminal: util-linux script(1), as a user's shell would run it
  // (asynchronously: the slow server lives in this process and must answer).
  const run = async (extra: string): Promise<string> => {
    try {
      return (await execFileAsync('script', ['-q', '-e', '-c', `${process.execPath} ${CLI} login --server ${url} --no-save ${extra}`, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8' })).stdout;
    } catch (err) {
      return String((err as { stdout?: string }).stdout ?? '');
    }
  };
  t.match(await run(''), new RegExp(`waiting for 127\\.0\\.0\\.1:${(slow.address() as AddressInfo).port}`), 'on a terminal, after a second');
  t.notMatch(await run('--quiet'), /waiting for/, 'not with --quiet');
});

t.test('credentials AWS would refuse: expired ones are named before anything is sent; rejected ones get the check to run', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'ute' });
  const home = t.testdir();
  const base = { HOME: home, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none') };
  const expired = await runCli(['login', '--server', dev.url, '--no-save', '--no-agent'], {
    ...base, AWS_ACCESS_KEY_ID: dev.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: dev.credentials.secretAccessKey, AWS_CREDENTIAL_EXPIRATION: new Date(Date.now() - 60_000).toISOString(),
  });
  t.equal(expired.code, 5);
  t.equal(errorCodeOf(expired.stderr), 'CLIENT_CREDENTIALS_EXPIRED');
  t.match(expired.stderr, /expired at .*get new ones/);
  const rejected = await runCli(['login', '--server', dev.url, '--no-save', '--no-agent'], { ...base, AWS_ACCESS_KEY_ID: dev.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
  t.equal(rejected.code, 3, 'AWS (the dev STS) refuses the signature: a refusal');
  t.equal(errorCodeOf(rejected.stderr), 'AUTHN_FAILED');
  t.match(rejected.stderr, /aws sts get-caller-identity/, 'with the check that tells it apart from the rest');
  t.match(rejected.stderr, /\(request id [^)]+\)/);
});

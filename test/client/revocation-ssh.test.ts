// After a revocation the next connection just works: `sshca ssh` refused by
// a real sshd that reads the server's KRL checks that KRL (cached by ETag),
// logs in again once and gets in; `sshca status --check-revocation` says
// revoked / not revoked / unknown. Through the built client, against the dev
// server and a throwaway sshd.
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readCertificate } from '../../client/certificate-info.js';
import { readKrl } from '../../client/krl-reader.js';
import { ensureLoginAccount, freePort, startThrowawaySshd } from '../../scripts/throwaway-sshd.js';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { startDevServer, type DevServer } from '../fixtures/dev-server.js';
import { keygenRevoked, needsOpenSsh } from '../fixtures/openssh.js';


async function listen(t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A pass-through proxy to the dev server that records each request's path, If-None-Match and status. */
async function countingProxy(t: Test, target: string): Promise<{ url: string; seen: Array<{ path: string; ifNoneMatch: string | undefined; status: number }> }> {
  const seen: Array<{ path: string; ifNoneMatch: string | undefined; status: number }> = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', target);
    const upstream = httpRequest(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (up) => {
      seen.push({ path: req.url ?? '', ifNoneMatch: req.headers['if-none-match'], status: up.statusCode ?? 0 });
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  return { url: await listen(t, server), seen };
}

/** Saves the server's KRL where the throwaway sshd reads it (what instances do at their refresh). */
async function refreshSshdKrl(dev: DevServer, path: string): Promise<Buffer> {
  const bytes = Buffer.from(await (await fetch(`${dev.url}/v1/krl`)).arrayBuffer());
  writeFileSync(path, bytes);
  return bytes;
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

t.test('revoke, then sshca ssh reaches the real sshd with a new certificate; status --check-revocation follows', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: user });
  const dir = t.testdir();
  const home = join(dir, 'home');
  const env = { ...devLoginEnv(dev.dataDir, home), SSH_AUTH_SOCK: '' };
  const cli = (...args: string[]) => runCli(args, env);
  const withServer = ['--server', dev.url, '--profile', 'sshca-dev'];
  const certPath = join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub');
  const serialNow = () => readCertificate(readFileSync(certPath, 'utf8')).serial.toString();

  const first = await cli('login', ...withServer, '--json');
  t.equal(first.code, 0, first.stderr);
  const s1 = (JSON.parse(first.stdout) as { serial: string }).serial;
  const krl = join(dir, 'revoked.krl');
  await refreshSshdKrl(dev, krl);
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), await (await fetch(`${dev.url}/v1/ca/user.pub`)).text(), { revokedKeys: krl });
  t.teardown(() => sshd.stop());
  const sshOptions = ['-F', '/dev/null', '-p', String(sshd.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR'];
  const sshcaSsh = (account: string) => cli('ssh', ...withServer, '--', ...sshOptions, `${account}@127.0.0.1`, 'echo via-sshca-ssh');

  const control = await sshcaSsh(user);
  t.equal(control.code, 0, `before any revocation sshca ssh gets in: ${control.stderr}`);
  t.equal(serialNow(), s1, 'with the certificate it had');

  // status --check-revocation, through a proxy that counts requests: the second check is a 304.
  const proxy = await countingProxy(t, dev.url);
  const check = (...extra: string[]) => cli('status', '--check-revocation', '--server', proxy.url, ...extra);
  const fine = await check('--json');
  t.equal(fine.code, 0, fine.stderr);
  t.match(JSON.parse(fine.stdout), { state: 'valid', revocation: 'not-revoked', serial: s1 });
  const again = await check('--json');
  t.equal(again.code, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { state: 'valid', revocation: 'not-revoked' });
  const etag = (await fetch(`${dev.url}/v1/krl`)).headers.get('etag')!;
  t.same(proxy.seen.map((r) => [r.path, r.ifNoneMatch, r.status]), [['/v1/krl', undefined, 200], ['/v1/krl', etag, 304]], 'first check downloads the KRL, the second sends its ETag and gets 304');
  t.match(JSON.parse(readFileSync(join(home, '.ssh', 'sshca', 'revocations.json'), 'utf8')), { etag }, 'the ETag is kept next to the key');
  t.match((await check()).stdout, /^valid: .*; not revoked; serial /, 'human output says not revoked');

  // Revoke (admin), and give the sshd the new KRL as an instance's refresh would.
  const revoked = await cli('revoke', '--serial', s1, '--reason', 'laptop stolen', ...withServer);
  t.equal(revoked.code, 0, revoked.stderr);
  const krlBytes = await refreshSshdKrl(dev, krl);
  t.equal(keygenRevoked(krl, certPath), true, 'ssh-keygen -Q: the certificate is revoked by the server\'s KRL');
  t.equal(readKrl(krlBytes).revokes(readCertificate(readFileSync(certPath, 'utf8'))), 'certificate', 'the client\'s reader agrees');
  const nowRevoked = await check('--json');
  t.equal(nowRevoked.code, 1, 'status exits 1 for a revoked certificate');
  t.match(JSON.parse(nowRevoked.stdout), { state: 'revoked', revocation: 'revoked', serial: s1 });
  t.same(proxy.seen.at(-1), { path: '/v1/krl', ifNoneMatch: etag, status: 200 }, 'a changed KRL is downloaded again');
  t.match((await check()).stdout, /^revoked: .*revoked by the server's KRL \(version \d+\)/);

  // The next connection just works: refused, KRL checked, one login, in.
  const renewed = await sshcaSsh(user);
  t.equal(renewed.code, 0, `sshca ssh gets in after the revocation: ${renewed.stderr}`);
  t.match(renewed.stdout, /via-sshca-ssh/, 'the remote command ran');
  t.match(renewed.stderr, /Permission denied \(publickey/, 'ssh\'s own refusal still reaches the user');
  t.match(renewed.stderr, new RegExp(`certificate serial ${s1} is revoked \\(KRL version \\d+\\); logging in again`));
  t.equal(count(renewed.stderr, /logging in/), 1, 'one login');
  const s2 = serialNow();
  t.not(s2, s1, 'with a new certificate');
  t.match(JSON.parse((await check('--json')).stdout), { state: 'valid', revocation: 'not-revoked', serial: s2 });

  // An unrelated refusal (an account the certificate does not name) is ssh's answer: no KRL verdict, no login.
  const other = await sshcaSsh('nobody');
  t.equal(other.code, 255, 'ssh\'s exit code');
  t.match(other.stderr, /Permission denied \(publickey/);
  t.equal(count(other.stderr, /logging in/), 0, 'no login for a certificate that is not revoked');
  t.equal(serialNow(), s2, 'the certificate is untouched');

  // Exactly one retry: revoked, and refused for another reason as well.
  t.equal((await cli('revoke', '--serial', s2, '--reason', 'test', ...withServer)).code, 0);
  await refreshSshdKrl(dev, krl);
  const once = await sshcaSsh('nobody');
  t.equal(once.code, 255, 'the second refusal is the answer');
  t.equal(count(once.stderr, /logging in again/), 1, 'one login, one retry');
  t.equal(count(once.stderr, /Permission denied \(publickey/), 2, 'ssh ran twice, no more');
  const s3 = serialNow();
  t.not(s3, s2, 'the revoked certificate was replaced');

  // A revoked key: a new certificate for it would be refused too, so no login, and the next step is said.
  t.equal((await cli('revoke', '--public-key', join(home, '.ssh', 'sshca', 'id_ed25519.pub'), '--reason', 'key leaked', ...withServer)).code, 0);
  await refreshSshdKrl(dev, krl);
  const keyRevoked = await sshcaSsh(user);
  t.equal(keyRevoked.code, 255);
  t.equal(errorCodeOf(keyRevoked.stderr), 'CLIENT_KEY_REVOKED', 'the key is named as revoked');
  t.match(keyRevoked.stderr, /sshca logout, then sshca login/, 'with the next step');
  t.equal(count(keyRevoked.stderr, /logging in/), 0, 'no login');
  t.equal(serialNow(), s3);
});

t.test('status --check-revocation: an unreachable server or an unreadable KRL is "unknown", never "not revoked"', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'uma' });
  const home = t.testdir();
  const env = devLoginEnv(dev.dataDir, home);
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], env)).code, 0);

  const closed = `http://127.0.0.1:${await freePort()}`;
  const unreachable = await runCli(['status', '--check-revocation', '--server', closed, '--json'], env);
  t.equal(unreachable.code, 0, 'unknown does not block: the certificate is still valid');
  t.match(JSON.parse(unreachable.stdout), { state: 'valid', revocation: 'unknown', revocationWarning: { code: 'CLIENT_REVOCATION_UNKNOWN' } });
  t.equal(errorCodeOf(unreachable.stderr), 'CLIENT_REVOCATION_UNKNOWN', 'and a warning says so');

  const garbage = await listen(t, createServer((_req, res) => res.writeHead(200, { etag: '"x"' }).end('<html>not a KRL</html>')));
  const unreadable = await runCli(['status', '--check-revocation', '--server', garbage], env);
  t.equal(unreadable.code, 0);
  t.match(unreadable.stdout, /^valid: .*; revocation unknown; serial /);
  t.equal(errorCodeOf(unreadable.stderr), 'CLIENT_REVOCATION_UNKNOWN');
  t.match(unreadable.stderr, /CLIENT_KRL_UNREADABLE/, 'the cause is named');

  const noServer = await runCli(['status', '--check-revocation'], { ...env, XDG_CONFIG_HOME: join(home, 'empty-config') });
  t.equal(noServer.code, 2, 'without a server to ask: usage');
  t.equal(errorCodeOf(noServer.stderr), 'CLIENT_USAGE');
});

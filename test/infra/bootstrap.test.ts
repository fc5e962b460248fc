// The instance bootstrap, run with --root into a temp dir, then a real sshd
// started with the configuration it wrote.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount, SSHD } from '../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { CA_LIST_NAMESPACE, signSshsig } from '../../server/ca/sshsig.js';
import { devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { bootstrap, prepareInstanceRoot, run, sshLogin, startInstanceSshd } from '../fixtures/instance.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

t.test('bootstrap an instance, log in, revoke, refresh, and fail safely', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: 'alice' });
  const instance = await prepareInstanceRoot(t);
  const { root, etc, port } = instance;
  const caLine = (await (await fetch(`${dev.url}/v1/ca/user.pub`)).text()).trim();
  const pin = fingerprintOf(parsePublicKeyLine(caLine).blob);
  const install = ['--server', dev.url, '--ca-fingerprint', pin, '--allow', `${user}=alice,ops`, '--root', root];

  const wrongPin = await bootstrap(['--server', dev.url, '--ca-fingerprint', `SHA256:${'A'.repeat(43)}`, '--allow', `${user}=alice`, '--root', root]);
  t.equal(wrongPin.code, 1, 'a server whose CA does not match the pin is refused');
  t.notOk(existsSync(join(etc, 'sshca', 'trusted_user_ca_keys')), 'and nothing is trusted');

  const first = await bootstrap(install);
  t.equal(first.code, 0, first.stderr);
  t.match(readFileSync(join(etc, 'sshd_config'), 'utf8'), /^Include .*sshd_config\.d\/\*\.conf\n/, 'Include added first');
  t.equal(readFileSync(join(etc, 'sshca', 'principals', user), 'utf8'), 'alice\nops\n');
  const mtime = statSync(join(etc, 'sshd_config.d', '00-sshca.conf')).mtimeMs;
  const second = await bootstrap(install);
  t.equal(second.code, 0);
  t.match(second.stderr, /no changes/, 'running it twice changes nothing');
  t.equal(statSync(join(etc, 'sshd_config.d', '00-sshca.conf')).mtimeMs, mtime);
  const effective = (await run(SSHD, ['-T', '-f', join(etc, 'sshd_config')])).stdout;
  t.match(effective, /^passwordauthentication no$/m);
  t.match(effective, /^permitrootlogin no$/m);
  t.match(effective, /^kbdinteractiveauthentication no$/m);

  await startInstanceSshd(t, instance);
  const home = (n: string) => join(root, `home-${n}`);
  const keyOf = (n: string) => join(home(n), '.ssh', 'sshca', 'id_ed25519');
  for (const n of ['one', 'two']) t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, home(n)))).code, 0);
  t.equal(await sshLogin(port, user, keyOf('one'), `${keyOf('one')}-cert.pub`), 0, 'a certificate for an allowed principal logs in');
  t.not(await sshLogin(port, 'root', keyOf('one'), `${keyOf('one')}-cert.pub`), 0, 'root is refused');
  t.not(await sshLogin(port, user, keyOf('one'), '/dev/null', ['-o', 'PreferredAuthentications=password,keyboard-interactive']), 0, 'passwords are refused');
  // A certificate from the same CA for a principal not in the user's list.
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(dev.dataDir, 'ca', 'user-ed25519.pem'), 'ed25519') });
  const serial = randomSerial();
  const now = Math.floor(Date.now() / 1000);
  const bob = await ca.issue({ kind: 'user', publicKey: parsePublicKeyLine(readFileSync(`${keyOf('two')}.pub`, 'utf8')), serial, keyId: keyIdFor('t', serial), principals: ['bob'], validAfter: now - 60, validBefore: now + 600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  writeFileSync(join(root, 'bob-cert.pub'), `${bob.line}\n`);
  t.not(await sshLogin(port, user, keyOf('two'), join(root, 'bob-cert.pub')), 0, 'a principal not in the list is refused');

  const serialOne = JSON.parse((await runCli(['status', '--json'], { HOME: home('one') })).stdout).serial;
  t.equal((await runCli(['revoke', '--serial', serialOne, '--reason', 'test', '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, home('one')))).code, 0);
  const refresh = await bootstrap(['--refresh', '--server', dev.url, '--root', root]);
  t.equal(refresh.code, 0, refresh.stderr);
  t.not(await sshLogin(port, user, keyOf('one'), `${keyOf('one')}-cert.pub`), 0, 'after revoke and one refresh the revoked certificate is refused');
  t.equal(await sshLogin(port, user, keyOf('two'), `${keyOf('two')}-cert.pub`), 0, 'another still works');

  // A server that answers garbage, and one whose CA list is signed by a stranger.
  const krlBefore = readFileSync(join(etc, 'sshca', 'revoked.krl'));
  const caBefore = readFileSync(join(etc, 'sshca', 'trusted_user_ca_keys'));
  const stranger = LocalSigner.openOrCreate(join(root, 'stranger.pem'), 'ed25519');
  const forgedList = `${caLine}\nssh-ed25519 ${stranger.publicKey().blob.toString('base64')} evil\n`;
  const forgedSig = await signSshsig(stranger, CA_LIST_NAMESPACE, Buffer.from(forgedList));
  const evil = createServer((req, res) => {
    const answers: Record<string, string> = { '/v1/ca/user.pub': forgedList, '/v1/ca/user.pub.sig': forgedSig };
    res.end(answers[req.url ?? ''] ?? 'this is not a KRL');
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  t.teardown(() => evil.close());
  const bad = await bootstrap(['--refresh', '--server', `http://127.0.0.1:${(evil.address() as { port: number }).port}`, '--root', root]);
  t.equal(bad.code, 1, 'the refresh reports failure');
  t.match(bad.stderr, /not signed by a CA key this instance trusts/);
  t.match(bad.stderr, /KRL does not parse; keeping the current one/);
  t.same(readFileSync(join(etc, 'sshca', 'trusted_user_ca_keys')), caBefore, 'the CA list is unchanged');
  t.same(readFileSync(join(etc, 'sshca', 'revoked.krl')), krlBefore, 'the KRL is unchanged');
  t.equal(await sshLogin(port, user, keyOf('two'), `${keyOf('two')}-cert.pub`), 0, 'logins still work');
});

t.test('sshd -t failure restores the previous configuration', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: 'alice' });
  const { root, etc } = await prepareInstanceRoot(t);
  // A configuration sshd -t rejects: the bootstrap must leave it exactly as it was.
  const broken = `HostKey ${join(etc, 'host_ed25519')}\nUsePAM no\nThisIsNotADirective yes\n`;
  writeFileSync(join(etc, 'sshd_config'), broken);
  const caLine = (await (await fetch(`${dev.url}/v1/ca/user.pub`)).text()).trim();
  const r = await bootstrap(['--server', dev.url, '--ca-fingerprint', fingerprintOf(parsePublicKeyLine(caLine).blob), '--allow', `${user}=alice`, '--root', root]);
  t.equal(r.code, 1);
  t.match(r.stderr, /sshd -t refused the configuration/);
  t.match(r.stderr, /restored the previous state/);
  t.equal(readFileSync(join(etc, 'sshd_config'), 'utf8'), broken, 'sshd_config restored byte for byte');
  t.notOk(existsSync(join(etc, 'sshd_config.d', '00-sshca.conf')), 'the drop-in is gone');
});

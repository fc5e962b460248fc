// The whole story, judged by OpenSSH: `sshca login` against the dev server,
// then a real sshd that trusts /v1/ca/user.pub lets us in — and refuses an
// expired certificate and one for another principal.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount, startThrowawaySshd } from '../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { readFileSync } from 'node:fs';

t.test('sshca login, then a real sshd accepts the certificate and refuses bad ones', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: user });
  const home = t.testdir();
  const login = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, home));
  t.equal(login.code, 0, `login exits 0: ${login.stderr}`);

  const trusted = await (await fetch(`${dev.url}/v1/ca/user.pub`)).text();
  const sshd = await startThrowawaySshd(join(home, 'sshd'), trusted);
  t.teardown(() => sshd.stop());
  const key = join(home, '.ssh', 'sshca', 'id_ed25519');
  const ok = sshd.ssh({ user, key, certificate: `${key}-cert.pub`, command: 'echo sshca-ok; id -un' });
  t.equal(ok.status, 0, `ssh with the certificate succeeds: ${ok.stderr}`);
  t.same(ok.stdout.trim().split('\n'), ['sshca-ok', user], 'the command ran as the principal');

  // Certificates the same CA signs, but that sshd must refuse. Each lives
  // beside its own copy of the key so ssh cannot fall back to the good one.
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(dev.dataDir, 'ca', 'user-ed25519.pem'), 'ed25519') });
  const now = Math.floor(Date.now() / 1000);
  const bad = async (name: string, principals: string[], validAfter: number, validBefore: number) => {
    const dir = join(home, name);
    mkdirSync(dir);
    copyFileSync(key, join(dir, 'id'));
    const serial = randomSerial();
    const cert = await ca.issue({
      kind: 'user', publicKey: parsePublicKeyLine(readFileSync(`${key}.pub`, 'utf8')), serial, keyId: keyIdFor('arn:test', serial),
      principals, validAfter, validBefore, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS,
    });
    writeFileSync(join(dir, 'id-cert.pub'), `${cert.line}\n`);
    return sshd.ssh({ user, key: join(dir, 'id'), certificate: join(dir, 'id-cert.pub'), command: 'echo should-not-run' });
  };
  const control = await bad('control', [user], now - 60, now + 600);
  t.equal(control.status, 0, `control: a fresh certificate made the same way is accepted: ${control.stderr}`);
  const expired = await bad('expired', [user], now - 7200, now - 3600);
  t.not(expired.status, 0, 'expired certificate refused');
  t.notMatch(expired.stdout, /should-not-run/);
  const other = await bad('other-principal', ['someone-else'], now - 60, now + 600);
  t.not(other.status, 0, 'certificate for another principal refused');
  t.notMatch(other.stdout, /should-not-run/);
});

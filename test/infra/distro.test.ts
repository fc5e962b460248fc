// The bootstrap on roots built from real distribution files, each with
// something read before or after it that would re-open a door (cloud-init's
// PasswordAuthentication yes, an earlier drop-in, an AuthorizedKeysCommand):
// what sshd -T enforces, and what a real sshd on loopback lets in.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount } from '../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { bootstrap, effectiveConfig, ensureKeysAccount, fakeTools, offeredMethods, prepareDistroRoot, sshLogin, startLoggingSshd, waitForFileToContain, type DistroKind } from '../fixtures/instance.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

const needsRoot = { skip: needsOpenSsh.skip || (process.env.CI !== 'true' && process.getuid?.() !== 0 ? 'needs root (creates login accounts)' : false) };

t.test('distribution roots: sshd enforces certificates only', needsRoot, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const keys = ensureKeysAccount();
  const dev = await startDevServer(t, { devUser: 'alice' });
  const caLine = (await (await fetch(`${dev.url}/v1/ca/user.pub`)).text()).trim();
  const pin = fingerprintOf(parsePublicKeyLine(caLine).blob);
  const home = t.testdir();
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, home))).code, 0);
  const key = join(home, '.ssh', 'sshca', 'id_ed25519');
  const cert = `${key}-cert.pub`;
  // A certificate from the same CA for a principal no account allows: refused, and logged.
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(dev.dataDir, 'ca', 'user-ed25519.pem'), 'ed25519') });
  const serial = randomSerial();
  const keyId = keyIdFor('arn:aws:iam::000000000000:user/mallory', serial);
  const now = Math.floor(Date.now() / 1000);
  const stranger = await ca.issue({ kind: 'user', publicKey: parsePublicKeyLine(readFileSync(`${key}.pub`, 'utf8')), serial, keyId, principals: ['mallory'], validAfter: now - 60, validBefore: now + 600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  const strangerCert = join(home, 'mallory-cert.pub');
  writeFileSync(strangerCert, `${stranger.line}\n`);

  for (const kind of ['debian-cloud-init', 'al2023', 'earlier-dropin'] as DistroKind[]) {
    await t.test(kind, async (t) => {
      const root = await prepareDistroRoot(t, kind);
      const install = ['--server', dev.url, '--ca-fingerprint', pin, '--allow', `${user}=alice`, '--root', root.root];
      const r = await bootstrap(install);
      t.equal(r.code, 0, r.stderr);
      t.match(r.stderr, /done: sshd -T enforces certificates only: .*authorized_keys off/);
      if (kind === 'al2023') t.match(r.stderr, /AuthorizedKeysCommand \/opt\/aws\/bin\/eic_run_authorized_keys .*60-ec2-instance-connect\.conf:1/, 'the EC2 Instance Connect command is reported');
      if (kind === 'earlier-dropin') t.notOk(existsSync(join(root.etc, 'sshd_config.d', '50-sshca.conf')), 'the old drop-in name is migrated');

      for (const who of [user, 'root']) {
        const eff = await effectiveConfig(root.sshdConfig, who);
        t.same(
          ['passwordauthentication', 'kbdinteractiveauthentication', 'permitrootlogin', 'authorizedkeysfile', 'loglevel', 'x11forwarding'].map((k) => eff.get(k)),
          ['no', 'no', 'no', 'none', 'VERBOSE', 'no'],
          `sshd -T for ${who}`,
        );
        t.equal(eff.get('trustedusercakeys'), join(root.etc, 'sshca', 'trusted_user_ca_keys'));
        t.equal(eff.get('revokedkeys'), join(root.etc, 'sshca', 'revoked.krl'));
        t.equal(eff.get('authorizedprincipalsfile'), join(root.etc, 'sshca', 'principals', '%u'));
      }

      const stop = await startLoggingSshd(t, root);
      t.equal(await sshLogin(root.port, user, key, cert), 0, 'a certificate login works');
      t.same(await offeredMethods(root.port, user), ['publickey'], 'no password or keyboard-interactive method is offered');
      t.not(await sshLogin(root.port, keys.user, keys.key, '/dev/null'), 0, 'a key in authorized_keys is refused');
      // Root: even a principals file naming alice (the bootstrap never writes one) does not let root in.
      const rootPrincipals = join(root.etc, 'sshca', 'principals', 'root');
      writeFileSync(rootPrincipals, 'alice\n');
      t.not(await sshLogin(root.port, 'root', key, cert), 0, 'root is refused');
      rmSync(rootPrincipals);
      t.not(await sshLogin(root.port, user, key, strangerCert), 0, 'a certificate for another principal is refused');
      // sshd may log the refusal after the client has gone: wait for the line (or time out).
      const logged = await waitForFileToContain(root.log, `ID ${keyId} (serial ${serial})`).then(() => true, () => false);
      t.ok(logged, "the refused certificate's key id and serial are in sshd's log");

      if (kind === 'debian-cloud-init') {
        // The control: with --keep-authorized-keys the same key logs in, and the summary says so.
        await stop();
        const kept = await bootstrap([...install, '--keep-authorized-keys']);
        t.equal(kept.code, 0, kept.stderr);
        t.match(kept.stderr, /authorized_keys STILL ACCEPTED \(--keep-authorized-keys/);
        const stopKept = await startLoggingSshd(t, root);
        t.equal(await sshLogin(root.port, keys.user, keys.key, '/dev/null'), 0, 'with --keep-authorized-keys the authorized_keys key logs in');
        await stopKept();
        t.equal((await bootstrap(install)).code, 0, 'running it again without the flag ends the window');
        t.equal((await effectiveConfig(root.sshdConfig, keys.user)).get('authorizedkeysfile'), 'none');
      }
    });
  }
});

// The reload: which unit each distribution has, and never before sshd -t has
// accepted the configuration. --root never reloads (a staged image's sshd is
// not this machine's); SSHCA_BOOTSTRAP_TEST_RELOAD=1 lets a test run the
// reload against a fake systemctl that logs what it is asked.
t.test('sshd is reloaded through its own unit, only after sshd -t accepted the configuration', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = fingerprintOf(parsePublicKeyLine((await (await fetch(`${dev.url}/v1/ca/user.pub`)).text()).trim()).blob);
  const env = { SSHCA_BOOTSTRAP_TEST_RELOAD: '1' };
  const installOn = (root: string, ...extra: string[]) => ['--server', dev.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', root, ...extra];
  const reloads = (calls: string[]) => calls.filter((c) => c.startsWith('systemctl reload'));

  for (const [kind, units, unit] of [
    // Debian/Ubuntu: ssh.service, with sshd.service as an alias; ssh is the one to reload.
    ['debian-cloud-init', ['ssh', 'sshd'], 'ssh.service'],
    // Amazon Linux 2023: only sshd.service.
    ['al2023', ['sshd'], 'sshd.service'],
  ] as const) {
    await t.test(kind, async (t) => {
      const root = await prepareDistroRoot(t, kind);
      const { binDir, calls } = fakeTools(t, { units });
      const r = await bootstrap(installOn(root.root), { binDir, env });
      t.equal(r.code, 0, r.stderr);
      t.same(reloads(calls()), [`systemctl reload ${unit}`], `systemctl reload ${unit}, once`);
      const checked = calls().findIndex((c) => /^sshd -t .* \[exit 0\]$/.test(c));
      t.ok(checked >= 0 && checked < calls().indexOf(`systemctl reload ${unit}`), 'after sshd -t accepted the configuration');
      // Nothing changed: no reload. (The trust files sshd reads at every login never need one.)
      t.equal((await bootstrap(installOn(root.root), { binDir, env })).code, 0);
      t.equal(reloads(calls()).length, 1, 'a run that changes nothing does not reload');
      // Without the test variable, --root never reaches systemctl.
      t.equal((await bootstrap(installOn(root.root, '--max-auth-tries', '5'))).code, 0);
      t.equal(reloads(calls()).length, 1, 'a plain --root run does not reload');
    });
  }

  await t.test('a unit that is not running is left alone', async (t) => {
    const root = await prepareDistroRoot(t, 'debian-cloud-init');
    const { binDir, calls } = fakeTools(t, { units: ['ssh', 'sshd'], active: false });
    const r = await bootstrap(installOn(root.root), { binDir, env });
    t.equal(r.code, 0, r.stderr);
    t.same(reloads(calls()), []);
    t.ok(calls().includes('systemctl is-active --quiet ssh.service'), 'it asked');
  });

  await t.test('sshd -t refuses the configuration: no reload at all', async (t) => {
    const root = await prepareDistroRoot(t, 'debian-cloud-init');
    writeFileSync(root.sshdConfig, `${readFileSync(root.sshdConfig, 'utf8')}\nThisIsNotADirective yes\n`);
    const { binDir, calls } = fakeTools(t, { units: ['ssh', 'sshd'] });
    const r = await bootstrap(installOn(root.root), { binDir, env });
    t.equal(r.code, 1);
    t.ok(calls().some((c) => /^sshd -t .* \[exit [1-9]\d*\]$/.test(c)), 'sshd -t refused it');
    t.same(calls().filter((c) => c.startsWith('systemctl')), [], 'systemctl was never called');
  });
});

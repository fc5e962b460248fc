// A CA rotation end to end, followed by an instance that was pinned once:
// publish the next key, promote it, retire the old one, and watch the old
// one drop out after the last certificate it signed has expired.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount } from '../../scripts/throwaway-sshd.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { ShiftableClock } from '../fixtures/dev-server.js';
import { bootstrap, prepareInstanceRoot, sshLogin, startInstanceSshd } from '../fixtures/instance.js';
import { generateUserKey, needsOpenSsh } from '../fixtures/openssh.js';
import { startHarness } from '../fixtures/sts-verifier-harness.js';
import { listenOnLoopback, startTestApp } from '../fixtures/test-app.js';

t.test('rotation: next published, promoted, old retired then dropped', needsOpenSsh, async (t) => {
  const account = ensureLoginAccount('sshcatest');
  const dir = t.testdir();
  const harness = await startHarness(t);
  const oldKey = LocalSigner.openOrCreate(join(dir, 'old.pem'), 'ed25519');
  const newKey = LocalSigner.openOrCreate(join(dir, 'new.pem'), 'ecdsa-p256');
  const audit = new SqliteAuditLog(join(dir, 'audit.db'), CheckpointSigner.openOrCreate(join(dir, 'cp.pem')));
  t.teardown(() => audit.close());
  const clock = new ShiftableClock();
  const user = generateUserKey(dir, 'ed25519', 'user');
  const certFile = (name: string, line: string) => {
    const path = join(dir, `${name}-cert.pub`);
    writeFileSync(path, `${line}\n`);
    return path;
  };

  // Phase 1: old key signs, new key published as "next".
  const phase1 = await startTestApp(t, harness, oldKey, { audit, userCaNext: newKey.publicKey(), clock });
  const url1 = await listenOnLoopback(phase1.app);
  const instance = await prepareInstanceRoot(t);
  const principal = 'alice'; // the fixture's IAM user
  const installed = await bootstrap(['--server', url1, '--ca-fingerprint', fingerprintOf(oldKey.publicKey().blob), '--allow', `${account}=${principal}`, '--root', instance.root]);
  t.equal(installed.code, 0, installed.stderr);
  const trusted = () => readFileSync(join(instance.etc, 'sshca', 'trusted_user_ca_keys'), 'utf8');
  t.equal(trusted().trim().split('\n').length, 2, 'the instance trusts old and next');
  await startInstanceSshd(t, instance);
  const issue = async (app: typeof phase1) => JSON.parse((await app.requestCertificate({ publicKey: user.line })).body).certificate as string;
  const fromOld = certFile('from-old', await issue(phase1));
  t.equal(await sshLogin(instance.port, account, user.path, fromOld), 0, 'a certificate from the old key logs in');

  // Phase 2: promote; the old key is retired (still published: its certificates are valid).
  const phase2 = await startTestApp(t, harness, newKey, { audit, userCaRetired: [oldKey.publicKey()], clock });
  const url2 = await listenOnLoopback(phase2.app);
  const refreshed = await bootstrap(['--refresh', '--server', url2, '--root', instance.root]);
  t.equal(refreshed.code, 0, `the list signed by the new key is accepted: it was trusted as "next" (${refreshed.stderr})`);
  const fromNew = certFile('from-new', await issue(phase2));
  t.equal(await sshLogin(instance.port, account, user.path, fromNew), 0, 'a certificate from the new key logs in');
  t.equal(await sshLogin(instance.port, account, user.path, fromOld), 0, 'and the old one still does until it expires');
  t.match(trusted(), /sshca-user-ca-retired/);

  // Phase 3: every certificate of the old key has expired: it drops out.
  clock.offsetMs = 9 * 3600_000;
  t.equal((await bootstrap(['--refresh', '--server', url2, '--root', instance.root], { nowMs: clock.now().getTime() })).code, 0);
  t.equal(trusted().trim().split('\n').length, 1, 'only the new key remains');
  t.equal(parsePublicKeyLine(trusted().trim()).type, 'ecdsa-sha2-nistp256');
  // A fresh certificate from the old key (someone still holding it) is refused now.
  const now = Math.floor(Date.now() / 1000);
  const serial = randomSerial();
  const late = await new CertificateAuthority({ signer: oldKey }).issue({ kind: 'user', publicKey: parsePublicKeyLine(user.line), serial, keyId: keyIdFor('late', serial), principals: [principal], validAfter: now - 60, validBefore: now + 600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  t.not(await sshLogin(instance.port, account, user.path, certFile('late-old', late.line)), 0, 'the dropped key is no longer trusted');
});

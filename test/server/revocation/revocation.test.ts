// Revocation end to end: `sshca revoke` (admin), the KRL at GET /v1/krl,
// and a real sshd reading it as RevokedKeys.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { importCheckpointKey, verifyChain } from '../../../protocol/audit-chain.js';
import { ensureLoginAccount, startThrowawaySshd } from '../../../scripts/throwaway-sshd.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { devLoginEnv, errorCodeOf, runCli } from '../../fixtures/cli.js';
import { ShiftableClock, startDevServer, type DevServer } from '../../fixtures/dev-server.js';
import { keygenRevoked, needsOpenSsh } from '../../fixtures/openssh.js';

async function fetchKrl(dev: DevServer, path: string): Promise<{ version: string; etag: string }> {
  const res = await fetch(`${dev.url}/v1/krl`);
  writeFileSync(path, Buffer.from(await res.arrayBuffer()));
  return { version: res.headers.get('x-sshca-krl-version')!, etag: res.headers.get('etag')! };
}


t.test('revoke by serial, key id and public key; sshd refuses exactly those', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const clock = new ShiftableClock();
  const dev = await startDevServer(t, { devUser: user, clock });
  const dir = t.testdir();
  const cli = (home: string, args: string[]) => runCli([...args, '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, join(dir, home)));
  // Four engineers' worth of keys and certificates.
  const certs: Record<string, { key: string; serial: string; keyId: string }> = {};
  for (const who of ['a', 'b', 'c', 'd']) {
    const r = await cli(who, ['login', '--json']);
    t.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    certs[who] = { key: j.privateKeyPath, serial: j.serial, keyId: j.keyId };
  }
  const krl = join(dir, 'revoked.krl');
  const empty = await fetchKrl(dev, krl);
  t.equal(empty.version, '0', 'nothing revoked yet: version 0');
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), await (await fetch(`${dev.url}/v1/ca/user.pub`)).text(), { revokedKeys: krl });
  t.teardown(() => sshd.stop());
  const ssh = (who: string) => sshd.ssh({ user, key: certs[who]!.key, certificate: `${certs[who]!.key}-cert.pub`, command: 'echo in' }).status;
  for (const who of ['a', 'b', 'c', 'd']) t.equal(ssh(who), 0, `${who} logs in before any revocation`);

  t.equal((await cli('a', ['revoke', '--serial', certs.a!.serial, '--reason', 'laptop stolen'])).code, 0);
  t.equal((await cli('a', ['revoke', '--key-id', certs.b!.keyId, '--reason', 'left the company'])).code, 0);
  t.equal((await cli('a', ['revoke', '--public-key', `${certs.c!.key}.pub`, '--reason', 'key leaked'])).code, 0);
  const after = await fetchKrl(dev, krl);
  t.ok(BigInt(after.version) > 0n, `version rose to ${after.version}`);
  t.not(after.etag, empty.etag);
  for (const [who, expected] of [['a', true], ['b', true], ['c', true], ['d', false]] as const) {
    t.equal(keygenRevoked(krl, `${certs[who]!.key}-cert.pub`), expected, `ssh-keygen -Q: ${who} ${expected ? 'revoked' : 'fine'}`);
    t.equal(ssh(who) === 0, !expected, `sshd: ${who} ${expected ? 'refused' : 'still logs in'}`);
  }
  t.equal((await fetch(`${dev.url}/v1/krl`, { headers: { 'if-none-match': after.etag } })).status, 304, 'unchanged KRL: 304');
  // Item 11: the public KRL names certificates by serial, even the one revoked by key id: no ARNs published.
  const published = execFileSync('ssh-keygen', ['-Q', '-l', '-f', krl], { encoding: 'utf8' });
  t.notMatch(published, /arn:|id: /, 'no key ids (and so no caller ARNs) in the KRL');
  t.match(published, new RegExp(certs.b!.serial), 'the key-id revocation is listed by its serial');

  const unknown = await cli('a', ['revoke', '--serial', '12345', '--reason', 'typo']);
  t.equal(unknown.code, 3);
  t.equal(errorCodeOf(unknown.stderr), 'REQUEST_UNKNOWN_CERTIFICATE');
  t.equal(errorCodeOf((await cli('a', ['revoke', '--serial', '1', '--key-id', 'x', '--reason', 'r'])).stderr), 'CLIENT_USAGE');

  // The revocations are on the (verifiable) audit record.
  const store = new SqliteAuditLog(join(dev.dataDir, 'audit.db'), CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem')));
  t.teardown(() => store.close());
  const revoked = (await store.query({ kind: 'revoked' }, { limit: 10 })).records.map((r) => r.data);
  t.same(revoked.map((d) => d.reason), ['key leaked', 'left the company', 'laptop stolen']);
  t.match((await cli('a', ['audit', 'list', '--kind', 'revoked'])).stdout, new RegExp(`revoked +\\S+ serial ${certs.a!.serial}: laptop stolen`), 'audit list shows what was revoked and why');
  t.equal((await verifyChain(store.exportRecords(), await importCheckpointKey({ ...CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem')).jwk }))).ok, true);

  // Once the revoked certificates have expired they leave the KRL, and the version still rises.
  clock.offsetMs = 13 * 3600_000;
  const later = await fetchKrl(dev, join(dir, 'later.krl'));
  t.ok(BigInt(later.version) > BigInt(after.version), `version ${later.version} > ${after.version}`);
  const listing = execFileSync('ssh-keygen', ['-Q', '-l', '-f', join(dir, 'later.krl')], { encoding: 'utf8' });
  t.notMatch(listing, new RegExp(certs.a!.serial), 'expired serial dropped');
  t.notMatch(listing, /id: /, 'expired key id dropped');
  t.equal(keygenRevoked(join(dir, 'later.krl'), `${certs.c!.key}-cert.pub`), true, 'a revoked key stays revoked');
});

t.test('only admins revoke', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'pat' });
  writeFileSync(join(dev.dataDir, 'policy.yaml'), "accounts: ['000000000000']\nrules:\n  - name: users\n    match: { iamUser: 'arn:aws:iam::000000000000:user/pat' }\n    principals: ['{{user}}']\n    roles: [auditor]\n");
  t.equal(dev.server.reloadPolicy().ok, true);
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const login = JSON.parse((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--json'], env)).stdout);
  const r = await runCli(['revoke', '--serial', login.serial, '--reason', 'x', '--server', dev.url, '--profile', 'sshca-dev'], env);
  t.equal(r.code, 3);
  t.equal(errorCodeOf(r.stderr), 'POLICY_ROLE_REQUIRED');
});

t.test('a withdrawn revocation restores the login; the KRL version still rises', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: user });
  const dir = t.testdir();
  const cli = (args: string[]) => runCli([...args, '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, join(dir, 'home')));
  const login = JSON.parse((await cli(['login', '--json', '--no-agent'])).stdout) as { serial: string; privateKeyPath: string };
  const krl = join(dir, 'revoked.krl');
  await fetchKrl(dev, krl);
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), await (await fetch(`${dev.url}/v1/ca/user.pub`)).text(), { revokedKeys: krl });
  t.teardown(() => sshd.stop());
  const ssh = () => sshd.ssh({ user, key: login.privateKeyPath, certificate: `${login.privateKeyPath}-cert.pub`, command: 'echo in' }).status;
  t.equal(ssh(), 0, 'logs in');

  const revoked = await cli(['revoke', '--serial', login.serial, '--reason', 'wrong person', '--json']);
  t.equal(revoked.code, 0, revoked.stderr);
  const { id } = JSON.parse(revoked.stdout) as { id: string };
  const afterRevoke = await fetchKrl(dev, krl);
  t.not(ssh(), 0, 'refused once revoked');

  const withdrawn = await cli(['revoke', '--withdraw', id, '--reason', 'it was the right person after all', '--json']);
  t.equal(withdrawn.code, 0, withdrawn.stderr);
  t.equal((JSON.parse(withdrawn.stdout) as { withdrawn: string }).withdrawn, id);
  const afterWithdraw = await fetchKrl(dev, krl);
  t.ok(BigInt(afterWithdraw.version) > BigInt(afterRevoke.version), `version ${afterWithdraw.version} > ${afterRevoke.version}`);
  t.equal(keygenRevoked(krl, `${login.privateKeyPath}-cert.pub`), false, 'ssh-keygen -Q: no longer revoked');
  t.equal(ssh(), 0, 'sshd lets the certificate in again');

  // Withdrawing twice, or something that is not a revocation, is refused with its own code.
  t.equal(errorCodeOf((await cli(['revoke', '--withdraw', id, '--reason', 'again'])).stderr), 'REQUEST_ALREADY_WITHDRAWN');
  t.equal(errorCodeOf((await cli(['revoke', '--withdraw', '1', '--reason', 'not a revocation'])).stderr), 'REQUEST_UNKNOWN_REVOCATION');
  // Both records stay on the chain.
  const store = new SqliteAuditLog(join(dev.dataDir, 'audit.db'), CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem')));
  t.teardown(() => store.close());
  t.same((await store.revocationRecords()).map((r) => r.kind), ['revoked', 'withdrawn']);
});

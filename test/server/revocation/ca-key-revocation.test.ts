// Issue 10 item 3 / rule 18: no request can revoke a CA key the server
// publishes (user or host; active, next or retired), and the KRL never
// lists one even if an old record names it.
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, toOpenSshLine, type SshPublicKey } from '../../../protocol/ssh-public-key.js';
import { LocalSigner } from '../../../server/ca/local-signer.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';
import { buildKrl } from '../../../server/revocation/krl-builder.js';
import { ACCOUNT } from '../../fixtures/sts-fixture.js';
import { craftToken, startHarness } from '../../fixtures/sts-verifier-harness.js';
import { startTestApp } from '../../fixtures/test-app.js';

t.test('revoking any published CA key is refused with its own code', async (t) => {
  const dir = t.testdir();
  const key = (name: string) => LocalSigner.openOrCreate(join(dir, `${name}.pem`), 'ed25519');
  const userSigner = key('user');
  const hostSigner = key('host');
  const published: Record<string, SshPublicKey> = {
    'user CA (active)': userSigner.publicKey(),
    'user CA (next)': key('user-next').publicKey(),
    'user CA (retired)': key('user-retired').publicKey(),
    'host CA (active)': hostSigner.publicKey(),
    'host CA (next)': key('host-next').publicKey(),
    'host CA (retired)': key('host-retired').publicKey(),
  };
  const harness = await startHarness(t);
  const admin = harness.sts.principals.user;
  const policy = new FilePolicy(parsePolicyFile(`accounts: ['${ACCOUNT}']\nrules:\n  - name: admins\n    match: { iamUser: '${admin.arn}' }\n    principals: ['{{user}}']\n    roles: [admin]\n`, 'test-policy.yaml'));
  const app = await startTestApp(t, harness, userSigner, {
    policy,
    userCaNext: published['user CA (next)']!,
    userCaRetired: [published['user CA (retired)']!],
    hostSigner,
    hostCaNext: published['host CA (next)']!,
    hostCaRetired: [published['host CA (retired)']!],
  });
  let n = 0;
  const revoke = async (publicKey: string) => {
    const body = JSON.stringify({ publicKey, reason: `attempt ${n++}` });
    const token = await craftToken(harness.sts, admin, { boundBody: body, boundPath: '/v1/revocations' });
    const res = await app.app.inject({ method: 'POST', url: '/v1/revocations', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}` }, payload: body });
    return { status: res.statusCode, code: (res.json() as { code?: string }).code };
  };
  for (const [name, k] of Object.entries(published)) {
    t.same(await revoke(toOpenSshLine(k, 'with a comment')), { status: 409, code: 'REQUEST_CA_KEY_NOT_REVOCABLE' }, `${name}: refused`);
  }
  const krl = await app.app.inject({ method: 'GET', url: '/v1/krl' });
  t.equal(krl.headers['x-sshca-krl-version'], '0', 'nothing was revoked');
  // Control: an ordinary key is revocable by the same admin.
  const ordinary = key('ordinary').publicKey();
  t.equal((await revoke(toOpenSshLine(ordinary))).status, 201, 'an ordinary key is revocable');
  // Every refusal is on the record, with the admin named.
  const refused = (await app.audit.query({ kind: 'refused' }, { limit: 10 })).records.map((r) => r.data);
  t.equal(refused.length, 6);
  t.ok(refused.every((d) => d.code === 'REQUEST_CA_KEY_NOT_REVOCABLE' && d.callerArn === admin.arn));
});

t.test('the KRL never lists a published CA key, even from an old record', async (t) => {
  const dir = t.testdir();
  const ca = LocalSigner.openOrCreate(join(dir, 'ca.pem'), 'ed25519').publicKey();
  const other = LocalSigner.openOrCreate(join(dir, 'other.pem'), 'ed25519').publicKey();
  const record = (seq: number, k: SshPublicKey) => ({ seq, at: new Date().toISOString(), kind: 'revoked', data: { publicKeyFingerprint: fingerprintOf(k.blob), revokedBy: 'publicKey' }, prevHash: '', hash: '', checkpoint: '' });
  const krl = buildKrl([record(1, ca), record(2, other)], new Map([[fingerprintOf(ca.blob), ca.blob]]), Math.floor(Date.now() / 1000));
  const hash = (k: SshPublicKey) => Buffer.from(fingerprintOf(k.blob).slice(7), 'base64');
  t.notOk(krl.bytes.includes(hash(ca)), 'the CA key is not in the KRL');
  t.ok(krl.bytes.includes(hash(other)), 'the other key is');
});

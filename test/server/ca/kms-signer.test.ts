// KmsSigner through the real KMSClient to a KMS-compatible fixture that
// holds real keys and checks SigV4: every key spec judged by OpenSSH, the
// RAW size limit at its exact boundary, and every fault failing closed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePublicKeyLine } from '../../../protocol/ssh-public-key.js';
import { SshReader } from '../../../protocol/ssh-wire.js';
import { ensureLoginAccount, startThrowawaySshd } from '../../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../../server/ca/certificate-template.js';
import { KMS_RAW_MESSAGE_LIMIT, KMS_KEY_SPECS, KmsSigner } from '../../../server/ca/kms-signer.js';
import { verifySshSignature } from '../../../server/ca/ssh-signature.js';
import { startKmsFixture } from '../../fixtures/kms-fixture.js';
import { generateUserKey, keygenList, needsOpenSsh } from '../../fixtures/openssh.js';
import { startHarness } from '../../fixtures/sts-verifier-harness.js';
import { startTestApp } from '../../fixtures/test-app.js';

const now = () => Math.floor(Date.now() / 1000);

t.test('every KMS key spec: ssh-keygen -L accepts the certificate and a real sshd logs in with it', needsOpenSsh, async (t) => {
  const kms = await startKmsFixture(t);
  const client = kms.client();
  const dir = t.testdir();
  const user = ensureLoginAccount('sshcatest');
  const key = generateUserKey(dir, 'ed25519', 'user');
  const signers = [];
  for (const spec of Object.keys(KMS_KEY_SPECS)) signers.push(await KmsSigner.open({ kms: client, keyRef: kms.createKey(spec) }));
  const trusted = signers.map((s) => `${s.publicKey().type} ${s.publicKey().blob.toString('base64')}`).join('\n');
  const sshd = await startThrowawaySshd(join(dir, 'sshd'), `${trusted}\n`);
  t.teardown(() => sshd.stop());
  for (const signer of signers) {
    const serial = randomSerial();
    const issued = await new CertificateAuthority({ signer }).issue({
      kind: 'user', publicKey: parsePublicKeyLine(key.line), serial, keyId: keyIdFor('arn:aws:iam::111111111111:user/alice', serial),
      principals: [user], validAfter: now() - 300, validBefore: now() + 3600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS,
    });
    const certPath = `${key.path}-cert.pub`;
    writeFileSync(certPath, `${issued.line}\n`);
    const listing = keygenList(certPath);
    t.equal(listing.serial, serial.toString(), `${signer.keySpec}: ssh-keygen -L accepts it`);
    t.match(listing.signingCa, new RegExp(`using ${signer.algorithm}\\)$`), `${signer.keySpec}: signed with ${signer.algorithm}`);
    const login = sshd.ssh({ user, key: key.path, certificate: certPath, command: 'echo ok' });
    t.equal(login.status, 0, `${signer.keySpec}: sshd accepts the login ${login.stderr}`);
  }
  t.equal(kms.counts.getPublicKey, signers.length, 'GetPublicKey once per key (its quota is tiny)');
});

t.test('hundreds of P-256 and P-521 signatures all verify, padding and short r/s included', async (t) => {
  const kms = await startKmsFixture(t);
  const client = kms.client();
  for (const spec of ['ECC_NIST_P256', 'ECC_NIST_P521']) {
    const signer = await KmsSigner.open({ kms: client, keyRef: kms.createKey(spec) });
    const width = spec === 'ECC_NIST_P256' ? 32 : 66;
    let verified = 0;
    let padded = 0;
    let short = 0;
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`tbs ${spec} ${i}`);
      const blob = await signer.sign(data);
      if (verifySshSignature(signer.publicKey(), signer.algorithm, data, blob)) verified++;
      const outer = new SshReader(blob);
      outer.text();
      const inner = new SshReader(outer.string());
      for (const mpint of [inner.string(), inner.string()]) {
        if (mpint[0] === 0) padded++;
        if ((mpint[0] === 0 ? mpint.length - 1 : mpint.length) < width) short++;
      }
    }
    t.equal(verified, 300, `${spec}: 300 of 300 verify`);
    t.ok(padded > 0, `${spec}: ${padded} r/s values needed a 0x00 pad`);
    t.comment(`${spec}: ${short} r/s values shorter than the curve width`);
    if (spec === 'ECC_NIST_P521') t.ok(short > 0, 'P-521: short r/s values occurred (about half of them are)');
  }
});

t.test('Ed25519 RAW limit: 4096 bytes sign, 4097 are refused before KMS', async (t) => {
  const kms = await startKmsFixture(t);
  const signer = await KmsSigner.open({ kms: kms.client(), keyRef: kms.createKey('ECC_NIST_EDWARDS25519') });
  const atLimit = Buffer.alloc(KMS_RAW_MESSAGE_LIMIT, 7);
  t.ok(verifySshSignature(signer.publicKey(), 'ssh-ed25519', atLimit, await signer.sign(atLimit)), '4096 bytes: signed and verified');
  const before = kms.counts.sign;
  await t.rejects(signer.sign(Buffer.alloc(KMS_RAW_MESSAGE_LIMIT + 1)), { code: 'REQUEST_CERTIFICATE_TOO_LARGE', status: 400 });
  t.equal(kms.counts.sign, before, 'KMS was not called');
});

t.test('key checks at start-up', async (t) => {
  const kms = await startKmsFixture(t);
  const client = kms.client();
  const disabled = kms.createKey('ECC_NIST_P256');
  kms.setState(disabled, 'Disabled');
  const cases: Array<[string, Parameters<typeof KmsSigner.open>[0], string]> = [
    ['disabled key', { kms: client, keyRef: disabled }, 'UNAVAILABLE_KMS_KEY_DISABLED'],
    ['encryption key', { kms: client, keyRef: kms.createKey('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT') }, 'UNAVAILABLE_KMS_KEY_USAGE'],
    ['spec other than expected', { kms: client, keyRef: kms.createKey('ECC_NIST_P256'), expectedSpec: 'ECC_NIST_EDWARDS25519' }, 'UNAVAILABLE_KMS_KEY_SPEC'],
    ['unsupported spec', { kms: client, keyRef: kms.createKey('ECC_SECG_P256K1') }, 'UNAVAILABLE_KMS_KEY_SPEC'],
    ['missing key', { kms: client, keyRef: `arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000` }, 'UNAVAILABLE_KMS_KEY_NOT_FOUND'],
  ];
  for (const [name, deps, code] of cases) await t.rejects(KmsSigner.open(deps), { code }, name);
});

t.test('an alias is resolved once and pinned to its key ARN', async (t) => {
  const kms = await startKmsFixture(t);
  const client = kms.client();
  const first = kms.createKey('ECC_NIST_EDWARDS25519');
  const { CreateAliasCommand } = await import('@aws-sdk/client-kms');
  await client.send(new CreateAliasCommand({ AliasName: 'alias/sshca-user-ca', TargetKeyId: first }));
  const signer = await KmsSigner.open({ kms: client, keyRef: 'alias/sshca-user-ca' });
  t.equal(signer.keyArn, first);
});

t.test('every KMS fault yields its documented 503 and no certificate', async (t) => {
  const kms = await startKmsFixture(t);
  const harness = await startHarness(t);
  const keyArn = kms.createKey('ECC_NIST_P256');
  const signer = await KmsSigner.open({ kms: kms.client({ maxAttempts: 2, requestTimeoutMs: 500 }), keyRef: keyArn });
  const { requestCertificate, audit } = await startTestApp(t, harness, signer);
  t.equal((await requestCertificate()).statusCode, 201, 'control: a certificate is issued without faults');
  // Throttling last: the SDK's adaptive retry mode then slows this client down, by design.
  const faults: Array<[NonNullable<typeof kms.fault>, string]> = [
    ['internal-error', 'UNAVAILABLE_KMS'],
    ['slow', 'UNAVAILABLE_KMS'],
    ['access-denied', 'UNAVAILABLE_KMS_ACCESS_DENIED'],
    ['other-key-id', 'UNAVAILABLE_KMS_RESPONSE'],
    ['other-algorithm', 'UNAVAILABLE_KMS_RESPONSE'],
    ['garbage-signature', 'UNAVAILABLE_KMS_RESPONSE'],
    ['throttle', 'UNAVAILABLE_KMS_THROTTLED'],
  ];
  for (const [fault, code] of faults) {
    kms.fault = fault;
    const res = await requestCertificate();
    t.equal(res.statusCode, 503, `${fault}: 503`);
    t.equal(res.json().code, code, `${fault}: ${code}`);
    t.ok(res.headers['retry-after'], `${fault}: Retry-After`);
    if (fault === 'throttle') t.equal(res.headers['retry-after'], '1', 'throttling: retry after a second');
    t.notOk('certificate' in res.json(), `${fault}: no certificate`);
    t.notMatch(res.body, /arn:aws:kms/, `${fault}: the key ARN stays in the log`);
  }
  kms.fault = null;
  kms.setState(keyArn, 'Disabled');
  const disabled = await requestCertificate();
  t.equal(disabled.json().code, 'UNAVAILABLE_KMS_KEY_DISABLED', 'disabled after start-up');
  kms.setState(keyArn, 'PendingDeletion');
  t.equal((await requestCertificate()).json().code, 'UNAVAILABLE_KMS_KEY_DISABLED', 'pending deletion');
  const issued = (await audit.query({ kind: 'issued' }, { limit: 100 })).records;
  t.equal(issued.length, 1, 'only the control certificate was ever recorded as issued');
});

// The built server in production mode with its CA keys in KMS: only the KMS
// endpoint differs from a real deployment (SSHCA_KMS_ENDPOINT).
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { KmsSigner } from '../../server/ca/kms-signer.js';
import { toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { startKmsFixture } from '../fixtures/kms-fixture.js';
import { spawnServer } from '../fixtures/server-process.js';

/** A checkpoint key file in `dir`. */
function checkpointKey(dir: string): string {
  const path = join(dir, 'checkpoint.pem');
  writeFileSync(path, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return path;
}

/** A minimal policy file in `dir`. */
function policy(dir: string): string {
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, "accounts: ['111111111111']\nrules:\n  - name: users\n    match: { account: '111111111111' }\n    principals: ['{{user}}']\n");
  return path;
}

t.test('sshca-server --user-ca kms:<arn> --host-ca kms:<arn>', async (t) => {
  const kms = await startKmsFixture(t);
  const userArn = kms.createKey('ECC_NIST_EDWARDS25519');
  const hostArn = kms.createKey('ECC_NIST_P384');
  const hostNextArn = kms.createKey('ECC_NIST_EDWARDS25519');
  const dir = t.testdir();
  const env = {
    SSHCA_AUDIENCE: 'https://sshca.test.example', SSHCA_STS_ENDPOINTS: 'https://sts.eu-west-1.amazonaws.com/', SSHCA_POLICY: policy(dir), SSHCA_CHECKPOINT_KEY: checkpointKey(dir),
    SSHCA_AUDIT_DB: join(dir, 'audit.db'), SSHCA_PORT: '0', SSHCA_LOG_LEVEL: 'silent', SSHCA_KMS_ENDPOINT: kms.url,
    AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey,
  };
  const server = await spawnServer(t, ['--user-ca', `kms:${userArn}`, '--host-ca', `kms:${hostArn}`, '--host-ca-next', `kms:${hostNextArn}`], env);
  t.ok(server.url, `the server started: ${server.stderr()}`);
  const expectUser = await KmsSigner.open({ kms: kms.client(), keyRef: userArn });
  const expectHost = await KmsSigner.open({ kms: kms.client(), keyRef: hostArn });
  t.equal((await (await fetch(`${server.url}/v1/ca/user.pub`)).text()).trim(), toOpenSshLine(expectUser.publicKey(), 'sshca-user-ca'), 'user CA is the KMS key');
  const expectHostNext = await KmsSigner.open({ kms: kms.client(), keyRef: hostNextArn });
  t.equal(
    (await (await fetch(`${server.url}/v1/ca/host.pub`)).text()).trim(),
    `${toOpenSshLine(expectHost.publicKey(), 'sshca-host-ca')}\n${toOpenSshLine(expectHostNext.publicKey(), 'sshca-host-ca-next')}`,
    'host CA list: the active KMS key, then the next one',
  );
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready: both keys answer');
});

t.test('SSHCA_CHECKPOINT_KEY=kms:<arn>: no exportable secret on the server; the published checkpoint key is the KMS key', async (t) => {
  const kms = await startKmsFixture(t);
  const userArn = kms.createKey('ECC_NIST_EDWARDS25519');
  const checkpointArn = kms.createKey('ECC_NIST_P256');
  const dir = t.testdir();
  const server = await spawnServer(t, ['--user-ca', `kms:${userArn}`], {
    SSHCA_AUDIENCE: 'https://sshca.test.example', SSHCA_STS_ENDPOINTS: 'https://sts.eu-west-1.amazonaws.com/', SSHCA_POLICY: policy(dir), SSHCA_CHECKPOINT_KEY: `kms:${checkpointArn}`,
    SSHCA_AUDIT_DB: join(dir, 'audit.db'), SSHCA_PORT: '0', SSHCA_LOG_LEVEL: 'silent', SSHCA_KMS_ENDPOINT: kms.url,
    AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey,
  });
  t.ok(server.url, `the server started: ${server.stderr()}`);
  const jwk = (await (await fetch(`${server.url}/v1/audit/checkpoint-key`)).json()) as { kty: string; crv: string; alg: string; x: string; y: string };
  const expected = (await KmsSigner.open({ kms: kms.client(), keyRef: checkpointArn })).publicKey().keyObject.export({ format: 'jwk' });
  t.match(jwk, { kty: 'EC', crv: 'P-256', alg: 'ES256', x: expected.x, y: expected.y }, 'the KMS key, as an ES256 JWK');
  // An unauthenticated request is refused, and its refusal summary is signed through KMS when the server stops.
  t.equal((await fetch(`${server.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"publicKey":"x"}' })).status, 401);
  const signs = kms.counts.sign;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
  t.ok(kms.counts.sign > signs, 'the summary record was checkpointed by kms:Sign');
});

t.test('a disabled KMS key stops the server at start-up with the key named', async (t) => {
  const kms = await startKmsFixture(t);
  const arn = kms.createKey('ECC_NIST_P256');
  kms.setState(arn, 'Disabled');
  const dir = t.testdir();
  const server = await spawnServer(t, ['--user-ca', `kms:${arn}`], {
    SSHCA_AUDIENCE: 'https://sshca.test.example', SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com/', SSHCA_POLICY: policy(dir), SSHCA_CHECKPOINT_KEY: checkpointKey(dir), SSHCA_AUDIT_DB: join(dir, 'a.db'), SSHCA_PORT: '0',
    SSHCA_KMS_ENDPOINT: kms.url, AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true',
  });
  t.equal(server.exitCode, 1);
  t.match(server.stderr(), arn, 'the message names the key ARN');
  t.notMatch(server.stderr(), /listening/);
});

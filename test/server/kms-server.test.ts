// The built server in production mode with its CA keys in KMS: only the KMS
// endpoint differs from a real deployment (SSHCA_KMS_ENDPOINT).
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { KmsSigner } from '../../server/ca/kms-signer.js';
import { toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { startKmsFixture } from '../fixtures/kms-fixture.js';

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

const SERVER = join(import.meta.dirname, '..', '..', 'dist', 'server', 'bin', 'sshca-server.js');

async function runServer(t: Test, args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = await new Promise<{ url?: string; code?: number | null }>((resolve) => {
    child.stderr.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve({ url: m[1]! });
    });
    child.on('exit', (code) => resolve({ code }));
  });
  return { ...result, stderr: () => stderr };
}

t.test('sshca-server --user-ca kms:<arn> --host-ca kms:<arn>', async (t) => {
  const kms = await startKmsFixture(t);
  const userArn = kms.createKey('ECC_NIST_EDWARDS25519');
  const hostArn = kms.createKey('ECC_NIST_P384');
  const dir = t.testdir();
  const env = {
    SSHCA_AUDIENCE: 'https://sshca.test.example', SSHCA_STS_ENDPOINTS: 'https://sts.eu-west-1.amazonaws.com/', SSHCA_POLICY: policy(dir), SSHCA_CHECKPOINT_KEY: checkpointKey(dir),
    SSHCA_AUDIT_DB: join(dir, 'audit.db'), SSHCA_PORT: '0', SSHCA_LOG_LEVEL: 'silent', SSHCA_KMS_ENDPOINT: kms.url,
    AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true',
  };
  const server = await runServer(t, ['--user-ca', `kms:${userArn}`, '--host-ca', `kms:${hostArn}`], env);
  t.ok(server.url, `the server started: ${server.stderr()}`);
  const expectUser = await KmsSigner.open({ kms: kms.client(), keyRef: userArn });
  const expectHost = await KmsSigner.open({ kms: kms.client(), keyRef: hostArn });
  t.equal((await (await fetch(`${server.url}/v1/ca/user.pub`)).text()).trim(), toOpenSshLine(expectUser.publicKey(), 'sshca-user-ca'), 'user CA is the KMS key');
  t.equal((await (await fetch(`${server.url}/v1/ca/host.pub`)).text()).trim(), toOpenSshLine(expectHost.publicKey(), 'sshca-host-ca'), 'host CA is the KMS key');
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'ready: both keys answer');
});

t.test('a disabled KMS key stops the server at start-up with the key named', async (t) => {
  const kms = await startKmsFixture(t);
  const arn = kms.createKey('ECC_NIST_P256');
  kms.setState(arn, 'Disabled');
  const dir = t.testdir();
  const server = await runServer(t, ['--user-ca', `kms:${arn}`], {
    SSHCA_AUDIENCE: 'a', SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com/', SSHCA_POLICY: policy(dir), SSHCA_CHECKPOINT_KEY: checkpointKey(dir), SSHCA_AUDIT_DB: join(dir, 'a.db'), SSHCA_PORT: '0',
    SSHCA_KMS_ENDPOINT: kms.url, AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true',
  });
  t.equal(server.code, 1);
  t.match(server.stderr(), arn, 'the message names the key ARN');
  t.notMatch(server.stderr(), /listening/);
});

// sshca-setup as an operator runs it: the built command, real KMSClient,
// the KMS fixture as the only thing that differs from AWS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { errorCodeOf, runCommand } from '../fixtures/cli.js';
import { startKmsFixture, type KmsFixture } from '../fixtures/kms-fixture.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

const BIN = join(import.meta.dirname, '..', '..', 'dist', 'ca-setup', 'bin', 'sshca-setup.js');

async function setup(kms: KmsFixture, args: string[], env: Record<string, string> = {}) {
  const r = await runCommand(BIN, [...args, '--endpoint', kms.url, '--region', 'eu-west-1'], {
    // No AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED here: the command silences the SDK's Node notice itself.
    HOME: '/nonexistent',
    AWS_ACCESS_KEY_ID: kms.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: kms.credentials.secretAccessKey, ...env,
  });
  return { ...r, errorCode: errorCodeOf(r.stderr) };
}

t.test('create is idempotent by alias; export, check and policy work on the key', needsOpenSsh, async (t) => {
  const kms = await startKmsFixture(t);
  const first = await setup(kms, ['create', '--kind', 'user', '--key-spec', 'ed25519', '--alias', 'alias/sshca-user-ca', '--json']);
  t.equal(first.code, 0, first.stderr);
  const created = JSON.parse(first.stdout);
  t.match(created, { created: true, keySpec: 'ECC_NIST_EDWARDS25519', alias: 'alias/sshca-user-ca' });
  const second = await setup(kms, ['create', '--kind', 'user', '--key-spec', 'ed25519', '--alias', 'alias/sshca-user-ca', '--json']);
  t.equal(second.code, 0);
  t.match(JSON.parse(second.stdout), { created: false, keyArn: created.keyArn }, 'the second run finds the same key');
  t.equal(kms.counts.createKey, 1, 'one key was created');
  const conflict = await setup(kms, ['create', '--kind', 'user', '--key-spec', 'rsa-4096', '--alias', 'alias/sshca-user-ca']);
  t.equal(conflict.code, 3, 'an alias naming a key of another spec is refused');
  t.equal(conflict.errorCode, 'SETUP_ALIAS_CONFLICT');
  t.notMatch(first.stderr + second.stderr + conflict.stderr, /NodeVersionSupportWarning|require node/, "no AWS SDK Node-version notice on any command");
  // The user CA's alias (same spec) given for the host CA: one key for both CAs is refused.
  const shared = await setup(kms, ['create', '--kind', 'host', '--key-spec', 'ed25519', '--alias', 'alias/sshca-user-ca']);
  t.equal(shared.code, 3, 'the user CA key is not reused as the host CA');
  t.equal(shared.errorCode, 'SETUP_KIND_CONFLICT');
  t.equal(kms.counts.createKey, 1, 'and nothing was created');

  const exported = await setup(kms, ['export', '--key', created.keyArn]);
  t.equal(exported.code, 0, exported.stderr);
  const file = join(t.testdir(), 'user_ca.pub');
  writeFileSync(file, exported.stdout);
  const keygen = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
  t.equal(keygen.split(' ')[1], exported.stderr.split(' ')[0], 'ssh-keygen -l reads the export and agrees on the fingerprint');

  const checked = await setup(kms, ['check', '--key', created.keyArn, '--json']);
  t.equal(checked.code, 0, checked.stderr);
  t.equal(JSON.parse(checked.stdout).ok, true);

  const host = JSON.parse((await setup(kms, ['create', '--kind', 'host', '--key-spec', 'ecdsa-p256', '--alias', 'alias/sshca-host-ca', '--json'])).stdout);
  const reversed = await setup(kms, ['create', '--kind', 'user', '--key-spec', 'ecdsa-p256', '--alias', 'alias/sshca-host-ca']);
  t.equal(reversed.errorCode, 'SETUP_KIND_CONFLICT', 'nor the host CA key as the user CA');
  const policy = await setup(kms, ['policy', '--key', created.keyArn, '--key', host.keyArn]);
  t.equal(policy.code, 0, policy.stderr);
  const doc = JSON.parse(policy.stdout);
  t.same(doc.Statement[0], {
    Sid: 'SshcaSign0', Effect: 'Allow', Action: 'kms:Sign', Resource: created.keyArn,
    Condition: { StringEquals: { 'kms:SigningAlgorithm': 'ED25519_SHA_512', 'kms:MessageType': 'RAW' } },
  });
  t.same(doc.Statement[1].Condition, { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } });
  t.same(doc.Statement[2], { Sid: 'SshcaReadKeys', Effect: 'Allow', Action: ['kms:GetPublicKey', 'kms:DescribeKey'], Resource: [created.keyArn, host.keyArn] });
  t.equal(doc.Statement.length, 3, 'nothing else is granted');

  // Host certificates: exactly the EC2 read the server needs — in its own account, or through a read role per member account.
  const hosts = JSON.parse((await setup(kms, ['policy', '--key', host.keyArn, '--hosts'])).stdout);
  t.same(hosts.Statement.slice(2), [{ Sid: 'SshcaDescribeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' }]);
  const viaRole = JSON.parse((await setup(kms, ['policy', '--key', host.keyArn, '--hosts', '--ec2-role', 'arn:aws:iam::{account}:role/SshcaEc2Read'])).stdout);
  t.same(viaRole.Statement.slice(2), [{ Sid: 'SshcaAssumeEc2ReadRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: 'arn:aws:iam::*:role/SshcaEc2Read' }], 'no EC2 access of its own');
  t.same(JSON.parse((await setup(kms, ['ec2-read-role-policy'])).stdout).Statement, [{ Sid: 'SshcaDescribeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' }]);
  t.equal((await setup(kms, ['policy', '--key', host.keyArn, '--ec2-role', 'arn:aws:iam::{account}:role/X'])).code, 2, '--ec2-role needs --hosts');
  t.equal((await setup(kms, ['policy', '--key', host.keyArn, '--hosts', '--ec2-role', 'arn:aws:iam::123456789012:role/X'])).code, 2, '--ec2-role needs {account}');

  // Audit anchors: write, read and retain under the prefix, list it; never delete.
  const anchors = JSON.parse((await setup(kms, ['policy', '--key', host.keyArn, '--anchors', 's3://corp-sshca-anchors/audit-anchors/'])).stdout);
  t.same(anchors.Statement.slice(2), [
    { Sid: 'SshcaAnchorObjects', Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject', 's3:PutObjectRetention'], Resource: 'arn:aws:s3:::corp-sshca-anchors/audit-anchors/*' },
    { Sid: 'SshcaAnchorList', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::corp-sshca-anchors', Condition: { StringLike: { 's3:prefix': 'audit-anchors/*' } } },
  ]);
  for (const bad of ['s3://corp-sshca-anchors/audit-anchors', 'https://corp-sshca-anchors/', 's3://Bad_Bucket/']) {
    t.equal((await setup(kms, ['policy', '--key', host.keyArn, '--anchors', bad])).code, 2, `--anchors ${bad}: usage`);
  }
});

t.test('clear errors for missing credentials, wrong credentials, missing keys and bad usage', async (t) => {
  const kms = await startKmsFixture(t);
  const cases: Array<[string, string[], Record<string, string>, number, string]> = [
    ['no credentials', ['export', '--key', 'alias/x'], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }, 5, 'SETUP_CREDENTIALS'],
    ['credentials KMS does not know', ['export', '--key', 'alias/x'], { AWS_SECRET_ACCESS_KEY: 'wrong' }, 5, 'SETUP_CREDENTIALS'],
    ['no such key', ['check', '--key', 'arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000'], {}, 3, 'SETUP_KMS_KEY_NOT_FOUND'],
    ['bad kind', ['create', '--kind', 'admin', '--alias', 'alias/x'], {}, 2, 'SETUP_USAGE'],
    ['bad key spec', ['create', '--kind', 'user', '--key-spec', 'dsa', '--alias', 'alias/x'], {}, 2, 'SETUP_USAGE'],
    ['AWS-reserved alias', ['create', '--kind', 'user', '--alias', 'alias/aws/x'], {}, 2, 'SETUP_USAGE'],
  ];
  for (const [name, args, env, code, errorCode] of cases) {
    const r = await setup(kms, args, env);
    t.equal(r.code, code, `${name}: exit ${code} (${r.stderr.split('\n')[0]})`);
    t.equal(r.errorCode, errorCode, `${name}: ${errorCode}`);
  }
});

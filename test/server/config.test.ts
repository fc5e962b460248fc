// Configuration is validated before anything listens.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig, type ProductionConfig } from '../../server/config.js';
import { productionStsEndpoint } from '../../server/identity/sts-endpoints.js';

const prodEnv = {
  SSHCA_AUDIENCE: 'https://sshca.example.com',
  SSHCA_STS_ENDPOINTS: 'https://sts.eu-west-1.amazonaws.com/,https://sts.amazonaws.com/',
  SSHCA_POLICY: '/etc/sshca/policy.yaml',
  SSHCA_USER_CA: 'file:/etc/sshca/user-ca.pem',
  SSHCA_AUDIT_DB: '/var/lib/sshca/audit.db',
  SSHCA_CHECKPOINT_KEY: '/etc/sshca/checkpoint.pem',
};

t.test('dev defaults', async (t) => {
  const c = loadConfig(['--dev'], {}, 'root', '/srv');
  t.match(c, { mode: 'dev', host: '127.0.0.1', port: 8080, dataDir: '/srv/.sshca-dev', devUser: 'developer', caKeyType: 'ed25519' });
  t.ok(Object.isFrozen(c));
  t.equal((loadConfig(['--dev'], {}, 'erin', '/srv') as { devUser: string }).devUser, 'erin');
});

t.test('production config parses endpoints with their regions', async (t) => {
  const c = loadConfig([], prodEnv, 'sshca', '/');
  t.equal(c.mode, 'production');
  if (c.mode !== 'production') return;
  t.same(c.stsEndpoints.map((e) => e.region), ['eu-west-1', 'us-east-1']);
});

t.test('CA key references: KMS key ARNs (region from the ARN), aliases, files; flags beat env', async (t) => {
  const arn = 'arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const c = loadConfig(['--user-ca', `kms:${arn}`, '--host-ca', 'kms:alias/sshca-host'], { ...prodEnv, AWS_REGION: 'eu-west-1' }, 'sshca', '/');
  if (c.mode !== 'production') {
    t.fail('production expected');
    return;
  }
  t.same(c.userCa, { kind: 'kms', keyId: arn, region: 'eu-central-1', isAlias: false });
  t.same(c.hostCa, { kind: 'kms', keyId: 'alias/sshca-host', region: 'eu-west-1', isAlias: true });
  const mrk = loadConfig([], { ...prodEnv, SSHCA_USER_CA: 'kms:arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef' }, 's', '/');
  t.match(mrk, { userCa: { kind: 'kms', region: 'us-gov-west-1' } }, 'multi-Region key ids');
});

t.test('bad configuration is refused with CONFIG_INVALID', async (t) => {
  const bad: Array<[string, string[], Record<string, string>]> = [
    ['unknown flag', ['--dev', '--bogus'], {}],
    ['port not a number', ['--dev', '--port', 'http'], {}],
    ['port too large', ['--dev', '--port', '70000'], {}],
    ['dev user root', ['--dev', '--dev-user', 'root'], {}],
    ['dev user with a space', ['--dev', '--dev-user', 'a b'], {}],
    ['unknown CA key type', ['--dev', '--ca-key-type', 'dsa'], {}],
    ['dev flag without --dev', ['--port', '1'], prodEnv],
    ['production without settings', [], {}],
    ['endpoint with a port', [], { ...prodEnv, SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com:443/' }],
    ['endpoint look-alike', [], { ...prodEnv, SSHCA_STS_ENDPOINTS: 'https://sts.amazonaws.com.evil.example/' }],
    ['relative policy path', [], { ...prodEnv, SSHCA_POLICY: 'policy.yaml' }],
    ['relative CA key path', [], { ...prodEnv, SSHCA_USER_CA: 'file:ca.pem' }],
    ['no user CA', [], { ...prodEnv, SSHCA_USER_CA: '' }],
    ['kms key id that is not a key id', [], { ...prodEnv, SSHCA_USER_CA: 'kms:arn:aws:kms:eu-west-1:123456789012:key/x' }],
    ['kms ARN of another service', ['--user-ca', 'kms:arn:aws:iam::123456789012:role/x'], prodEnv],
    ['bare alias without a region', ['--user-ca', 'kms:alias/sshca'], prodEnv],
    ['unknown scheme', ['--host-ca', 'vault:x'], prodEnv],
    ['--user-ca with --dev', ['--dev', '--user-ca', 'file:/x'], {}],
    ['next host key without an active one', ['--host-ca-next', 'file:/x'], prodEnv],
    ['retired key that is not a key', [], { ...prodEnv, SSHCA_USER_CA_RETIRED: 'ssh-ed25519 nope' }],
    ['bad log level', ['--dev'], { SSHCA_LOG_LEVEL: 'loud' }],
    ['EC2 read role with a fixed account', [], { ...prodEnv, SSHCA_EC2_ROLE: 'arn:aws:iam::123456789012:role/SshcaEc2Read' }],
    ['EC2 read role that is not a role', [], { ...prodEnv, SSHCA_EC2_ROLE: 'arn:aws:iam::{account}:user/x' }],
    ['EC2 endpoint with a path', [], { ...prodEnv, SSHCA_EC2_ENDPOINT: 'https://ec2.eu-west-1.amazonaws.com/x' }],
    ['STS endpoint that is not a URL', [], { ...prodEnv, SSHCA_AWS_STS_ENDPOINT: 'sts.eu-west-1' }],
  ];
  for (const [name, argv, env] of bad) t.throws(() => loadConfig(argv, env, 'u', '/'), { code: 'CONFIG_INVALID' }, name);
});

t.test('STS endpoint allowlist entries: exact production forms only (rule 2)', async (t) => {
  const good: Array<[string, string, string]> = [
    ['https://sts.amazonaws.com/', 'us-east-1', 'aws'],
    ['https://sts.ap-southeast-2.amazonaws.com/', 'ap-southeast-2', 'aws'],
    ['https://sts-fips.us-west-2.amazonaws.com/', 'us-west-2', 'aws'],
    ['https://sts.us-gov-west-1.amazonaws.com/', 'us-gov-west-1', 'aws-us-gov'],
    ['https://sts.cn-north-1.amazonaws.com.cn/', 'cn-north-1', 'aws-cn'],
  ];
  for (const [url, region, partition] of good) t.match(productionStsEndpoint(url), { url, region, partition }, url);
  const bad = ['http://sts.amazonaws.com/', 'https://sts.amazonaws.com', 'https://STS.amazonaws.com/', 'https://sts.amazonaws.com./', 'https://u@sts.amazonaws.com/',
    'https://sts.amazonaws.com/x', 'https://52.94.0.1/', 'https://sts-fips.eu-west-1.amazonaws.com/', 'https://sts.evil-1.amazonaws.com.cn/'];
  for (const url of bad) t.throws(() => productionStsEndpoint(url), { code: 'CONFIG_STS_ENDPOINT' }, url);
});

t.test('sshca-server exits 1 with a message before listening on bad config', async (t) => {
  const bin = join(import.meta.dirname, '..', '..', 'dist', 'server', 'bin', 'sshca-server.js');
  const r = spawnSync(process.execPath, [bin, '--dev', '--port', 'nope'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /--port/);
  t.notMatch(r.stderr, /listening/);
});

t.test('host certificates: the EC2 read role and endpoint overrides', async (t) => {
  const c = loadConfig([], { ...prodEnv, SSHCA_EC2_ROLE: 'arn:aws:iam::{account}:role/ops/SshcaEc2Read', SSHCA_EC2_ENDPOINT: 'https://vpce-1.ec2.eu-west-1.vpce.amazonaws.com', SSHCA_AWS_STS_ENDPOINT: 'https://sts.eu-west-1.amazonaws.com/' }, 's', '/');
  t.match(c, { ec2Role: 'arn:aws:iam::{account}:role/ops/SshcaEc2Read', ec2Endpoint: 'https://vpce-1.ec2.eu-west-1.vpce.amazonaws.com', awsStsEndpoint: 'https://sts.eu-west-1.amazonaws.com/' });
  const plain = loadConfig([], prodEnv, 's', '/');
  t.equal((plain as { ec2Role?: string }).ec2Role, undefined, 'unset: the server\'s own credentials');
});

t.test('metrics listener: loopback by default, production on 9464, dev on any free port, off on request', async (t) => {
  t.same(loadConfig([], prodEnv, 's', '/').metrics, { host: '127.0.0.1', port: 9464 });
  t.same(loadConfig(['--dev'], {}, 's', '/').metrics, { host: '127.0.0.1', port: 0 });
  t.same(loadConfig([], { ...prodEnv, SSHCA_METRICS_HOST: '0.0.0.0', SSHCA_METRICS_PORT: '9100' }, 's', '/').metrics, { host: '0.0.0.0', port: 9100 });
  t.equal(loadConfig([], { ...prodEnv, SSHCA_METRICS_PORT: 'off' }, 's', '/').metrics, undefined);
  t.throws(() => loadConfig([], { ...prodEnv, SSHCA_METRICS_PORT: 'loud' }, 's', '/'), { code: 'CONFIG_INVALID' });
  t.throws(() => loadConfig([], { ...prodEnv, SSHCA_METRICS_HOST: 'metrics.example.com' }, 's', '/'), { code: 'CONFIG_INVALID' });
});

t.test('the checkpoint key: kms:<ARN>, file:<path>, or a bare absolute path', async (t) => {
  const arn = 'arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab';
  const checkpointKey = (value: string) => (loadConfig([], { ...prodEnv, SSHCA_CHECKPOINT_KEY: value }, 's', '/') as ProductionConfig).checkpointKey;
  t.match(checkpointKey(`kms:${arn}`), { kind: 'kms', keyId: arn, region: 'eu-west-1' });
  t.same(checkpointKey('/etc/sshca/checkpoint.pem'), { kind: 'file', path: '/etc/sshca/checkpoint.pem' });
  t.same(checkpointKey('file:/etc/sshca/checkpoint.pem'), { kind: 'file', path: '/etc/sshca/checkpoint.pem' });
  for (const bad of ['checkpoint.pem', 'kms:not-an-arn', 'vault:x']) t.throws(() => loadConfig([], { ...prodEnv, SSHCA_CHECKPOINT_KEY: bad }, 's', '/'), { code: 'CONFIG_INVALID' }, bad);
});

t.test('audit anchors: dev anchors in its data dir, production nowhere unless told; directory, S3 or off', async (t) => {
  t.same(loadConfig(['--dev', '--data-dir', 'd'], {}, 'erin', '/srv').anchor, { kind: 'directory', path: '/srv/d/anchors', intervalMs: 300_000 }, 'dev: <data dir>/anchors, every 5 minutes');
  t.equal(loadConfig(['--dev'], { SSHCA_AUDIT_ANCHOR: 'off' }, 'erin', '/srv').anchor, undefined, 'off');
  t.equal(loadConfig([], prodEnv, 'sshca', '/').anchor, undefined, 'production: none unless configured');
  const anchorOf = (env: Record<string, string>) => loadConfig([], { ...prodEnv, ...env }, 'sshca', '/').anchor;
  t.same(anchorOf({ SSHCA_AUDIT_ANCHOR: 's3://corp-anchors/sshca/prod' }), { kind: 's3', bucket: 'corp-anchors', prefix: 'sshca/prod/', retentionDays: 365, intervalMs: 300_000 }, 'a prefix always ends in /');
  t.same(anchorOf({ SSHCA_AUDIT_ANCHOR: 's3://corp-anchors', SSHCA_AUDIT_ANCHOR_RETENTION_DAYS: '400', SSHCA_AUDIT_ANCHOR_INTERVAL_SECONDS: '60', SSHCA_S3_ENDPOINT: 'https://bucket.vpce-0123.s3.eu-west-1.vpce.amazonaws.com' }), {
    kind: 's3', bucket: 'corp-anchors', prefix: '', retentionDays: 400, endpoint: 'https://bucket.vpce-0123.s3.eu-west-1.vpce.amazonaws.com', intervalMs: 60_000,
  });
  t.same(anchorOf({ SSHCA_AUDIT_ANCHOR: 'dir:/var/lib/sshca/anchors' }), { kind: 'directory', path: '/var/lib/sshca/anchors', intervalMs: 300_000 });
  for (const [name, env] of [
    ['a relative directory', { SSHCA_AUDIT_ANCHOR: 'anchors' }],
    ['an interval under 5 s', { SSHCA_AUDIT_ANCHOR: '/a', SSHCA_AUDIT_ANCHOR_INTERVAL_SECONDS: '1' }],
    ['a retention of 0 days', { SSHCA_AUDIT_ANCHOR: 's3://b-1/', SSHCA_AUDIT_ANCHOR_RETENTION_DAYS: '0' }],
    ['an S3 endpoint with a path', { SSHCA_AUDIT_ANCHOR: 's3://b-1/', SSHCA_S3_ENDPOINT: 'https://s3.example.com/x' }],
  ] as const) {
    t.throws(() => anchorOf(env), { code: 'CONFIG_INVALID' }, name);
  }
});

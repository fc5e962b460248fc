// Every context option at once, synthesized once: an imported certificate
// and a hosted zone, P-256 keys, host certificates through SSHCA_EC2_ROLE,
// VPC endpoints, a policy file, more replicas. And the context checks.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import t from 'tap';
import { iamPolicyFor } from '../../../ca-setup/iam-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';
import { settingsFromContext } from '../lib/sshca-settings.js';
import { buildSshcaApp, cdkJsonContext } from '../lib/sshca-app.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const POLICY = `accounts: ['111122223333', '444455556666']
rules:
  - name: ops
    match: { ssoPermissionSet: Admin }
    principals: ['{{sessionLocalPart}}', ops]
hosts:
  accounts: ['444455556666']
`;
// server.mjs stands in for the server: it reports what the container command left for it.
const SERVER_STANDIN = `import { readFileSync, statSync } from 'node:fs';
const file = process.env.SSHCA_POLICY;
process.stdout.write(JSON.stringify({ text: readFileSync(file, 'utf8'), mode: statSync(file).mode & 0o777, leftover: 'SSHCA_POLICY_DOCUMENT' in process.env }));
`;
const dir = t.testdir({ 'policy.yaml': POLICY, 'bad-policy.yaml': 'accounts: [1]\nrules: []\n', 'server.mjs': SERVER_STANDIN });
const EC2_ROLE = 'arn:aws:iam::{account}:role/sshca-ec2-read';
const CERTIFICATE = 'arn:aws:acm:eu-central-1:111122223333:certificate/0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d';
const options = {
  domain: 'ssh.corp.example.com',
  certificateArn: CERTIFICATE,
  hostedZoneId: 'Z0123456789ABCDEFGHIJ',
  hostedZoneName: 'corp.example.com',
  stsEndpoints: 'https://sts.eu-central-1.amazonaws.com/,https://sts.amazonaws.com/',
  allowedAccounts: ['111122223333'],
  policy: `file:${dir}/policy.yaml`,
  replicas: '3',
  keySpec: 'ecdsa-p256',
  checkpointKeySpec: 'ECC_NIST_P256',
  ec2Role: EC2_ROLE,
  vpcEndpoints: 'true',
  ingressCidrs: '203.0.113.0/24,198.51.100.0/24',
  alarmEmail: 'ops@corp.example.com',
  image: '111122223333.dkr.ecr.eu-central-1.amazonaws.com/sshca@sha256:' + 'a'.repeat(64),
  region: 'eu-central-1',
  stackName: 'SshcaProd',
  serverCommand: `node ${dir}/server.mjs`,
  anchorRetentionDays: 0,
};
const app = new App({ context: { ...cdkJsonContext(), ...options } });
const stack = buildSshcaApp(app);
app.synth(); // cdk-nag: throws on any unacknowledged finding
const template = Template.fromStack(stack);
const resources = template.toJSON().Resources as Record<string, Json>;
const ofType = (type: string) => Object.values(resources).filter((r) => r.Type === type);
const logicalId = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);

t.test('anchorRetentionDays=0: no anchor bucket, no S3 access, no SSHCA_AUDIT_ANCHOR', async (t) => {
  t.equal(stack.anchors, undefined);
  t.notOk(ofType('AWS::S3::Bucket').some((b) => b.Properties.ObjectLockEnabled), 'no Object Lock bucket');
  const env = (ofType('AWS::ECS::TaskDefinition')[0]!.Properties.ContainerDefinitions[0].Environment as Array<{ Name: string }>).map((e) => e.Name);
  t.notOk(env.includes('SSHCA_AUDIT_ANCHOR'));
});

t.test('P-256 keys: spec, and Sign only with ECDSA_SHA_256 over a digest', async (t) => {
  const keys = ofType('AWS::KMS::Key').filter((k) => k.Properties.KeyUsage === 'SIGN_VERIFY');
  t.same(keys.map((k) => k.Properties.KeySpec), ['ECC_NIST_P256', 'ECC_NIST_P256', 'ECC_NIST_P256']);
  for (const k of keys) {
    const sign = (k.Properties.KeyPolicy.Statement as Json[]).find((s) => s.Action === 'kms:Sign')!;
    t.same(sign.Condition, { StringEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'DIGEST' } });
  }
});

t.test('host certificates through SSHCA_EC2_ROLE: sts:AssumeRole in member accounts, no EC2 access of its own', async (t) => {
  const keys = stack.keys.all();
  const arns = keys.map((_k, i) => `KEY${i}`);
  const expected = JSON.parse(JSON.stringify(iamPolicyFor(keys.map((k, i) => ({ keyArn: arns[i]!, keySpec: k.keySpec })), { ec2Role: EC2_ROLE })), (_k, v: unknown) =>
    typeof v === 'string' && arns.includes(v) ? { 'Fn::GetAtt': [logicalId(keys[arns.indexOf(v)]!.key), 'Arn'] } : v) as Json;
  const policy = ofType('AWS::IAM::Policy').find((p) => (p.Properties.Roles as Json[]).some((r) => r.Ref === logicalId(stack.taskRole)))!;
  t.same(policy.Properties.PolicyDocument, expected);
  t.match(JSON.stringify(expected), /"Action":"sts:AssumeRole","Resource":"arn:aws:iam::\*:role\/sshca-ec2-read"/);
  t.notMatch(JSON.stringify(expected), /ec2:DescribeInstances/);
  const env = Object.fromEntries((ofType('AWS::ECS::TaskDefinition')[0]!.Properties.ContainerDefinitions[0].Environment as Json[]).map((e) => [e.Name, e.Value]));
  t.equal(env.SSHCA_EC2_ROLE, EC2_ROLE);
  t.equal(env.SSHCA_STS_ENDPOINTS, 'https://sts.eu-central-1.amazonaws.com/,https://sts.amazonaws.com/');
  t.equal(env.SSHCA_AUDIENCE, 'https://ssh.corp.example.com');
});

t.test('the imported certificate, the alias record, narrowed ingress, 3 replicas', async (t) => {
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Certificates: [{ CertificateArn: CERTIFICATE }] });
  t.equal(ofType('AWS::CertificateManager::Certificate').length, 0, 'none created');
  template.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'ssh.corp.example.com.', Type: 'A', HostedZoneId: 'Z0123456789ABCDEFGHIJ' });
  const lbSg = resources[logicalId(stack.service.loadBalancerSecurityGroup)]!;
  t.same([...new Set((lbSg.Properties.SecurityGroupIngress as Json[]).map((r) => r.CidrIp))].sort(), ['198.51.100.0/24', '203.0.113.0/24']);
  t.equal(ofType('AWS::ECS::Service')[0]!.Properties.DesiredCount, 3);
  template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@corp.example.com' });
  t.match(JSON.stringify(ofType('AWS::ECS::TaskDefinition')[0]!.Properties.ContainerDefinitions[0].Image), /sshca@sha256:a{64}/);
});

t.test('VPC endpoints for KMS, STS, EC2, Secrets Manager, SSM, ECR and CloudWatch Logs, reachable from the service only', async (t) => {
  const names = ofType('AWS::EC2::VPCEndpoint').map((e) => JSON.stringify(e.Properties.ServiceName));
  for (const service of ['kms', 'sts', 'ec2', 'secretsmanager', 'ssm', 'ecr.api', 'ecr.dkr', 'logs', 's3']) {
    t.ok(names.some((n) => n.includes(`.${service}"`) || n.includes(`.${service}`)), `${service} endpoint`);
  }
  for (const e of ofType('AWS::EC2::VPCEndpoint').filter((x) => x.Properties.VpcEndpointType === 'Interface')) t.equal(e.Properties.PrivateDnsEnabled, true);
  const sg = logicalId(stack.network.endpointSecurityGroup!);
  const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter((r) => r.Properties.GroupId['Fn::GetAtt']?.[0] === sg);
  t.same(ingress.map((r) => [r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0], r.Properties.FromPort]), [[logicalId(stack.service.serviceSecurityGroup), 443]]);
  t.same(resources[sg]!.Properties.SecurityGroupIngress ?? [], []);
});

t.test('the policy file is validated and stored as it is', async (t) => {
  t.same(ofType('AWS::SSM::Parameter').map((p) => p.Properties.Value), [POLICY]);
});

t.test('the container command writes the policy from its ECS secret to SSHCA_POLICY, then execs the server', async (t) => {
  const container = ofType('AWS::ECS::TaskDefinition')[0]!.Properties.ContainerDefinitions[0] as Json;
  const policyPath = join(dir, 'run', 'sshca', 'policy.yaml');
  const r = spawnSync(container.EntryPoint[0], [...container.EntryPoint.slice(1), container.Command[0]], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, SSHCA_POLICY: policyPath, SSHCA_POLICY_DOCUMENT: POLICY.trimEnd() },
  });
  t.equal(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout) as { text: string; mode: number; leftover: boolean };
  t.equal(seen.text, POLICY, 'the policy, byte for byte (one trailing newline)');
  t.equal(seen.mode, 0o600, 'readable by the server\'s user only');
  t.equal(seen.leftover, false, 'the variable is gone from the server\'s environment');
  t.same(parsePolicyFile(readFileSync(policyPath, 'utf8'), policyPath).accounts, ['111122223333', '444455556666'], 'the server\'s parser accepts it');
});

t.test('context values the server (or AWS) would refuse stop the synth, naming the key', async (t) => {
  const settings = (extra: Record<string, unknown>) => {
    const ctx: Record<string, unknown> = { ...cdkJsonContext(), ...extra };
    return settingsFromContext({ tryGetContext: (k: string) => ctx[k] }, dir);
  };
  const refused = (extra: Record<string, unknown>, key: RegExp) => t.throws(() => settings(extra), { code: 'CDK_CONTEXT_INVALID', message: key }, JSON.stringify(extra));
  refused({ replicas: 1 }, /^context replicas/);
  refused({ replicas: '2.5' }, /^context replicas/);
  refused({ domain: '' }, /^context domain/);
  refused({ domain: 'sshca.example.com:8443' }, /^context domain/);
  refused({ domain: 'user@sshca.example.com' }, /^context domain/);
  refused({ keySpec: 'RSA_1024' }, /^context keySpec/);
  refused({ checkpointKeySpec: 'rsa-4096' }, /^context checkpointKeySpec/);
  refused({ stsEndpoints: 'https://sts.evil.example.com/' }, /^context stsEndpoints/);
  refused({ allowedAccounts: ['12345'] }, /^context allowedAccounts/);
  refused({ policy: 'file:bad-policy.yaml' }, /^context policy: .*bad-policy\.yaml:1: accounts/);
  refused({ policy: 'file:missing.yaml' }, /^context policy: cannot read/);
  refused({ policy: 's3://bucket/policy.yaml' }, /^context policy/);
  refused({ ec2Role: 'arn:aws:iam::111122223333:role/read' }, /^context ec2Role/);
  refused({ hostedZoneId: 'Z0123' }, /^context hostedZoneId and hostedZoneName/);
  refused({ hostedZoneId: 'Z0123', hostedZoneName: 'other.example.org' }, /^context hostedZoneName/);
  refused({ certificateArn: 'arn:aws:iam::111122223333:server-certificate/x' }, /^context certificateArn/);
  refused({ image: 'docker.io/library/sshca:latest' }, /^context image/);
  refused({ logRetentionDays: 100 }, /^context logRetentionDays/);
  refused({ backupRetentionDays: 1 }, /^context backupRetentionDays/);
  refused({ ingressCidrs: '0.0.0.0/0,::/0' }, /^context ingressCidrs/);
  refused({ vpcEndpoints: 'yes' }, /^context vpcEndpoints/);
  refused({ natGateways: 3 }, /^context natGateways/);
  refused({ anchorRetentionDays: -1 }, /^context anchorRetentionDays/);
  refused({ anchorRetentionDays: 40_000 }, /^context anchorRetentionDays/);
  t.equal(settings({}).anchorRetentionDays, 400, 'anchors by default, for 400 days');
  t.equal(settings({ anchorRetentionDays: 0 }).anchorRetentionDays, 0);
  const defaults = settings({});
  t.match(defaults, { domain: 'sshca.example.com', audience: 'https://sshca.example.com', replicas: 2, caKeySpec: 'ECC_NIST_EDWARDS25519', checkpointKeySpec: 'ECC_NIST_EDWARDS25519', policy: { kind: 'starter' }, vpcEndpoints: false, natGateways: 2 });
  t.match(settings({ policy: 'ssm:/sshca/policy' }).policy, { kind: 'ssm', parameterName: '/sshca/policy' });
});

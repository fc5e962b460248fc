// The CDK app with cdk.json's default context, synthesized once (no network,
// no AWS account): keys, the service role's policy against `sshca-setup
// policy`'s own code, the database, the listeners, the alarms, and cdk-nag.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CfnElement } from 'aws-cdk-lib';
import t from 'tap';
import { iamPolicyFor } from '../../../ca-setup/iam-policy.js';
import { ANCHOR_PREFIX } from '../lib/audit-anchors.js';
import { ALARMS } from '../lib/sshca-alarms.js';
import { buildSshcaApp, cdkJsonContext } from '../lib/sshca-app.js';
import { METRICS_PORT, SERVER_PORT } from '../lib/sshca-service.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const IMAGE = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/sshca:test';

// A prebuilt image: the tests never hash or stage the repository as a Docker context.
const app = new App({ context: { ...cdkJsonContext(), image: IMAGE, region: 'eu-west-1' } });
const stack = buildSshcaApp(app);
// Synthesis runs the AwsSolutions checks: any finding not acknowledged (with
// its reason) makes it throw, so getting here is the cdk-nag test.
const assembly = app.synth();
const template = Template.fromStack(stack);
const resources = template.toJSON().Resources as Record<string, Json>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalId = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as CfnElement);
const arnOf = (c: { node: { defaultChild?: unknown } }) => ({ 'Fn::GetAtt': [logicalId(c), 'Arn'] });
const taskRoleId = logicalId(stack.taskRole);

t.test('cdk-nag: AwsSolutions reports no finding that is not acknowledged with a reason', async (t) => {
  const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as { pluginReports: Array<{ pluginName: string; conclusion: string; violations: Array<{ severity: string; ruleName: string }> }> };
  const errors = report.pluginReports.flatMap((p) => p.violations.filter((v) => v.severity === 'error' || v.severity === 'fatal').map((v) => `${p.pluginName}: ${v.ruleName}`));
  t.same(errors, [], 'no errors in the validation report');
  t.ok(report.pluginReports.every((p) => p.conclusion !== 'failure'));
});

t.test('three KMS keys: asymmetric signing, Ed25519 by default, retained', async (t) => {
  const keys = ofType('AWS::KMS::Key').filter(([, r]) => r.Properties.KeyUsage === 'SIGN_VERIFY');
  t.equal(keys.length, 3, 'user CA, host CA, checkpoint');
  for (const [id, key] of keys) {
    t.equal(key.Properties.KeySpec, 'ECC_NIST_EDWARDS25519', `${id} spec`);
    t.equal(key.DeletionPolicy, 'Retain', `${id} is retained when the stack goes`);
    t.equal(key.UpdateReplacePolicy, 'Retain', `${id} is retained when replaced`);
  }
  t.same(keys.map(([id]) => id).sort(), [logicalId(stack.keys.userCa.key), logicalId(stack.keys.hostCa.key), logicalId(stack.keys.checkpoint.key)].sort());
  template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/sshca-user-ca' });
  template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/sshca-host-ca' });
  template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/sshca-checkpoint' });
});

t.test('key policies: only the service role signs, with sshca\'s algorithm; the account administers but cannot sign', async (t) => {
  for (const { key } of stack.keys.all()) {
    const statements = resources[logicalId(key)]!.Properties.KeyPolicy.Statement as Json[];
    const actionsOf = (s: Json): string[] => [s.Action].flat();
    for (const s of statements) {
      t.equal(s.Effect, 'Allow');
      t.notOk(actionsOf(s).some((a) => a.includes('*')), `no wildcard action in ${s.Sid}`);
    }
    const signers = statements.filter((s) => actionsOf(s).includes('kms:Sign'));
    t.equal(signers.length, 1, 'one statement allows kms:Sign');
    t.same(signers[0]!.Principal, { AWS: { 'Fn::GetAtt': [taskRoleId, 'Arn'] } }, 'to the service role');
    t.same(signers[0]!.Condition, { StringEquals: { 'kms:SigningAlgorithm': 'ED25519_SHA_512', 'kms:MessageType': 'RAW' } });
    const admin = statements.find((s) => s.Sid === 'KeyAdministration')!;
    t.ok(admin, 'the account root administers the key');
    t.notOk(actionsOf(admin).includes('kms:Sign') || actionsOf(admin).includes('kms:CreateGrant'), 'administration grants no signing, not even through a grant');
    t.notOk(statements.some((s) => actionsOf(s).some((a) => ['kms:Encrypt', 'kms:Decrypt', 'kms:Verify'].includes(a))));
  }
});

t.test('the service role has exactly the statements iamPolicyFor (sshca-setup policy) produces', async (t) => {
  const keys = stack.keys.all();
  // The same function sshca-setup policy prints with, given the stack's key and bucket ARNs (resolved as CloudFormation references).
  const expected = stack.resolve(iamPolicyFor(keys.map((k) => ({ keyArn: k.key.keyArn, keySpec: k.keySpec })), {}, { bucketArn: stack.anchors!.bucket.bucketArn, prefix: ANCHOR_PREFIX })) as Json;
  t.same(expected.Statement[0].Resource, arnOf(keys[0]!.key), 'key ARNs are references to the stack\'s keys');
  const attached = ofType('AWS::IAM::Policy').filter(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === taskRoleId));
  t.equal(attached.length, 1, 'one policy on the service role');
  t.same(attached[0]![1].Properties.PolicyDocument, expected, 'statement by statement: Sid, actions, resources, conditions');

  const role = resources[taskRoleId]!;
  t.notOk(role.Properties.ManagedPolicyArns, 'no managed policies');
  t.notOk(role.Properties.Policies, 'no other inline policies');
  const statements = expected.Statement as Json[];
  t.notOk(statements.some((s) => [s.Action].flat().some((a: string) => a.includes('*'))), 'no wildcard action');
  t.same(statements.filter((s) => s.Resource === '*').map((s) => s.Action), ['ec2:DescribeInstances'], 'Resource "*" only where AWS requires it');
  t.match(role.Properties.AssumeRolePolicyDocument.Statement[0], { Principal: { Service: 'ecs-tasks.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } } });
});

t.test('Aurora PostgreSQL Serverless v2: private, encrypted, backed up, protected, reachable only from the service', async (t) => {
  template.hasResourceProperties('AWS::RDS::DBCluster', {
    Engine: 'aurora-postgresql',
    StorageEncrypted: true,
    DeletionProtection: true,
    BackupRetentionPeriod: Match.anyValue(),
    ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    EnableCloudwatchLogsExports: ['postgresql'],
  });
  const [, cluster] = ofType('AWS::RDS::DBCluster')[0]!;
  t.ok(cluster.Properties.BackupRetentionPeriod >= 7, 'backups kept at least 7 days');
  t.match(JSON.stringify(cluster.Properties.MasterUserPassword), /resolve:secretsmanager/, 'credentials from Secrets Manager');
  const instances = ofType('AWS::RDS::DBInstance');
  t.equal(instances.length, 2, 'writer and a reader in another AZ');
  for (const [, i] of instances) {
    t.equal(i.Properties.PubliclyAccessible, false);
    t.equal(i.Properties.DBInstanceClass, 'db.serverless');
  }
  // The subnet group's subnets are the isolated ones: no route to the internet at all.
  const [, subnetGroup] = ofType('AWS::RDS::DBSubnetGroup')[0]!;
  const isolated = stack.network.vpc.isolatedSubnets.map((s) => logicalId(s as never));
  t.same((subnetGroup.Properties.SubnetIds as Json[]).map((s) => s.Ref).sort(), [...isolated].sort());
  for (const id of isolated) {
    const table = ofType('AWS::EC2::SubnetRouteTableAssociation').find(([, a]) => a.Properties.SubnetId.Ref === id)![1].Properties.RouteTableId.Ref;
    t.notOk(ofType('AWS::EC2::Route').some(([, r]) => r.Properties.RouteTableId.Ref === table), `${id} has no routes out`);
  }
  // Only the service's security group may connect.
  const dbSg = logicalId(stack.database.securityGroup);
  const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId['Fn::GetAtt']?.[0] === dbSg);
  t.same(ingress.map(([, r]) => [r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0], r.Properties.FromPort, r.Properties.ToPort]), [[logicalId(stack.service.serviceSecurityGroup), 5432, 5432]]);
  t.same(resources[dbSg]!.Properties.SecurityGroupIngress ?? [], [], 'no CIDR ingress');
});

t.test('HTTPS listener with the TLS 1.2+ policy and certificate; HTTP redirects; health checks on /readyz', async (t) => {
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 443,
    Protocol: 'HTTPS',
    SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
    Certificates: [{ CertificateArn: { Ref: logicalId({ node: { defaultChild: stack.service.node.findChild('Certificate').node.defaultChild } }) } }],
  });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 80,
    Protocol: 'HTTP',
    DefaultActions: [{ Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } }],
  });
  t.equal(ofType('AWS::ElasticLoadBalancingV2::Listener').length, 2, 'no other listener (metrics are never routed)');
  template.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: 'sshca.example.com', ValidationMethod: 'DNS' });
  template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { HealthCheckPath: '/readyz', Matcher: { HttpCode: '200' }, Port: SERVER_PORT, TargetType: 'ip' });
  const [, lb] = ofType('AWS::ElasticLoadBalancingV2::LoadBalancer')[0]!;
  const attributes = Object.fromEntries((lb.Properties.LoadBalancerAttributes as Json[]).map((a) => [a.Key, a.Value]));
  t.match(attributes, { 'routing.http.drop_invalid_header_fields.enabled': 'true', 'routing.http.xff_header_processing.mode': 'append', 'access_logs.s3.enabled': 'true' });
});

t.test('the service: at least 2 tasks in 2 AZs, every setting in the environment, secrets from SSM and Secrets Manager', async (t) => {
  const [, service] = ofType('AWS::ECS::Service')[0]!;
  t.equal(service.Properties.DesiredCount, 2);
  t.equal(service.Properties.LaunchType, 'FARGATE');
  const subnets = (service.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets as Json[]).map((s) => s.Ref);
  t.same(subnets.sort(), stack.network.vpc.privateSubnets.map((s) => logicalId(s as never)).sort(), 'the private subnets');
  t.ok(new Set(stack.network.vpc.privateSubnets.map((s) => s.availabilityZone)).size >= 2, 'in two or more AZs');
  t.equal(service.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED');

  const [, task] = ofType('AWS::ECS::TaskDefinition')[0]!;
  const container = task.Properties.ContainerDefinitions[0] as Json;
  const env = Object.fromEntries((container.Environment as Json[]).map((e) => [e.Name, e.Value]));
  t.same(env.SSHCA_USER_CA, { 'Fn::Join': ['', ['kms:', arnOf(stack.keys.userCa.key)]] });
  t.same(env.SSHCA_HOST_CA, { 'Fn::Join': ['', ['kms:', arnOf(stack.keys.hostCa.key)]] });
  t.same(env.SSHCA_CHECKPOINT_KEY, { 'Fn::Join': ['', ['kms:', arnOf(stack.keys.checkpoint.key)]] });
  t.equal(env.SSHCA_AUDIENCE, 'https://sshca.example.com');
  t.equal(env.SSHCA_STS_ENDPOINTS, 'https://sts.eu-west-1.amazonaws.com/', 'the region\'s STS endpoint by default');
  t.equal(env.SSHCA_HOST, '0.0.0.0');
  t.equal(env.SSHCA_PORT, String(SERVER_PORT));
  t.equal(env.SSHCA_METRICS_PORT, String(METRICS_PORT));
  t.equal(env.SSHCA_POLICY, '/tmp/sshca/policy.yaml');
  const publicCidrs = ofType('AWS::EC2::Subnet').filter(([, s]) => s.Properties.MapPublicIpOnLaunch === true).map(([, s]) => s.Properties.CidrBlock as string);
  t.equal(publicCidrs.length, 2);
  t.same(env.SSHCA_TRUSTED_PROXIES.split(','), publicCidrs, 'the load balancer subnets\' CIDRs');
  const store = JSON.stringify(env.SSHCA_STORE);
  t.match(store, /postgres:\/\/sshca@/);
  t.match(store, /sslmode=verify-full&sslrootcert=/);
  t.notMatch(store, /password|secretsmanager/i, 'no password in the URL');
  t.notOk('SSHCA_EC2_ROLE' in env, 'own account only unless ec2Role is given');
  const secrets = Object.fromEntries((container.Secrets as Json[]).map((s) => [s.Name, JSON.stringify(s.ValueFrom)]));
  t.same(Object.keys(secrets).sort(), ['PGPASSWORD', 'SSHCA_POLICY_DOCUMENT']);
  t.match(secrets.PGPASSWORD, /:password::/);
  t.match(secrets.SSHCA_POLICY_DOCUMENT, /parameter/);
  t.same(container.EntryPoint, ['/bin/sh', '-c']);
  t.match(container.Command[0], /printf '%s\\n' "\$SSHCA_POLICY_DOCUMENT" > "\$SSHCA_POLICY" && unset SSHCA_POLICY_DOCUMENT && exec node \/app\/dist\/server\/bin\/sshca-server.js$/);
  t.same((container.PortMappings as Json[]).map((p) => p.ContainerPort), [SERVER_PORT], 'the metrics port is not mapped');
  t.match(container.Image, { 'Fn::Join': ['', ['111122223333.dkr.ecr.eu-west-1.', { Ref: 'AWS::URLSuffix' }, '/sshca:test']] });
  const [, logGroup] = ofType('AWS::Logs::LogGroup').find(([id]) => id === logicalId(stack.service.logGroup))!;
  t.equal(logGroup.Properties.RetentionInDays, 365);
});

t.test('the starter policy names this account and validates with the server\'s parser once resolved', async (t) => {
  const [, parameter] = ofType('AWS::SSM::Parameter')[0]!;
  const value = parameter.Properties.Value as Json;
  const text = (value['Fn::Join'][1] as Array<string | Json>).map((p) => (typeof p === 'string' ? p : '111122223333')).join('');
  const { parsePolicyFile } = await import('../../../server/policy/policy-file.js');
  const policy = parsePolicyFile(text, 'starter');
  t.same(policy.accounts, ['111122223333']);
  t.same(policy.hosts?.accounts, ['111122223333']);
});

t.test('alarms on the SNS topic: 5xx rate, STS/KMS unavailable, KMS throttling, audit append, audit anchoring, no issuance', async (t) => {
  const alarms = ofType('AWS::CloudWatch::Alarm');
  t.equal(alarms.length, ALARMS.length);
  const topic = ofType('AWS::SNS::Topic')[0]![0];
  for (const [id, a] of alarms) t.same(a.Properties.AlarmActions, [{ Ref: topic }], `${id} notifies the topic`);
  const patterns = ofType('AWS::Logs::MetricFilter').map(([, f]) => f.Properties.FilterPattern as string);
  for (const code of ['UNAVAILABLE_STS*', 'UNAVAILABLE_KMS*', 'UNAVAILABLE_KMS_THROTTLED', 'UNAVAILABLE_STORE']) {
    t.ok(patterns.some((p) => p.includes(`$.code = "${code}"`)), `a metric filter counts ${code}`);
  }
  t.ok(patterns.some((p) => p.includes('$.msg = "certificate issued"')), 'issuances are counted');
  for (const msg of ['audit anchor not published', 'audit anchoring refused: the chain disagrees with its published anchors']) {
    t.ok(patterns.some((p) => p.includes(`$.msg = "${msg}"`)), `anchor failures are counted: ${msg}`);
    t.ok(readFileSync(join(import.meta.dirname, '..', '..', '..', 'server', 'audit', 'anchor-publisher.ts'), 'utf8').includes(`'${msg}'`), `the publisher logs exactly "${msg}"`);
  }
  t.ok(patterns.some((p) => p.includes('$.req.url = "/v1/certs/*"')), 'certificate requests are counted');
  const byName = (name: string) => alarms.find(([id]) => id.startsWith(`Alarms${name}`))![1].Properties;
  t.match(JSON.stringify(byName('NoIssuance').Metrics), /IF\(FILL\(requests, 0\) >= 3 AND FILL\(issued, 0\) == 0, 1, 0\)/);
  t.equal(byName('NoIssuance').Metrics.find((m: Json) => m.Id === 'requests').MetricStat.Period, 15 * 60, 'over noIssuanceMinutes (15)');
  t.match(JSON.stringify(byName('LoadBalancer5xxRate').Metrics), /HTTPCode_Target_5XX_Count.*HTTPCode_ELB_5XX_Count|HTTPCode_ELB_5XX_Count.*HTTPCode_Target_5XX_Count/);
  template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
});

t.test('the audit anchor bucket: Object Lock in COMPLIANCE mode, deletes and overwrites denied to everyone, the server writes only its prefix', async (t) => {
  const [bucketId, bucket] = ofType('AWS::S3::Bucket').find(([id]) => id === logicalId(stack.anchors!.bucket))!;
  t.match(bucket.Properties, {
    ObjectLockEnabled: true,
    ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } },
    VersioningConfiguration: { Status: 'Enabled' },
    PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
  });
  t.equal(bucket.DeletionPolicy, 'Retain');
  const policy = ofType('AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === bucketId)![1];
  const statements = policy.Properties.PolicyDocument.Statement as Json[];
  const deny = (sid: string) => statements.find((s) => s.Sid === sid)!;
  t.match(deny('AnchorsAreNeverDeleted'), { Effect: 'Deny', Principal: { AWS: '*' } });
  t.same([deny('AnchorsAreNeverDeleted').Action].flat().sort(), ['s3:BypassGovernanceRetention', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutBucketObjectLockConfiguration']);
  t.match(deny('AnchorsAreNeverReplaced'), { Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:PutObject', Condition: { Null: { 's3:if-none-match': 'true' } } });
  t.ok(statements.some((s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false'), 'TLS only');

  const serverPolicy = ofType('AWS::IAM::Policy').find(([, p]) => (p.Properties.Roles as Json[]).some((r) => r.Ref === taskRoleId))![1];
  const s3Statements = (serverPolicy.Properties.PolicyDocument.Statement as Json[]).filter((s) => [s.Action].flat().some((a: string) => a.startsWith('s3:')));
  t.same(s3Statements.map((s) => [s.Sid, [s.Action].flat()]), [['SshcaAnchorObjects', ['s3:PutObject', 's3:GetObject', 's3:PutObjectRetention']], ['SshcaAnchorList', ['s3:ListBucket']]], 'write, read and retain anchors; list; never delete');
  t.match(JSON.stringify(s3Statements[0]!.Resource), new RegExp(`/${ANCHOR_PREFIX}\\*`), 'objects under the prefix only');
  t.same(s3Statements[1]!.Condition, { StringLike: { 's3:prefix': `${ANCHOR_PREFIX}*` } }, 'listing under the prefix only');

  const container = ofType('AWS::ECS::TaskDefinition')[0]![1].Properties.ContainerDefinitions[0];
  const env = Object.fromEntries((container.Environment as Array<{ Name: string; Value: unknown }>).map((e) => [e.Name, e.Value]));
  t.same(env.SSHCA_AUDIT_ANCHOR, { 'Fn::Join': ['', ['s3://', { Ref: bucketId }, `/${ANCHOR_PREFIX}`]] }, 'SSHCA_AUDIT_ANCHOR names the bucket and prefix');
  t.equal(env.SSHCA_AUDIT_ANCHOR_RETENTION_DAYS, '400');
});

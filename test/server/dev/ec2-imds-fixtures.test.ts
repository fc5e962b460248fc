// The AWS stand-ins host certificates are tested against, held to the real
// SDK clients: EC2 DescribeInstances (answers, visibility, errors, faults),
// STS AssumeRole into a member account, IMDSv2 (tokens, refusals, the
// identity credentials document) and the instance identity role session STS
// reports for those credentials. If these drift from AWS, every host
// certificate test above them proves less.
import { DescribeInstancesCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import t, { type Test } from 'tap';
import { STS_ACCEPT, STS_BODY, STS_CONTENT_TYPE } from '../../../protocol/identity-token.js';
import { ec2DescribeInstances, type DevInstance } from '../../../server/dev/ec2-describe-instances.js';
import { IDENTITY_CREDENTIALS_PATH, IMDS_TOKEN_PATH, ImdsEndpoint } from '../../../server/dev/imds-endpoint.js';
import { FIXTURE_INSTANCES, NAME_TAG, OTHER_REGION, VPC_A, VPC_B, startEc2Fixture, type Ec2Fixture } from '../../fixtures/ec2-fixture.js';
import { startImdsFixture } from '../../fixtures/imds-fixture.js';
import { ACCOUNT, FIXTURE_REGION, OTHER_ACCOUNT, ec2ReadRoleArn, startStsFixture, type FixturePrincipal, type StsFixture } from '../../fixtures/sts-fixture.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

async function fixtures(t: Test) {
  const sts = await startStsFixture(t);
  const ec2 = await startEc2Fixture(t, { sts });
  return { sts, ec2 };
}

/** The one instance DescribeInstances answers for `id`. */
async function describe(ec2: Ec2Fixture, principal: Parameters<Ec2Fixture['client']>[0], id: string, region?: string): Promise<Instance> {
  const out = await ec2.client(principal, region ? { region } : {}).send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  const instances = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
  if (instances.length !== 1) throw new Error(`expected one instance, got ${instances.length}`);
  return instances[0]!;
}

/** Rejects with the SDK error's name (EC2's code), or resolves to 'ok'. */
async function errorName(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as Error).name;
  }
}

/** A request signed by AWS's own signer with exactly this body, sent as is. */
async function signedPost(url: string, service: string, principal: FixturePrincipal, body: string, extra: Record<string, string> = {}, region = FIXTURE_REGION) {
  const u = new URL(url);
  const signer = new SignatureV4({
    credentials: { accessKeyId: principal.accessKeyId, secretAccessKey: principal.secretAccessKey, ...(principal.sessionToken ? { sessionToken: principal.sessionToken } : {}) },
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
  });
  const request = new HttpRequest({ method: 'POST', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: u.pathname, headers: { host: u.host, 'content-type': STS_CONTENT_TYPE, ...extra }, body });
  const signed = await signer.sign(request);
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name !== 'host'));
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, text: await res.text() };
}

const xmlCode = (xml: string) => /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];

t.test('DescribeInstances through the real SDK: every field of a running instance', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const out = await ec2.client(sts.principals.ec2Reader).send(new DescribeInstancesCommand({ InstanceIds: [FIXTURE_INSTANCES.running.instanceId] }));
  t.equal(out.Reservations?.length, 1);
  t.match(out.Reservations![0], { ReservationId: /^r-/, OwnerId: ACCOUNT });
  const i = out.Reservations![0]!.Instances![0]!;
  t.match(i, {
    InstanceId: 'i-0123456789abcdef0',
    State: { Code: 16, Name: 'running' },
    PrivateDnsName: 'ip-10-0-1-10.ec2.internal',
    PublicDnsName: 'ec2-203-0-113-10.compute-1.amazonaws.com',
    PrivateIpAddress: '10.0.1.10',
    PublicIpAddress: '203.0.113.10',
    VpcId: VPC_A,
    SubnetId: FIXTURE_INSTANCES.running.subnetId,
  });
  t.equal(i.NetworkInterfaces?.length, 1);
  t.same(
    i.NetworkInterfaces![0]!.PrivateIpAddresses?.map((a) => [a.PrivateIpAddress, a.Primary]),
    [['10.0.1.10', true], ['10.0.1.11', false]],
    'primary and secondary private IPv4',
  );
  t.same(i.NetworkInterfaces![0]!.Ipv6Addresses?.map((a) => a.Ipv6Address), ['2600:1f18:abcd:1200::10']);
  t.same(i.NetworkInterfaces![0]!.Association, { PublicIp: '203.0.113.10', PublicDnsName: 'ec2-203-0-113-10.compute-1.amazonaws.com', IpOwnerId: 'amazon' });
  t.same(
    Object.fromEntries((i.Tags ?? []).map((tag) => [tag.Key, tag.Value])),
    { Name: 'web-1', Environment: 'prod', [NAME_TAG]: 'web-1.corp.example.com, web.internal' },
  );
  t.same(ec2.calls, [{ account: ACCOUNT, region: FIXTURE_REGION, instanceIds: ['i-0123456789abcdef0'] }], 'the fixture records who asked where');
});

t.test('each state, as EC2 shows it', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const states: Array<[keyof typeof FIXTURE_INSTANCES, string, number]> = [
    ['pending', 'pending', 0],
    ['running', 'running', 16],
    ['shuttingDown', 'shutting-down', 32],
    ['terminated', 'terminated', 48],
    ['stopping', 'stopping', 64],
    ['stopped', 'stopped', 80],
  ];
  for (const [name, stateName, code] of states) {
    const i = await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES[name].instanceId);
    t.same(i.State, { Code: code, Name: stateName }, name);
  }
  const stopped = await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES.stopping.instanceId);
  t.equal(stopped.PublicIpAddress, undefined, 'a stopping instance has released its public address');
  t.equal(stopped.PublicDnsName, '', 'and EC2 sends an empty public DNS name');
  t.equal(stopped.PrivateIpAddress, '10.0.1.21', 'but keeps its private one');
  const terminated = await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES.terminated.instanceId);
  t.match(terminated, { PrivateDnsName: '', PrivateIpAddress: undefined, VpcId: undefined, SubnetId: undefined }, 'a terminated instance has no network');
  t.same(terminated.NetworkInterfaces, []);
  const short = await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES.shortId.instanceId);
  t.equal(short.InstanceId, 'i-1a2b3c4d', 'an 8-digit id');
  const untagged = await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES.untagged.instanceId);
  t.match(untagged, { VpcId: VPC_B, Tags: undefined }, 'no tagSet for an untagged instance');
  t.same(untagged.NetworkInterfaces![0]!.Ipv6Addresses, [], 'no IPv6');
  t.equal((await describe(ec2, sts.principals.ec2Reader, FIXTURE_INSTANCES.devVpcB.instanceId)).Tags?.[0]?.Value, 'dev');

  const added = ec2.addInstance({ state: 'pending', vpcId: VPC_B, tags: { Environment: 'staging' } });
  t.match(await describe(ec2, sts.principals.ec2Reader, added.instanceId), { State: { Name: 'pending' }, VpcId: VPC_B, Tags: [{ Key: 'Environment', Value: 'staging' }] }, 'an instance added by a test');
  ec2.setState(added.instanceId, 'running');
  t.equal((await describe(ec2, sts.principals.ec2Reader, added.instanceId)).State?.Name, 'running', 'its state changed');
  ec2.removeInstance(added.instanceId);
  t.equal(await errorName(describe(ec2, sts.principals.ec2Reader, added.instanceId)), 'InvalidInstanceID.NotFound', 'and it is gone');
});

t.test('unknown, malformed, other account, other region: as EC2 refuses them', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const reader = sts.principals.ec2Reader;
  const describeIds = (ids: string[], principal = reader, region?: string) => ec2.client(principal, region ? { region } : {}).send(new DescribeInstancesCommand({ InstanceIds: ids }));
  t.equal(await errorName(describeIds(['i-0fedcba9876543210'])), 'InvalidInstanceID.NotFound', 'unknown id');
  t.equal(await errorName(describeIds([FIXTURE_INSTANCES.running.instanceId, 'i-0fedcba9876543210'])), 'InvalidInstanceID.NotFound', 'one unknown among known ones fails the call');
  for (const bad of ['i-0123', 'i-0123456789ABCDEF0', 'ami-0123456789abcdef0', 'i-0123456789abcdef0x']) {
    t.equal(await errorName(describeIds([bad])), 'InvalidInstanceID.Malformed', bad);
  }
  t.equal(await errorName(describeIds([FIXTURE_INSTANCES.otherAccount.instanceId])), 'InvalidInstanceID.NotFound', "another account's instance is unknown");
  t.equal((await describe(ec2, sts.principals.otherAccount, FIXTURE_INSTANCES.otherAccount.instanceId)).VpcId, FIXTURE_INSTANCES.otherAccount.vpcId, 'to that account it is known');
  t.equal(await errorName(describeIds([FIXTURE_INSTANCES.otherRegion.instanceId])), 'InvalidInstanceID.NotFound', 'another region is unknown here');
  t.equal((await describe(ec2, reader, FIXTURE_INSTANCES.otherRegion.instanceId, OTHER_REGION)).InstanceId, FIXTURE_INSTANCES.otherRegion.instanceId, 'and known in its region');
  const all = await ec2.client(reader).send(new DescribeInstancesCommand({}));
  const ids = all.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId));
  t.ok(ids.includes(FIXTURE_INSTANCES.stopped.instanceId) && !ids.includes(FIXTURE_INSTANCES.otherAccount.instanceId) && !ids.includes(FIXTURE_INSTANCES.otherRegion.instanceId), 'without ids: the account and region only');
  const err = await ec2.client(reader).send(new DescribeInstancesCommand({ InstanceIds: ['i-0fedcba9876543210'] })).catch((e: unknown) => e as { $metadata: { httpStatusCode: number; requestId: string } });
  t.match(err, { $metadata: { httpStatusCode: 400, requestId: /^[0-9a-f-]{36}$/ } }, 'status and request id as EC2 sends them');
});

t.test('SigV4 is verified: wrong secret, unknown key, missing session token, identity credentials', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const id = FIXTURE_INSTANCES.running.instanceId;
  const reader = sts.principals.ec2Reader;
  t.equal(await errorName(describe(ec2, { ...reader, secretAccessKey: `${reader.secretAccessKey.slice(1)}x` }, id)), 'AuthFailure', 'wrong secret');
  t.equal(await errorName(describe(ec2, { ...reader, accessKeyId: 'AKIAAAAAAAAAAAAAAAAA' }, id)), 'AuthFailure', 'unknown key');
  const role = sts.principals.roleSession;
  t.equal((await describe(ec2, role, id)).InstanceId, id, 'control: a role session with its token');
  t.equal(await errorName(describe(ec2, { accessKeyId: role.accessKeyId, secretAccessKey: role.secretAccessKey }, id)), 'AuthFailure', 'session token missing');
  t.equal(await errorName(describe(ec2, { ...role, sessionToken: `${role.sessionToken}x` }, id)), 'AuthFailure', 'session token wrong');
  t.equal(await errorName(describe(ec2, sts.mintInstanceIdentity(id), id)), 'AuthFailure', 'instance identity credentials are for GetCallerIdentity only');
  t.equal(await errorName(describe(ec2, reader, id, 'xx-nowhere')), 'AuthFailure', 'a region no endpoint has');
  t.equal(ec2.calls.length, 1, 'only the control was answered');
});

t.test('faults on demand, and what the endpoint refuses', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const id = FIXTURE_INSTANCES.running.instanceId;
  const reader = sts.principals.ec2Reader;
  const cases: Array<[Ec2Fixture['fault'], string, number]> = [
    ['throttle', 'RequestLimitExceeded', 503],
    ['unauthorized', 'UnauthorizedOperation', 403],
    ['internal-error', 'InternalError', 500],
  ];
  for (const [fault, code, status] of cases) {
    ec2.fault = fault;
    const err = (await ec2.client(reader).send(new DescribeInstancesCommand({ InstanceIds: [id] })).catch((e: unknown) => e)) as { name: string; $metadata: { httpStatusCode: number } };
    t.match(err, { name: code, $metadata: { httpStatusCode: status } }, fault!);
  }
  ec2.fault = 'slow';
  t.equal(await errorName(ec2.client(reader, { requestTimeoutMs: 300 }).send(new DescribeInstancesCommand({ InstanceIds: [id] }))), 'TimeoutError', 'slow: the client gives up');
  ec2.fault = null;

  const post = (body: string) => signedPost(ec2.url, 'ec2', reader, body);
  const answers: Array<[string, string, number]> = [
    ['Action=RunInstances&Version=2016-11-15', 'InvalidAction', 400],
    ['Action=DescribeInstances&Version=2014-01-01', 'NoSuchVersion', 400],
    ['Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-x', 'UnknownParameter', 400],
    [`Action=DescribeInstances&Version=2016-11-15&InstanceId.1=${id}&InstanceId.1=i-0fedcba9876543210`, 'InvalidParameterCombination', 400],
    [`Action=DescribeInstances&Version=2016-11-15&InstanceId.1=${id}&DryRun=true`, 'DryRunOperation', 412],
  ];
  for (const [body, code, status] of answers) {
    const res = await post(body);
    t.same([res.status, xmlCode(res.text)], [status, code], body);
    t.match(res.text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>/, 'EC2 error document');
  }
  const control = await post(`Action=DescribeInstances&Version=2016-11-15&InstanceId.1=${id}`);
  t.equal(control.status, 200, 'control: the same request, well formed');
  t.match(control.text, '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">');
  const tampered = await fetch(ec2.url, { method: 'POST', headers: { 'content-type': STS_CONTENT_TYPE }, body: `Action=DescribeInstances&Version=2016-11-15` });
  t.same([tampered.status, xmlCode(await tampered.text())], [401, 'AuthFailure'], 'unsigned');
});

t.test('the pure handler: expired credentials, tag values that look like XML', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const hostile = ec2.addInstance({
    tags: { Environment: 'prod', Note: `</value></item><item><key>Environment</key><value>dev`, [NAME_TAG]: `a&b "c" 'd' <e>`, 'k<&>': 'v' },
  });
  const i = await describe(ec2, sts.principals.ec2Reader, hostile.instanceId);
  t.same(
    Object.fromEntries((i.Tags ?? []).map((tag) => [tag.Key, tag.Value])),
    hostile.tags,
    'user data comes back as it went in: no extra tag, nothing unescaped',
  );

  t.throws(() => ec2.addInstance({ tags: { Note: 'bell\u0007' } }), 'a tag value XML cannot carry is refused when added');
  const odd = await signedPost(ec2.url, 'ec2', sts.principals.ec2Reader, 'Action=Run%01&Version=2016-11-15');
  t.same([odd.status, xmlCode(odd.text)], [400, 'InvalidAction'], 'a control character in the request still gets an error document');

  // Expired temporary credentials: signed correctly, refused as EC2 does.
  const reader = sts.principals.ec2Reader;
  const body = `Action=DescribeInstances&Version=2016-11-15&InstanceId.1=${FIXTURE_INSTANCES.running.instanceId}`;
  const u = new URL(ec2.url);
  const signer = new SignatureV4({ credentials: reader, region: FIXTURE_REGION, service: 'ec2', sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: '/', headers: { host: u.host, 'content-type': STS_CONTENT_TYPE }, body }));
  const received = { method: 'POST', url: '/', headers: signed.headers, body: Buffer.from(body) };
  const now = new Date();
  const instances: DevInstance[] = [FIXTURE_INSTANCES.running];
  const options = (expiresAt?: Date) => ({ now, region: FIXTURE_REGION, instances, lookup: () => ({ credential: reader, account: ACCOUNT, ...(expiresAt ? { expiresAt } : {}) }) });
  t.equal(ec2DescribeInstances(received, options()).status, 200, 'control');
  const expired = ec2DescribeInstances(received, options(new Date(now.getTime() - 1000)));
  t.same([expired.status, xmlCode(expired.body)], [400, 'RequestExpired'], 'expired');
  const late = ec2DescribeInstances(received, { ...options(), now: new Date(now.getTime() + 16 * 60_000) });
  t.same([late.status, xmlCode(late.body)], [401, 'AuthFailure'], 'signed more than 15 minutes ago');
  const otherRegion = ec2DescribeInstances(received, { ...options(), region: OTHER_REGION });
  t.same([otherRegion.status, xmlCode(otherRegion.body)], [401, 'AuthFailure'], 'signed for another region than the endpoint is');
});

t.test('AssumeRole into a member account, then that account is what EC2 shows', async (t) => {
  const { sts, ec2 } = await fixtures(t);
  const target = FIXTURE_INSTANCES.otherAccount.instanceId;
  const reader = sts.principals.ec2Reader;
  t.equal(await errorName(describe(ec2, reader, target)), 'InvalidInstanceID.NotFound', 'control: not visible with the server credentials');

  const credentials = fromTemporaryCredentials({
    params: { RoleArn: ec2ReadRoleArn(OTHER_ACCOUNT), RoleSessionName: 'sshca-host-lookup' },
    masterCredentials: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
    clientConfig: { region: FIXTURE_REGION, endpoint: sts.url },
  });
  const assumedClient = ec2.client(await credentials());
  const out = await assumedClient.send(new DescribeInstancesCommand({ InstanceIds: [target] }));
  t.equal(out.Reservations?.[0]?.Instances?.[0]?.InstanceId, target, 'the member account instance is found');
  t.equal(out.Reservations?.[0]?.OwnerId, OTHER_ACCOUNT);
  t.match(sts.assumed, [{ roleArn: ec2ReadRoleArn(OTHER_ACCOUNT), roleSessionName: 'sshca-host-lookup', callerArn: reader.arn, principal: { account: OTHER_ACCOUNT } }]);
  t.equal(await errorName(assumedClient.send(new DescribeInstancesCommand({ InstanceIds: [FIXTURE_INSTANCES.running.instanceId] }))), 'InvalidInstanceID.NotFound', "and the server's own account is not");
  // The provider handed to the EC2 client, as the server would: the client resolves it itself.
  const viaProvider = new EC2Client({
    region: FIXTURE_REGION,
    endpoint: ec2.url,
    maxAttempts: 1,
    credentials: fromTemporaryCredentials({
      params: { RoleArn: ec2ReadRoleArn(OTHER_ACCOUNT), RoleSessionName: 'sshca-host-lookup-2' },
      masterCredentials: { accessKeyId: reader.accessKeyId, secretAccessKey: reader.secretAccessKey },
      clientConfig: { region: FIXTURE_REGION, endpoint: sts.url },
    }),
  });
  t.equal((await viaProvider.send(new DescribeInstancesCommand({ InstanceIds: [target] }))).Reservations?.[0]?.OwnerId, OTHER_ACCOUNT, 'through the provider');

  const client = new STSClient({ region: FIXTURE_REGION, endpoint: sts.url, credentials: reader, maxAttempts: 1 });
  const direct = await client.send(new AssumeRoleCommand({ RoleArn: ec2ReadRoleArn(ACCOUNT), RoleSessionName: 'direct', DurationSeconds: 900 }));
  t.match(direct, {
    Credentials: { AccessKeyId: /^ASIA[A-Z2-7]{16}$/, SecretAccessKey: String, SessionToken: String, Expiration: Date },
    AssumedRoleUser: { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/SshcaEc2Read/direct`, AssumedRoleId: /^AROA[A-Z2-7]{16}:direct$/ },
  }, 'the XML answer parses as STS');
  const lifetime = direct.Credentials!.Expiration!.getTime() - Date.now();
  t.ok(lifetime > 880_000 && lifetime <= 900_000, 'DurationSeconds honoured');
  const refused = (p: Promise<unknown>) => p.then(() => 'ok', (e: { name: string; $metadata?: { httpStatusCode?: number } }) => `${e.name} ${e.$metadata?.httpStatusCode}`);
  t.equal(await refused(client.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OTHER_ACCOUNT}:role/Admin`, RoleSessionName: 'x1' }))), 'AccessDenied 403', 'a role not granted');
  t.equal(await refused(client.send(new AssumeRoleCommand({ RoleArn: ec2ReadRoleArn(ACCOUNT), RoleSessionName: 'x' }))), 'ValidationError 400', 'session name too short');
  const identity = sts.mintInstanceIdentity(FIXTURE_INSTANCES.running.instanceId);
  const asInstance = new STSClient({ region: FIXTURE_REGION, endpoint: sts.url, credentials: { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey, sessionToken: identity.sessionToken! }, maxAttempts: 1 });
  t.equal(await refused(asInstance.send(new AssumeRoleCommand({ RoleArn: ec2ReadRoleArn(ACCOUNT), RoleSessionName: 'x1' }))), 'AccessDenied 403', 'instance identity credentials cannot assume roles');
  const wrongKey = new STSClient({ region: FIXTURE_REGION, endpoint: sts.url, credentials: { ...reader, secretAccessKey: 'wrong' }, maxAttempts: 1 });
  t.equal(await refused(wrongKey.send(new AssumeRoleCommand({ RoleArn: ec2ReadRoleArn(ACCOUNT), RoleSessionName: 'x1' }))), 'SignatureDoesNotMatch 403', 'SigV4 verified');
  t.equal(sts.assumed.length, 3, 'only the three granted');
  t.equal(sts.counts.sts, 0, 'AssumeRole is counted apart from GetCallerIdentity');
});

/** GetCallerIdentity as the server sends it (JSON answer), signed by AWS's signer. */
async function callerIdentity(sts: StsFixture, principal: FixturePrincipal) {
  const res = await signedPost(sts.url, 'sts', principal, STS_BODY, { accept: STS_ACCEPT });
  return { status: res.status, json: JSON.parse(res.text) as { GetCallerIdentityResponse?: { GetCallerIdentityResult: Record<string, string> }; Error?: { Code: string } } };
}

t.test('instance identity role sessions as STS reports them', async (t) => {
  const sts = await startStsFixture(t);
  const id = FIXTURE_INSTANCES.running.instanceId;
  const identity = sts.mintInstanceIdentity(id);
  const res = await callerIdentity(sts, identity);
  t.equal(res.status, 200);
  const result = res.json.GetCallerIdentityResponse!.GetCallerIdentityResult;
  t.equal(result.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/aws:ec2-instance/${id}`, 'the exact ARN');
  t.match(result.UserId, new RegExp(`^AROA[A-Z2-7]{16}:${id}$`), 'role id and instance id');
  t.equal(result.Account, ACCOUNT);
  const again = await callerIdentity(sts, sts.mintInstanceIdentity('i-0aaaaaaaaaaaaaaa1'));
  t.equal(again.json.GetCallerIdentityResponse!.GetCallerIdentityResult.UserId!.split(':')[0], result.UserId!.split(':')[0], 'one role id per account');
  const other = await callerIdentity(sts, sts.mintInstanceIdentity(FIXTURE_INSTANCES.otherAccount.instanceId, OTHER_ACCOUNT));
  t.equal(other.json.GetCallerIdentityResponse!.GetCallerIdentityResult.Arn, `arn:aws:sts::${OTHER_ACCOUNT}:assumed-role/aws:ec2-instance/${FIXTURE_INSTANCES.otherAccount.instanceId}`);

  const lookalike = await callerIdentity(sts, sts.principals.instanceLookalike);
  t.match(lookalike.json.GetCallerIdentityResponse!.GetCallerIdentityResult, { Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/WebServers/i-0123456789abcdef0`, UserId: /^AROA[A-Z2-7]{16}:i-0123456789abcdef0$/ }, 'the look-alike: an ordinary role session');

  const expired = await callerIdentity(sts, sts.mintInstanceIdentity(id, ACCOUNT, { expiresAt: new Date(Date.now() - 1000) }));
  t.same([expired.status, expired.json.Error?.Code], [400, 'ExpiredToken'], 'expired credentials');
  const noToken = await callerIdentity(sts, { ...identity, sessionToken: undefined } as FixturePrincipal);
  t.same([noToken.status, noToken.json.Error?.Code], [403, 'InvalidClientTokenId'], 'without the session token');
});

/** An HTTP request to IMDS with exactly these headers. */
async function imds(base: string, method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method, headers, signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text(), ttl: res.headers.get('x-aws-ec2-metadata-token-ttl-seconds') };
}

t.test('IMDSv2: a token for every read, its bounds, and X-Forwarded-For refused', async (t) => {
  const sts = await startStsFixture(t);
  let now = Date.now();
  const clock = { now: () => new Date(now) };
  const fixture = await startImdsFixture(t, { sts, clock });
  const get = (path: string, token?: string) => imds(fixture.url, 'GET', path, token === undefined ? {} : { 'x-aws-ec2-metadata-token': token });
  const put = (headers: Record<string, string>) => imds(fixture.url, 'PUT', IMDS_TOKEN_PATH, headers);

  t.equal((await get('/latest/meta-data/instance-id')).status, 401, 'no token: IMDSv1 is off');
  t.equal((await get('/latest/meta-data/instance-id', 'AAAA')).status, 401, 'a made-up token');
  for (const ttl of ['0', '21601', '-1', '1.5', 'abc', '']) t.equal((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': ttl })).status, 400, `ttl ${JSON.stringify(ttl)}`);
  t.equal((await put({})).status, 400, 'ttl missing');
  t.equal((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' })).status, 403, 'a forwarded token request');
  t.equal((await imds(fixture.url, 'GET', IMDS_TOKEN_PATH)).status, 405, 'GET on the token path');
  t.same((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '21600' })).ttl, '21600', 'the maximum ttl');

  const issued = await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '1' });
  t.same([issued.status, issued.ttl], [200, '1'], 'the minimum ttl, echoed');
  t.equal((await get('/latest/meta-data/instance-id', issued.body)).body, fixture.instanceId, 'instance id');
  t.equal((await get('/latest/meta-data/placement/region', issued.body)).body, FIXTURE_REGION, 'region');
  t.equal((await get('/latest/meta-data/', issued.body)).body, 'identity-credentials/\ninstance-id\nplacement/', 'a directory lists its entries');
  t.equal((await get('/latest/meta-data/iam/security-credentials/', issued.body)).status, 404, 'no instance profile here');
  const forged = Buffer.from(issued.body, 'base64url');
  forged.writeUInt8(forged.readUInt8(20) ^ 1, 20);
  t.equal((await get('/latest/meta-data/instance-id', forged.toString('base64url'))).status, 401, 'a token with its expiry changed');
  now += 1000;
  t.equal((await get('/latest/meta-data/instance-id', issued.body)).status, 401, 'expired token');

  const other = await startImdsFixture(t, { sts, clock });
  const foreign = await imds(other.url, 'PUT', IMDS_TOKEN_PATH, { 'x-aws-ec2-metadata-token-ttl-seconds': '60' });
  t.equal((await get('/latest/meta-data/instance-id', foreign.body)).status, 401, "another IMDS's token");
});

t.test('IMDS identity credentials: the document, accepted by STS, expired on demand, token PUTs lost', async (t) => {
  const sts = await startStsFixture(t);
  const fixture = await startImdsFixture(t, { sts });
  const token = (await imds(fixture.url, 'PUT', IMDS_TOKEN_PATH, { 'x-aws-ec2-metadata-token-ttl-seconds': '300' })).body;
  const read = async () => JSON.parse((await imds(fixture.url, 'GET', IDENTITY_CREDENTIALS_PATH, { 'x-aws-ec2-metadata-token': token })).body) as Record<string, string>;
  const doc = await read();
  t.same(Object.keys(doc), ['Code', 'LastUpdated', 'Type', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration'], 'the fields IMDS sends, in its order');
  t.match(doc, { Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: /^ASIA/, LastUpdated: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, Expiration: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ });
  t.ok(Date.parse(doc.Expiration!) > Date.now() + 3600_000, 'hours ahead');
  t.equal((await imds(fixture.url, 'GET', '/latest/meta-data/identity-credentials/ec2/security-credentials/', { 'x-aws-ec2-metadata-token': token })).body, 'ec2-instance');
  t.match(JSON.parse((await imds(fixture.url, 'GET', '/latest/meta-data/identity-credentials/ec2/info', { 'x-aws-ec2-metadata-token': token })).body), { Code: 'Success', AccountId: ACCOUNT });

  const principal = { accessKeyId: doc.AccessKeyId!, secretAccessKey: doc.SecretAccessKey!, sessionToken: doc.Token!, arn: '', account: '', userId: '' };
  const who = await callerIdentity(sts, principal);
  t.equal(who.json.GetCallerIdentityResponse?.GetCallerIdentityResult.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/aws:ec2-instance/${fixture.instanceId}`, 'STS knows the served credentials');

  const previous = doc.AccessKeyId;
  fixture.rotate();
  t.not((await read()).AccessKeyId, previous, 'rotated');

  fixture.expiredCredentials = true;
  const stale = await read();
  t.ok(Date.parse(stale.Expiration!) < Date.now(), 'an Expiration in the past');
  t.equal(fixture.principal.accessKeyId, stale.AccessKeyId);
  const refused = await callerIdentity(sts, { ...principal, accessKeyId: stale.AccessKeyId!, secretAccessKey: stale.SecretAccessKey!, sessionToken: stale.Token! });
  t.same([refused.status, refused.json.Error?.Code], [400, 'ExpiredToken'], 'and STS refuses them');
  fixture.expiredCredentials = false;

  fixture.tokenRefusal = 'drop';
  await t.rejects(imds(fixture.url, 'PUT', IMDS_TOKEN_PATH, { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }), 'connection dropped');
  fixture.tokenRefusal = 'hang';
  await t.rejects(fetch(`${fixture.url}${IMDS_TOKEN_PATH}`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' }, signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' }, 'never answered');
  t.equal((await imds(fixture.url, 'GET', '/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': token })).status, 200, 'reads with a token held from before still work');
  t.equal(fixture.counts.tokenPuts, 3);
});

t.test('the IMDS handler mounted under a prefix, as the dev server does', (t) => {
  let now = 1_700_000_000_000;
  const endpoint = new ImdsEndpoint({
    instance: { instanceId: 'i-0123456789abcdef0', region: 'us-east-1', account: '000000000000' },
    credentials: () => undefined,
    clock: { now: () => new Date(now) },
    prefix: '/dev/imds/',
  });
  const token = endpoint.handle({ method: 'PUT', url: '/dev/imds/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '10' } });
  t.equal(token.status, 200);
  const get = (url: string, headers: Record<string, string | string[]> = { 'x-aws-ec2-metadata-token': token.body }) => endpoint.handle({ method: 'GET', url, headers });
  t.same(get('/dev/imds/latest/meta-data/instance-id'), { status: 200, headers: { 'content-type': 'text/plain' }, body: 'i-0123456789abcdef0' });
  t.equal(get('/dev/imds/latest/meta-data/instance-id?x=1').body, 'i-0123456789abcdef0', 'a query is ignored');
  t.equal(get('/latest/meta-data/instance-id').status, 404, 'outside the prefix');
  t.equal(get('/dev/imdsx/latest/meta-data/instance-id').status, 404, 'a prefix look-alike');
  t.equal(get(`/dev/imds${IDENTITY_CREDENTIALS_PATH}`).status, 404, 'no credentials yet: 404');
  t.equal(get('/dev/imds/latest/meta-data/instance-id', { 'x-aws-ec2-metadata-token': [token.body, token.body] }).status, 401, 'a repeated token header');
  t.equal(endpoint.handle({ method: 'POST', url: '/dev/imds/latest/meta-data/instance-id', headers: {} }).status, 405);
  t.equal(endpoint.handle({ method: 'PUT', url: '/dev/imds/latest/api/token', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ['10', '20'] } }).status, 400, 'a repeated ttl header');
  now += 10_000;
  t.equal(get('/dev/imds/latest/meta-data/instance-id').status, 401, 'expired exactly at its ttl');
  t.end();
});

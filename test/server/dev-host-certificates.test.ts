// The embedded default issues host certificates the way production does
// (issue 12): the dev instance's identity role credentials come from the dev
// server's IMDSv2 endpoint, the dev STS vouches for them, and the server's EC2
// client (the AWS SDK) asks the dev server's own EC2 endpoint.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { DEV_INSTANCE_ID } from '../../server/dev/dev-instance.js';
import { previousDevPolicy } from '../../server/dev/dev-environment.js';
import { signToken, startDevServer } from '../fixtures/dev-server.js';
import { generateUserKey, keygenList, needsOpenSsh } from '../fixtures/openssh.js';

t.test('dev mode: IMDSv2 → identity role token → POST /v1/certs/host → a host certificate for this machine', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const imds = `${dev.url}/dev/imds`;
  t.equal((await fetch(`${imds}/latest/meta-data/instance-id`)).status, 401, 'IMDSv2 only: no token, no metadata');
  const token = await (await fetch(`${imds}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
  const get = async (path: string) => (await fetch(`${imds}/latest/meta-data/${path}`, { headers: { 'x-aws-ec2-metadata-token': token } })).text();
  t.equal(await get('instance-id'), DEV_INSTANCE_ID);
  const region = await get('placement/region');
  const creds = JSON.parse(await get('identity-credentials/ec2/security-credentials/ec2-instance')) as Record<string, string>;
  t.equal(creds.Type, 'AWS-HMAC');
  const hostKey = generateUserKey(t.testdir(), 'ed25519', 'host');
  const request = async (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, path = '/v1/certs/host') => {
    const nonce = `n${Math.random().toString(36).slice(2, 12)}`;
    const body = JSON.stringify(path === '/v1/certs/host' ? { publicKey: hostKey.line, region, nonce } : { publicKey: hostKey.line, nonce });
    const auth = await signToken(dev, body, { path, credentials });
    return fetch(`${dev.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${auth}` }, body });
  };
  const instanceCreds = { accessKeyId: creds.AccessKeyId!, secretAccessKey: creds.SecretAccessKey!, sessionToken: creds.Token! };
  const r = await request(instanceCreds);
  const answer = (await r.json()) as { certificate: string; principals: string[] };
  t.equal(r.status, 201, JSON.stringify(answer));
  const certPath = join(t.testdir(), 'host-cert.pub');
  writeFileSync(certPath, `${answer.certificate}\n`);
  const listing = keygenList(certPath);
  t.match(listing.type, /host certificate/);
  t.same(listing.principals, [DEV_INSTANCE_ID, 'localhost', '127.0.0.1', '::1'], 'the dev instance is this machine');
  const hostCa = await (await fetch(`${dev.url}/v1/ca/host.pub`)).text();
  t.equal(listing.signingCa.split(' ')[1], fingerprintOf(parsePublicKeyLine(hostCa.trim()).blob), 'signed by the host CA the dev server publishes');
  const refused = await request(dev.credentials);
  t.equal(refused.status, 403, 'the dev user is no instance');
  t.equal(((await refused.json()) as { code: string }).code, 'POLICY_NOT_INSTANCE_IDENTITY');
  const asUser = await request(instanceCreds, '/v1/certs/user');
  t.equal(((await asUser.json()) as { code: string }).code, 'POLICY_INSTANCE_IDENTITY', 'and the instance is no user');
});

t.test('a dev policy an earlier version generated gains the hosts section; an edited one is left alone', async (t) => {
  const dir = t.testdir({ 'policy.yaml': previousDevPolicy('arn:aws:iam::000000000000:user/alice') });
  await startDevServer(t, { dataDir: dir });
  const { readFileSync } = await import('node:fs');
  t.match(readFileSync(join(dir, 'policy.yaml'), 'utf8'), /^hosts:$/m);
  const edited = t.testdir({ 'policy.yaml': `${previousDevPolicy('arn:aws:iam::000000000000:user/alice')}# mine\n` });
  await startDevServer(t, { dataDir: edited });
  t.notMatch(readFileSync(join(edited, 'policy.yaml'), 'utf8'), /^hosts:$/m);
});

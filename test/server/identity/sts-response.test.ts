// What the authenticator does with each kind of STS answer (rule 6, 7). The
// transport is injected: these are STS's answers, not the network's.
import t from 'tap';
import { IdentityTokenSigner } from '../../../client/identity-token-signer.js';
import { systemClock } from '../../../server/clock.js';
import { StsAuthenticator } from '../../../server/identity/sts-authenticator.js';
import { StsEndpointAllowlist } from '../../../server/identity/sts-endpoints.js';
import type { StsRequest, StsResponse } from '../../../server/identity/sts-transport.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const ENDPOINT = 'https://sts.eu-west-1.amazonaws.com/';
const body = '{"publicKey":"x"}';

async function attempt(answer: (req: StsRequest) => StsResponse | Promise<StsResponse>) {
  const sent: StsRequest[] = [];
  const used = new Set<string>();
  const authenticator = new StsAuthenticator({
    audience: 'aud-1',
    endpoints: new StsEndpointAllowlist([{ url: ENDPOINT, region: 'eu-west-1', partition: 'aws' }]),
    replayCache: { claim: async (k) => !used.has(k) && !!used.add(k) },
    transport: async (req) => {
      sent.push(req);
      return answer(req);
    },
    clock: systemClock,
  });
  const token = await new IdentityTokenSigner({ credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' } }).sign({
    endpoint: ENDPOINT,
    audience: 'aud-1',
    method: 'POST',
    pathAndQuery: '/v1/certs/user',
    body,
  });
  const result = authenticator.authenticate({ authorization: [`SSHCA-AWS4 ${token}`], method: 'POST', pathAndQuery: '/v1/certs/user', body: Buffer.from(body) });
  return { result, sent };
}

const json = (status: number, value: unknown): StsResponse => ({ status, contentType: 'application/json', body: Buffer.from(JSON.stringify(value)) });
const identity = (Arn: string, Account = '123456789012', UserId = 'AIDAEXAMPLEEXAMPLE12') => json(200, { GetCallerIdentityResponse: { GetCallerIdentityResult: { Account, Arn, UserId }, ResponseMetadata: { RequestId: 'r' } } });

t.test('the rebuilt request uses our URL, body and headers (rule 1)', async (t) => {
  const { result, sent } = await attempt(() => identity('arn:aws:iam::123456789012:user/alice'));
  const who = await result;
  t.equal(who.kind, 'iam-user');
  t.equal(who.name, 'alice');
  t.equal(sent[0]!.url, ENDPOINT);
  t.equal(sent[0]!.body, 'Action=GetCallerIdentity&Version=2011-06-15');
  t.equal(sent[0]!.headers.host, 'sts.eu-west-1.amazonaws.com');
  t.equal(sent[0]!.headers['x-sshca-audience'], 'aud-1');
  t.same(Object.keys(sent[0]!.headers).sort(), ['accept', 'authorization', 'content-type', 'host', 'x-amz-content-sha256', 'x-amz-date', 'x-sshca-audience', 'x-sshca-request']);
});

t.test('assumed roles parse role and session', async (t) => {
  const { result } = await attempt(() => identity('arn:aws:sts::123456789012:assumed-role/Admin/alice@corp.com', '123456789012', 'AROAEXAMPLEEXAMPLE12:alice@corp.com'));
  const who = await result;
  t.same([who.kind, who.name, who.sessionName], ['assumed-role', 'Admin', 'alice@corp.com']);
});

t.test('refusals and outages map to stable codes', async (t) => {
  const cases: Array<[string, () => StsResponse | Promise<StsResponse>, string]> = [
    ['throttled', () => json(400, { Error: { Code: 'Throttling', Message: 'Rate exceeded' } }), 'UNAVAILABLE_STS_THROTTLED'],
    ['STS 500', () => json(500, { Error: { Code: 'InternalFailure' } }), 'UNAVAILABLE_STS'],
    ['network failure', () => Promise.reject(new Error('ECONNRESET')), 'UNAVAILABLE_STS'],
    ['signature refused', () => json(403, { Error: { Code: 'SignatureDoesNotMatch' } }), 'AUTHN_STS_REJECTED'],
    ['redirect', () => ({ status: 307, contentType: 'text/plain', body: Buffer.alloc(0) }), 'AUTHN_STS_REJECTED'],
    ['XML answer', () => ({ status: 200, contentType: 'text/xml', body: Buffer.from('<x/>') }), 'AUTHN_STS_RESPONSE'],
    ['extra field', () => json(200, { GetCallerIdentityResponse: { GetCallerIdentityResult: { Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/a', UserId: 'AIDAEXAMPLEEXAMPLE12', X: 1 } } }), 'AUTHN_STS_RESPONSE'],
    ['ARN account differs from Account', () => identity('arn:aws:iam::999999999999:user/alice'), 'AUTHN_STS_RESPONSE'],
    ['partition differs from endpoint', () => identity('arn:aws-cn:iam::123456789012:user/alice'), 'AUTHN_STS_RESPONSE'],
    ['account root', () => identity('arn:aws:iam::123456789012:root', '123456789012', '123456789012'), 'AUTHN_ROOT_REFUSED'],
    ['federated user', () => identity('arn:aws:sts::123456789012:federated-user/bob', '123456789012', '123456789012:bob'), 'AUTHN_FEDERATED_REFUSED'],
    ['role session not matching UserId', () => identity('arn:aws:sts::123456789012:assumed-role/Admin/alice', '123456789012', 'AROAEXAMPLEEXAMPLE12:mallory'), 'AUTHN_STS_RESPONSE'],
  ];
  for (const [name, answer, code] of cases) {
    const { result } = await attempt(answer);
    await t.rejects(result, { code }, name);
  }
  const { result } = await attempt(() => json(400, { Error: { Code: 'Throttling' } }));
  const err = (await result.catch((e: unknown) => e)) as { retryAfterSeconds?: number };
  t.equal(err.retryAfterSeconds, 2, 'throttling carries Retry-After');
});

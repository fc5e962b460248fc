// Attacks on the identity token (DESIGN.md §3 rules 1, 3, 4, 5) against the
// real dev server: each must end in the same 401 body, never a 5xx, with
// the specific reason in the audit record.
import t, { type Test } from 'tap';
import { decodeIdentityToken, encodeIdentityToken, type IdentityToken } from '../../../protocol/identity-token.js';
import { generateKeyPairSync } from 'node:crypto';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { ShiftableClock, auditRows, lastAnonymousRefusalCode, postUserCert, signToken, startDevServer, type DevServer, type HttpResult } from '../../fixtures/dev-server.js';

const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
const body = JSON.stringify({ publicKey });

const tamper = (token: string, change: (t: IdentityToken) => Partial<IdentityToken> | Record<string, unknown>): string =>
  encodeIdentityToken({ ...decodeIdentityToken(`SSHCA-AWS4 ${token}`), ...change(decodeIdentityToken(`SSHCA-AWS4 ${token}`)) } as IdentityToken);
const withAuthorization = (token: string, edit: (a: string) => string) => tamper(token, (t) => ({ authorization: edit(t.authorization) }));
const auth = (token: string): Array<[string, string]> => [['authorization', `SSHCA-AWS4 ${token}`]];

async function expectRefused(t: Test, dev: DevServer, res: HttpResult, code: string, name: string): Promise<void> {
  t.equal(res.status, 401, `${name}: 401`);
  t.equal(res.json.code, 'AUTHN_FAILED', `${name}: uniform code`);
  t.equal(res.json.message, 'authentication failed', `${name}: uniform message`);
  // Anonymous: counted into the next summary record, never a record of its own (rule 16).
  t.equal(await lastAnonymousRefusalCode(dev), code, `${name}: audit summary says ${code}`);
}

t.test('dev mode: the same verifier, its own /dev/sts/ as the only allowlisted endpoint', async (t) => {
  const dev = await startDevServer(t);
  const info = (await (await fetch(`${dev.url}/v1/ca`)).json()) as { stsEndpoints: string[] };
  t.same(info.stsEndpoints, [`${dev.url}/dev/sts/`]);
});

t.test('a valid token works exactly once (rule 5)', async (t) => {
  const dev = await startDevServer(t);
  const token = await signToken(dev, body);
  const first = await postUserCert(dev, body, auth(token));
  t.equal(first.status, 201);
  const replay = await postUserCert(dev, body, auth(token));
  await expectRefused(t, dev, replay, 'AUTHN_REPLAY', 'replay');
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 1, 'one certificate issued');
});

t.test('tokens bound to something else are refused by STS (rule 1: we rebuild)', async (t) => {
  const dev = await startDevServer(t);
  const cases: Array<[string, () => Promise<HttpResult>]> = [
    ['wrong audience', async () => postUserCert(dev, body, auth(await signToken(dev, body, { audience: 'sshca-dev-someone-else' })))],
    ['token bound to another body', async () => postUserCert(dev, body, auth(await signToken(dev, JSON.stringify({ publicKey: `${publicKey} x` }))))],
    ['token bound to another route', async () => postUserCert(dev, body, auth(await signToken(dev, body, { path: '/v1/certs/host' })))],
    ['wrong secret key', async () => postUserCert(dev, body, auth(await signToken(dev, body, { credentials: { ...dev.credentials, secretAccessKey: 'x'.repeat(40) } })))],
    ['unknown access key', async () => postUserCert(dev, body, auth(await signToken(dev, body, { credentials: { accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: dev.credentials.secretAccessKey } })))],
  ];
  for (const [name, attempt] of cases) await expectRefused(t, dev, await attempt(), 'AUTHN_STS_REJECTED', name);
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0, 'nothing issued');
});

t.test('stale and future-dated tokens are refused before any STS call (rule 5)', async (t) => {
  const clock = new ShiftableClock();
  const dev = await startDevServer(t, { clock });
  const stale = await signToken(dev, body);
  clock.offsetMs = 5 * 60_000 + 5_000;
  await expectRefused(t, dev, await postUserCert(dev, body, auth(stale)), 'AUTHN_STALE', 'older than 5 minutes');
  const future = await signToken(dev, body);
  clock.offsetMs = -(60_000 + 5_000);
  await expectRefused(t, dev, await postUserCert(dev, body, auth(future)), 'AUTHN_STALE', 'more than 1 minute ahead');
  clock.offsetMs = 0;
  await expectRefused(t, dev, await postUserCert(dev, body, auth(tamper(await signToken(dev, body), () => ({ amzDate: '20261399T000000Z' })))), 'AUTHN_CREDENTIAL_SCOPE', 'impossible date');
});

t.test('header-level attacks', async (t) => {
  const dev = await startDevServer(t);
  await expectRefused(t, dev, await postUserCert(dev, body, []), 'AUTHN_MISSING', 'no Authorization');
  const a = await signToken(dev, body);
  const b = await signToken(dev, body);
  // Node keeps only the first Authorization header; two parsers must never disagree on which one counts.
  await expectRefused(t, dev, await postUserCert(dev, body, [...auth(a), ...auth(b)]), 'AUTHN_DUPLICATE_HEADER', 'two Authorization headers');
  await expectRefused(t, dev, await postUserCert(dev, body, [['authorization', 'Bearer abc']]), 'AUTHN_TOKEN_MALFORMED', 'other scheme');
});

t.test('token-level attacks are refused before any STS call (rules 2, 3, 4)', async (t) => {
  const dev = await startDevServer(t);
  const port = new URL(dev.url).port;
  const cases: Array<[string, string, (token: string) => string]> = [
    ['endpoint not allowlisted', 'AUTHN_ENDPOINT_NOT_ALLOWED', (k) => tamper(k, () => ({ endpoint: 'https://sts.amazonaws.com/' }))],
    ['endpoint without trailing slash', 'AUTHN_ENDPOINT_NOT_ALLOWED', (k) => tamper(k, (x) => ({ endpoint: x.endpoint.replace(/\/$/, '') }))],
    ['endpoint as localhost', 'AUTHN_ENDPOINT_NOT_ALLOWED', (k) => tamper(k, (x) => ({ endpoint: x.endpoint.replace('127.0.0.1', 'localhost') }))],
    ['endpoint with userinfo', 'AUTHN_ENDPOINT_NOT_ALLOWED', (k) => tamper(k, () => ({ endpoint: `http://x@127.0.0.1:${port}/dev/sts/` }))],
    ['algorithm SigV4A', 'AUTHN_SIGNATURE_FORMAT', (k) => withAuthorization(k, (v) => v.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256'))],
    ['algorithm HMAC-SHA512', 'AUTHN_SIGNATURE_FORMAT', (k) => withAuthorization(k, (v) => v.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512'))],
    ['algorithm lowercase', 'AUTHN_SIGNATURE_FORMAT', (k) => withAuthorization(k, (v) => v.replace('AWS4-HMAC-SHA256', 'aws4-hmac-sha256'))],
    ['scope region differs from endpoint', 'AUTHN_CREDENTIAL_SCOPE', (k) => withAuthorization(k, (v) => v.replace('/us-east-1/', '/eu-west-1/'))],
    ['scope service iam', 'AUTHN_CREDENTIAL_SCOPE', (k) => withAuthorization(k, (v) => v.replace('/sts/aws4_request', '/iam/aws4_request'))],
    ['scope date differs from x-amz-date', 'AUTHN_CREDENTIAL_SCOPE', (k) => tamper(k, (x) => ({ amzDate: `${Number(x.amzDate.slice(0, 8)) - 1}${x.amzDate.slice(8)}` }))],
    ['access key of another form', 'AUTHN_ACCESS_KEY', (k) => withAuthorization(k, (v) => v.replace(/Credential=AKIA/, 'Credential=ABIA'))],
    ['temporary key without security token', 'AUTHN_SECURITY_TOKEN', (k) => withAuthorization(k, (v) => v.replace(/Credential=AKIA/, 'Credential=ASIA'))],
    ['security token with a CR/LF header injection', 'AUTHN_SECURITY_TOKEN', (k) => tamper(k, () => ({ securityToken: 'abc\r\nx-amz-target: evil' }))],
    ['security token not signed', 'AUTHN_SIGNED_HEADERS', (k) => tamper(k, () => ({ securityToken: 'FwoGZXIvYXdzE' }))],
    ['extra signed header', 'AUTHN_SIGNED_HEADERS', (k) => withAuthorization(k, (v) => v.replace('SignedHeaders=', 'SignedHeaders=x-forwarded-host;'))],
    ['duplicate signed header', 'AUTHN_SIGNED_HEADERS', (k) => withAuthorization(k, (v) => v.replace('SignedHeaders=', 'SignedHeaders=host;'))],
    ['request binding not signed', 'AUTHN_SIGNED_HEADERS', (k) => withAuthorization(k, (v) => v.replace(';x-sshca-request', ''))],
    ['audience not signed', 'AUTHN_SIGNED_HEADERS', (k) => withAuthorization(k, (v) => v.replace('x-sshca-audience;', ''))],
    ['uppercase signed header', 'AUTHN_SIGNATURE_FORMAT', (k) => withAuthorization(k, (v) => v.replace('SignedHeaders=', 'SignedHeaders=Host;'))],
    ['unknown token field', 'AUTHN_TOKEN_MALFORMED', (k) => tamper(k, () => ({ host: 'evil.example' }))],
  ];
  for (const [name, code, attack] of cases) {
    const token = attack(await signToken(dev, body));
    await expectRefused(t, dev, await postUserCert(dev, body, auth(token)), code, name);
  }
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0, 'nothing issued');
});

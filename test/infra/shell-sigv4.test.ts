// The bootstrap's SigV4 signer (POSIX sh + openssl, issue 12) against AWS's
// own: for fixed inputs its Authorization is the one @smithy/signature-v4
// computes for the request the client signs, and a token it signs now is
// accepted by the server's authenticator against the STS fixture. Secrets
// with '/', '+' and '=' (and longer than an HMAC block) included.
import { execFileSync } from 'node:child_process';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import t from 'tap';
import { AUDIENCE_HEADER, REQUEST_HEADER, STS_ACCEPT, STS_BODY, STS_CONTENT_TYPE, decodeIdentityToken, requestBinding } from '../../protocol/identity-token.js';
import { stsRegionOf } from '../../client/sts-endpoint-region.js';
import { amzDateOf, shellSign, type ShellSigV4Input } from '../fixtures/instance.js';
import { AUDIENCE, startHarness } from '../fixtures/sts-verifier-harness.js';

const HOST_PATH = '/v1/certs/host';
const body = (n: number) => `{"publicKey":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq/+=","region":"eu-west-1","nonce":"nonce-${n}-abcdefgh"}`;

/** Shells to run the signer under: sh (dash on Debian) always, bash too when installed. */
const shells = ['sh', ...(() => {
  try {
    execFileSync('bash', ['-c', 'true']);
    return ['bash'];
  } catch {
    return [];
  }
})()];

/** AWS's signer over exactly the request the client (client/identity-token-signer.ts) has the SDK sign. */
async function awsAuthorization(input: ShellSigV4Input): Promise<string> {
  const url = new URL(input.endpoint);
  const signer = new SignatureV4({
    credentials: { accessKeyId: input.accessKeyId, secretAccessKey: input.secretAccessKey, ...(input.sessionToken ? { sessionToken: input.sessionToken } : {}) },
    region: stsRegionOf(input.endpoint),
    service: 'sts',
    sha256: Hash.bind(null, 'sha256'),
  });
  const request = new HttpRequest({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    headers: {
      host: url.host,
      'content-type': STS_CONTENT_TYPE,
      accept: STS_ACCEPT,
      [AUDIENCE_HEADER]: input.audience,
      [REQUEST_HEADER]: requestBinding('POST', input.path, input.body),
    },
    body: STS_BODY,
  });
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(input.amzDate)!;
  const signed = await signer.sign(request, { signingDate: new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) });
  return signed.headers.authorization!;
}

t.test('the shell signer computes what AWS SignatureV4 computes', async (t) => {
  const base = {
    accessKeyId: 'ASIAQ2EXAMPLE7TESTID',
    sessionToken: 'IQoJb3JpZ2luX2VjEPT//////////wEaCXVzLWVhc3QtMSJGMEQCIBase64+/=',
    amzDate: '20260314T092653Z',
    audience: 'https://sshca.example.com',
    path: HOST_PATH,
  };
  const cases: Array<[string, ShellSigV4Input]> = [
    ['a production regional endpoint, a secret with / + =', { ...base, secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY=', endpoint: 'https://sts.eu-west-1.amazonaws.com/', body: body(1) }],
    ['the global endpoint (signs for us-east-1)', { ...base, secretAccessKey: 'abc/def+ghi=jkl/mno+pqr=stu/vwx+yz0=12', endpoint: 'https://sts.amazonaws.com/', body: body(2) }],
    ['a loopback endpoint with a port (the fixture, the dev server)', { ...base, secretAccessKey: '++++////====++++////====++++////====++++', endpoint: 'http://127.0.0.1:45678/', body: body(3) }],
    ['a path (the dev server\'s /dev/sts/)', { ...base, secretAccessKey: 'Zm9vYmFyYmF6cXV4/+=Zm9vYmFyYmF6cXV4/+=Zm', endpoint: 'http://127.0.0.1:45678/dev/sts/', body: body(4) }],
    ['a secret longer than an HMAC block (the key is hashed first)', { ...base, secretAccessKey: `${'K7MDENG/+='.repeat(10)}x`, endpoint: 'https://sts.us-west-2.amazonaws.com/', body: body(5) }],
    ['long-term credentials: no session token header', { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', amzDate: base.amzDate, audience: 'http://127.0.0.1:8080', path: HOST_PATH, endpoint: 'https://sts.ap-southeast-2.amazonaws.com/', body: body(6) }],
  ];
  for (const shell of shells) {
    for (const [name, input] of cases) {
      const shellSigned = await shellSign(input, shell);
      t.equal(shellSigned.authorization, await awsAuthorization(input), `${shell}: ${name}`);
      const token = decodeIdentityToken(`SSHCA-AWS4 ${shellSigned.token}`);
      t.same(token, { v: 1, endpoint: input.endpoint, amzDate: input.amzDate, authorization: shellSigned.authorization, ...(input.sessionToken ? { securityToken: input.sessionToken } : {}) }, `${shell}: ${name}: the token carries exactly the client's fields`);
    }
  }
});

t.test("the shell signer's tokens verify with the server's authenticator against the STS fixture", async (t) => {
  const harness = await startHarness(t);
  // Instance identity role credentials as IMDS hands them out; mint until the secret has both '/' and '+'
  // (the fixture's secrets are unpadded base64: '=' is covered by the comparison with AWS's signer above).
  let principal = harness.sts.mintInstanceIdentity('i-0123456789abcdef0');
  for (let i = 0; i < 200 && !/\/.*\+|\+.*\//.test(principal.secretAccessKey); i++) principal = harness.sts.mintInstanceIdentity('i-0123456789abcdef0');
  t.match(principal.secretAccessKey, /\//);
  t.match(principal.secretAccessKey, /\+/);
  let n = 0;
  const sign = async (overrides: Partial<ShellSigV4Input> = {}, shell = 'sh') => {
    const b = body(100 + n++);
    const signed = await shellSign({ accessKeyId: principal.accessKeyId, secretAccessKey: principal.secretAccessKey, sessionToken: principal.sessionToken!, endpoint: harness.sts.url, amzDate: amzDateOf(new Date()), audience: AUDIENCE, path: HOST_PATH, body: b, ...overrides }, shell);
    return { authorization: [`SSHCA-AWS4 ${signed.token}`], method: 'POST', pathAndQuery: HOST_PATH, body: Buffer.from(b) };
  };
  for (const shell of shells) {
    const identity = await harness.authenticator.authenticate(await sign({}, shell));
    t.equal(identity.kind, 'ec2-instance', `${shell}: STS vouches for the instance identity`);
    t.equal(identity.instanceId, 'i-0123456789abcdef0');
  }
  // The token is bound to the request it was signed for, and to this server.
  const bound = await sign();
  await t.rejects(harness.authenticator.authenticate({ ...bound, body: Buffer.from(body(999)) }), { code: 'AUTHN_STS_REJECTED' }, 'another body: the rebuilt request does not verify');
  await t.rejects(harness.authenticator.authenticate({ ...bound, pathAndQuery: '/v1/certs/user' }), { code: 'AUTHN_STS_REJECTED' }, 'another path');
  await t.rejects(harness.authenticator.authenticate(await sign({ audience: 'https://sshca.elsewhere.example' })), { code: 'AUTHN_STS_REJECTED' }, 'another audience');
  await t.rejects(harness.authenticator.authenticate(await sign({ secretAccessKey: `${principal.secretAccessKey.slice(0, -1)}=` })), { code: 'AUTHN_STS_REJECTED' }, 'a wrong secret');
  const once = await sign();
  await harness.authenticator.authenticate(once);
  await t.rejects(harness.authenticator.authenticate(once), { code: 'AUTHN_REPLAY' }, 'a token is good once');
});

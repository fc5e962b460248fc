// What a user sees when STS misbehaves: a 503 with a stable code and
// Retry-After, never STS's own words.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { buildApp } from '../../server/app.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { systemClock } from '../../server/clock.js';
import { SelfNamePolicy } from '../../server/policy/self-name-policy.js';
import { StsEndpointAllowlist } from '../../server/identity/sts-endpoints.js';
import { AUDIENCE, craftToken, startHarness } from '../fixtures/sts-verifier-harness.js';
import { FIXTURE_REGION } from '../fixtures/sts-fixture.js';

t.test('STS faults through the HTTP API', async (t) => {
  const { sts, authenticator } = await startHarness(t, { totalTimeoutMs: 400 });
  const dir = t.testdir();
  const audit = new SqliteAuditLog(join(dir, 'audit.db'));
  const signer = LocalSigner.openOrCreate(join(dir, 'ca.pem'), 'ed25519');
  const app = buildApp({
    audience: AUDIENCE,
    endpoints: new StsEndpointAllowlist([{ url: sts.url, region: FIXTURE_REGION, partition: 'aws' }]),
    authenticator,
    policy: new SelfNamePolicy({}),
    userSigner: signer,
    ca: new CertificateAuthority({ signer }),
    audit,
    clock: systemClock,
  });
  t.teardown(async () => {
    await app.close();
    await audit.close();
  });
  const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
  const post = async (n: number) => {
    const body = JSON.stringify({ publicKey, reason: `attempt ${n}` });
    const token = await craftToken(sts, sts.principals.user, { boundBody: body });
    return app.inject({ method: 'POST', url: '/v1/certs/user', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}` }, payload: body });
  };
  sts.fault = 'throttle';
  const throttled = await post(1);
  t.equal(throttled.statusCode, 503);
  t.equal(throttled.json().code, 'UNAVAILABLE_STS_THROTTLED');
  t.equal(throttled.headers['retry-after'], '2');
  sts.fault = 'internal-error';
  const broken = await post(2);
  t.equal(broken.statusCode, 503);
  t.equal(broken.json().code, 'UNAVAILABLE_STS');
  t.notMatch(broken.body, /boom|InternalFailure|127\.0\.0\.1/, 'STS details do not leak');
  sts.fault = 'slow';
  t.equal((await post(3)).json().code, 'UNAVAILABLE_STS', 'a hanging STS ends in a 503, not a hang');
  sts.fault = null;
  t.equal((await post(4)).statusCode, 201, 'and issues again once STS is back');
});

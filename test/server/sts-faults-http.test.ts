// What a user sees when STS misbehaves: a 503 with a stable code and
// Retry-After, never STS's own words.
import { join } from 'node:path';
import t from 'tap';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { startHarness } from '../fixtures/sts-verifier-harness.js';
import { startTestApp } from '../fixtures/test-app.js';

t.test('STS faults through the HTTP API', async (t) => {
  const harness = await startHarness(t, { totalTimeoutMs: 400 });
  const { sts } = harness;
  const { requestCertificate } = await startTestApp(t, harness, LocalSigner.openOrCreate(join(t.testdir(), 'ca.pem'), 'ed25519'));
  sts.fault = 'throttle';
  const throttled = await requestCertificate();
  t.equal(throttled.statusCode, 503);
  t.equal(throttled.json().code, 'UNAVAILABLE_STS_THROTTLED');
  t.equal(throttled.headers['retry-after'], '2');
  sts.fault = 'internal-error';
  const broken = await requestCertificate();
  t.equal(broken.statusCode, 503);
  t.equal(broken.json().code, 'UNAVAILABLE_STS');
  t.notMatch(broken.body, /boom|InternalFailure|127\.0\.0\.1/, 'STS details do not leak');
  sts.fault = 'slow';
  t.equal((await requestCertificate()).json().code, 'UNAVAILABLE_STS', 'a hanging STS ends in a 503, not a hang');
  sts.fault = null;
  t.equal((await requestCertificate()).statusCode, 201, 'and issues again once STS is back');
});

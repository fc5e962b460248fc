// A server that stops writes the anonymous refusals it counted since the
// last summary: stopping (SIGTERM, a deploy) loses none of them.
import t from 'tap';
import { auditRows, postUserCert, startDevServer } from '../fixtures/dev-server.js';

t.test('the last summary is written when the server stops', async (t) => {
  const dev = await startDevServer(t);
  t.equal((await postUserCert(dev, '{"publicKey":"not a key"}', [])).status, 401);
  t.equal((await postUserCert(dev, '{"unexpected":1}', [])).status, 400);
  t.same(auditRows(dev), [], 'nothing on the chain yet: counted only');
  await dev.server.close();
  const rows = auditRows(dev);
  t.equal(rows.length, 1);
  t.equal(rows[0]!.kind, 'refused-summary');
  t.same(rows[0]!.counts!.map((c) => [c.code, c.count]), [['AUTHN_MISSING', 1], ['REQUEST_INVALID', 1]]);
});

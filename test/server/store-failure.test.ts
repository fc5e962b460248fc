// Rule 13: no record, no certificate. The store is broken for real (a
// trigger refusing inserts, a writer holding the lock), not mocked.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { auditRows, requestCertificate, startDevServer } from '../fixtures/dev-server.js';

const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));

t.test('audit table unwritable → 503, no certificate, nothing recorded', async (t) => {
  const dev = await startDevServer(t);
  const db = new Database(join(dev.dataDir, 'audit.db'));
  db.exec(`CREATE TRIGGER refuse_issued BEFORE INSERT ON audit_records WHEN NEW.kind = 'issued' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
  db.close();
  const res = await requestCertificate(dev, { publicKey });
  t.equal(res.status, 503);
  t.equal(res.json.code, 'UNAVAILABLE_STORE');
  t.notOk('certificate' in res.json, 'no certificate in the body');
  t.ok(res.headers['retry-after'], 'Retry-After is set');
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0);
  t.equal(auditRows(dev).at(-1)?.code, 'UNAVAILABLE_STORE', 'the refusal itself is recorded');
});

t.test('/readyz reports the store through the app', async (t) => {
  const dev = await startDevServer(t);
  t.equal((await fetch(`${dev.url}/readyz`)).status, 200);
  t.equal((await fetch(`${dev.url}/healthz`)).status, 200);
});

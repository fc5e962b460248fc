// Rule 13: no record, no certificate. The store is broken for real (a
// trigger refusing inserts, a writer holding the lock), not mocked.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { importCheckpointKey, verifyChain } from '../../protocol/audit-chain.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
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

t.test('a failing batch commit fails every request in it: all 503, nothing issued; the chain resumes intact', async (t) => {
  const dev = await startDevServer(t);
  const db = new Database(join(dev.dataDir, 'audit.db'));
  t.teardown(() => db.close());
  db.exec(`CREATE TRIGGER refuse_issued BEFORE INSERT ON audit_records WHEN NEW.kind = 'issued' BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
  // Concurrent: their issued records reach the store together, as batches.
  const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => requestCertificate(dev, { publicKey, reason: `burst ${i}` })));
  t.same(burst.map((r) => r.status), Array.from({ length: 12 }, () => 503), 'every request of every failed batch: 503');
  t.same([...new Set(burst.map((r) => r.json.code))], ['UNAVAILABLE_STORE']);
  t.notOk(burst.some((r) => 'certificate' in r.json), 'no certificate in any body');
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0, 'nothing issued is on the record');
  db.exec('DROP TRIGGER refuse_issued');
  const after = await requestCertificate(dev, { publicKey, reason: 'after' });
  t.equal(after.status, 201, 'issues again once the store accepts writes');
  const checkpoints = CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem'));
  const store = new SqliteAuditLog(join(dev.dataDir, 'audit.db'), checkpoints);
  t.teardown(() => store.close());
  t.match(await verifyChain(store.exportRecords(), await importCheckpointKey({ ...checkpoints.jwk })), { ok: true }, 'the chain verifies: the failed batches left no trace in it');
});

// Rule 13: no record, no certificate. The store is broken for real (a
// trigger refusing inserts, a writer holding the lock), not mocked.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
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

t.test('database locked by another writer → 503 from the store, /readyz says so', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'audit.db');
  const log = new SqliteAuditLog(path, { busyTimeoutMs: 50 });
  t.teardown(() => log.close());
  await log.ready();
  const other = new Database(path);
  other.exec('BEGIN EXCLUSIVE');
  t.teardown(() => other.close());
  await t.rejects(log.ready(), { code: 'SQLITE_BUSY' }, 'readiness probe fails');
  await t.rejects(
    log.recordIssued({
      requestId: 'r', at: new Date(), serial: 1n, keyId: 'k', certificateType: 'user', principals: ['a'], validAfter: 1, validBefore: 2,
      callerArn: 'arn', accountId: '1', sourceIp: '127.0.0.1', publicKeyFingerprint: 'f', certificateFingerprint: 'c', caFingerprint: 'ca',
    }),
    { code: 'SQLITE_BUSY' },
    'writes fail rather than pretend',
  );
  other.exec('ROLLBACK');
  await log.ready();
});

t.test('/readyz reports the store through the app', async (t) => {
  const dev = await startDevServer(t);
  t.equal((await fetch(`${dev.url}/readyz`)).status, 200);
  t.equal((await fetch(`${dev.url}/healthz`)).status, 200);
});

t.test('serials are unique in the store (rule 8)', async (t) => {
  const log = new SqliteAuditLog(join(t.testdir(), 'a.db'));
  t.teardown(() => log.close());
  const rec = {
    requestId: 'r', at: new Date(), serial: 42n, keyId: 'k', certificateType: 'user' as const, principals: ['a'], validAfter: 1, validBefore: 2,
    callerArn: 'arn', accountId: '1', sourceIp: '127.0.0.1', publicKeyFingerprint: 'f', certificateFingerprint: 'c', caFingerprint: 'ca',
  };
  await log.recordIssued(rec);
  await t.rejects(log.recordIssued({ ...rec, requestId: 'r2' }), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
});

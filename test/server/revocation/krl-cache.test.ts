// Issue 10 items 2 and 7: the KRL costs the same at 10 revocations or a
// large audit table (cached bytes, an indexed read per change), notices
// another replica's revocation, and keeps a revoked certificate listed
// until no host whose clock lags could still accept it.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { publicKeyFromKeyObject } from '../../../protocol/ssh-public-key.js';
import type { AuditLog, RevocationRecord } from '../../../server/audit/audit-log.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { KRL_EXPIRY_GRACE_SECONDS, buildKrl } from '../../../server/revocation/krl-builder.js';
import { KRL_RECHECK_MS, KrlCache } from '../../../server/revocation/krl-cache.js';
import { ShiftableClock, startDevServer } from '../../fixtures/dev-server.js';

const NOW = 1_800_000_000;
const caBlob = publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey).blob;
const caKeys = new Map([['SHA256:ca', caBlob]]);

function revocation(serial: number, validBefore: number, at = new Date(NOW * 1000)): RevocationRecord {
  return { requestId: `r${serial}`, at, serial: String(serial), caFingerprint: 'SHA256:ca', validBefore, revokedBy: 'serial', reason: 'test', callerArn: 'arn:aws:iam::000000000000:user/admin', accountId: '000000000000', sourceIp: '127.0.0.1' };
}

function openStore(t: Test): SqliteAuditLog {
  const dir = t.testdir();
  const store = new SqliteAuditLog(join(dir, 'audit.db'), CheckpointSigner.openOrCreate(join(dir, 'cp.pem')));
  t.teardown(() => store.close());
  return store;
}

/** Adds `n` unrelated records straight into the table (the chain is not what this test is about). */
function fillTable(path: string, n: number): void {
  const db = new Database(path);
  const insert = db.prepare("INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES (?, '2026-01-01T00:00:00.000Z', 'refused', ?, '', '', '')");
  const first = ((db.prepare('SELECT max(seq) AS s FROM audit_records').get() as { s: number | null }).s ?? 0) + 1;
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(first + i, `{"code":"POLICY_NO_RULE","callerArn":"arn:aws:iam::000000000000:user/u${i}","sourceIp":"10.0.${i % 250}.1"}`);
  })();
  db.close();
}

/** Counts the store calls a KrlCache makes. */
function counting(store: AuditLog): { audit: Pick<AuditLog, 'revocationRecords' | 'newestRevocationSeq'>; calls: { records: number; newest: number } } {
  const calls = { records: 0, newest: 0 };
  return {
    calls,
    audit: {
      revocationRecords: () => (calls.records++, store.revocationRecords()),
      newestRevocationSeq: () => (calls.newest++, store.newestRevocationSeq()),
    },
  };
}

t.test('revocations are read through their own index', async (t) => {
  const store = openStore(t);
  t.match(await store.revocationQueryPlan(), /audit_records_revocations/, 'the partial index');
  t.notMatch(await store.revocationQueryPlan(), /SCAN audit_records(?! USING)/, 'never a scan of the whole record');
});

t.test('requests are served from cached bytes; another replica is noticed after one recheck', async (t) => {
  const store = openStore(t);
  const clock = new ShiftableClock();
  const { audit, calls } = counting(store);
  const cache = new KrlCache({ audit, caKeys: () => caKeys, clock });
  const first = await cache.current();
  t.equal(first.version, 0n);
  for (let i = 0; i < 100; i++) t.equal(await cache.current(), first);
  t.same(calls, { records: 1, newest: 0 }, '100 requests: no store access beyond the first build');

  // Another replica revokes something (same store, not through this cache).
  const seq = await store.recordRevocation(revocation(42, Math.floor(Date.now() / 1000) + 3600));
  t.equal(await cache.current(), first, 'until the recheck interval passes, the cached KRL');
  clock.offsetMs += KRL_RECHECK_MS;
  const second = await cache.current();
  t.equal(second.version, BigInt(seq), 'the new revocation is in, version = its sequence number');
  t.same(calls, { records: 2, newest: 1 }, 'one indexed lookup, one rebuild');
  clock.offsetMs += KRL_RECHECK_MS;
  t.equal(await cache.current(), second, 'nothing new: the same bytes');
  t.same(calls, { records: 2, newest: 2 }, 'a lookup, no rebuild');
});

t.test('GET /v1/krl does not slow down as the audit table grows', async (t) => {
  const dev = await startDevServer(t, { env: { SSHCA_PUBLIC_RATE_LIMIT_PER_MINUTE: '0' } });
  const store = new SqliteAuditLog(join(dev.dataDir, 'audit.db'), CheckpointSigner.openOrCreate(join(dev.dataDir, 'checkpoint-key.pem')));
  t.teardown(() => store.close());
  for (let i = 1; i <= 10; i++) await store.recordRevocation(revocation(i, Math.floor(Date.now() / 1000) + 3600, new Date()));
  const fetchTimes = async (n: number): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${dev.url}/v1/krl`);
      t.equal(res.status, 200);
      await res.arrayBuffer();
    }
    return (performance.now() - started) / n;
  };
  await fetchTimes(5);
  const small = await fetchTimes(100);
  // 400 000 more records (what a busy year of refusals could leave), then a
  // new revocation so the next fetch must rebuild from the store.
  fillTable(join(dev.dataDir, 'audit.db'), 400_000);
  const seq = await store.recordRevocation(revocation(11, Math.floor(Date.now() / 1000) + 3600, new Date()));
  await new Promise((r) => setTimeout(r, KRL_RECHECK_MS));
  const rebuilt = performance.now();
  const res = await fetch(`${dev.url}/v1/krl`);
  const rebuildMs = performance.now() - rebuilt;
  t.equal(res.headers.get('x-sshca-krl-version'), String(seq), 'the rebuild sees the new revocation');
  const large = await fetchTimes(100);
  t.ok(large <= 3 * small + 2, `mean fetch ${large.toFixed(2)} ms with 400k records vs ${small.toFixed(2)} ms without`);
  t.ok(rebuildMs < 250, `a rebuild reads revocations through the index (${rebuildMs.toFixed(1)} ms with 400k records)`);
});

t.test('a revoked certificate stays listed until validBefore plus the back-date allowance', async (t) => {
  const validBefore = NOW + 3600;
  const records = [{ seq: 7, at: new Date(NOW * 1000).toISOString(), kind: 'revoked', data: { ...revocation(99, validBefore) } as Record<string, unknown>, prevHash: '', hash: '', checkpoint: '' }];
  const listed = (now: number) => buildKrl(records, caKeys, now);
  t.equal(listed(validBefore + 60).version, 7n, 'a minute after expiry: still listed');
  t.ok(listed(validBefore + 60).bytes.includes(Buffer.from('0000000000000063', 'hex')), 'serial 99 in the KRL');
  t.equal(listed(validBefore + 60).nextChangeAt, validBefore + KRL_EXPIRY_GRACE_SECONDS);
  t.equal(listed(validBefore + KRL_EXPIRY_GRACE_SECONDS - 1).version, 7n, 'a second before the allowance ends: listed');
  const after = listed(validBefore + KRL_EXPIRY_GRACE_SECONDS);
  t.equal(after.version, 8n, 'dropped once no lagging host can accept it, and the version rises');
  t.notOk(after.bytes.includes(Buffer.from('0000000000000063', 'hex')));
  t.equal(after.nextChangeAt, undefined);
});

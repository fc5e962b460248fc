// One contract, two engines: SQLite (a file) and PostgreSQL (a throwaway
// cluster on loopback). Records, queries, the shared replay cache, outages,
// and tampering done directly in the database.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import t, { type Test } from 'tap';
import { canonicalJson, importCheckpointKey, recordHash, verifyChain } from '../../../protocol/audit-chain.js';
import type { AuditLog, IssuedRecord } from '../../../server/audit/audit-log.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../../server/audit/postgres-audit-log.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import type { ReplayCache } from '../../../server/identity/replay-cache.js';
import { needsPostgres, startPostgres } from '../../fixtures/postgres.js';

type Store = AuditLog & ReplayCache;

interface Engine {
  open(): Promise<Store>;
  /** Runs SQL directly against the database (the attacker's view). */
  sql(statement: string, params?: unknown[]): Promise<void>;
  /** Engine-specific spellings. */
  readonly editPrincipal: string;
  readonly uniqueViolation: { code: string };
  outage(): Promise<{ restore(): Promise<void> }>;
}

const signer = CheckpointSigner.openOrCreate(join(t.testdirName, '..', `checkpoint-${process.pid}.pem`));
const key = await importCheckpointKey({ ...signer.jwk });
let serial = 1000n;
const issued = (over: Partial<IssuedRecord> = {}): IssuedRecord => ({
  requestId: `req-${serial}`, at: new Date(), serial: serial++, keyId: 'k', certificateType: 'user', principals: ['alice'], validAfter: 1, validBefore: 2,
  extensions: ['permit-pty'], criticalOptions: {}, callerArn: 'arn:aws:iam::111111111111:user/alice', accountId: '111111111111', userId: 'AIDAX',
  sourceIp: '127.0.0.1', publicKeyFingerprint: 'SHA256:pk', certificateFingerprint: 'SHA256:cert', caFingerprint: 'SHA256:ca', ...over,
});
const collect = async (s: Store) => {
  const out = [];
  for await (const r of s.exportRecords()) out.push(r);
  return out;
};

async function contract(t: Test, engine: Engine): Promise<void> {
  serial = 1000n;
  const store = await engine.open();
  t.teardown(() => store.close());

  await t.test('records, filters and cursor paging', async (t) => {
    await store.recordIssued(issued({ principals: ['alice', 'ops'] }));
    await store.recordRefusal({ requestId: 'r-refused', at: new Date(), code: 'POLICY_NO_RULE', callerArn: 'arn:aws:iam::111111111111:user/eve', accountId: '111111111111', sourceIp: '10.0.0.1' });
    await store.recordIssued(issued({ principals: ['bob'], callerArn: 'arn:aws:iam::222222222222:user/bob', accountId: '222222222222', publicKeyFingerprint: 'SHA256:bobkey' }));
    const q = async (f: Parameters<Store['query']>[0]) => (await store.query(f, { limit: 50 })).records.map((r) => r.seq);
    t.same(await q({}), [3, 2, 1], 'newest first');
    t.same(await q({ kind: 'refused' }), [2]);
    t.same(await q({ principal: 'ops' }), [1]);
    t.same(await q({ principal: 'op' }), [], 'principal matches exactly');
    t.same(await q({ caller: 'arn:aws:iam::222222222222:user/bob' }), [3]);
    t.same(await q({ account: '111111111111' }), [2, 1]);
    t.same(await q({ serial: '1000' }), [1]);
    t.same(await q({ fingerprint: 'SHA256:bobkey' }), [3]);
    t.same(await q({ since: new Date(Date.now() + 60_000) }), []);
    const first = await store.query({}, { limit: 2 });
    t.same(first.records.map((r) => r.seq), [3, 2]);
    const second = await store.query({}, { limit: 2, before: first.nextBefore! });
    t.same(second.records.map((r) => r.seq), [1]);
    t.equal(second.nextBefore, undefined, 'last page');
    t.match((await store.query({ serial: '1000' }, { limit: 1 })).records[0]!.data, { principals: ['alice', 'ops'], extensions: ['permit-pty'] });
    const verdict = await verifyChain(store.exportRecords(), key);
    t.match(verdict, { ok: true, count: 3 }, 'the chain verifies');
  });

  await t.test('serials are unique (rule 8)', async (t) => {
    const rec = issued();
    await store.recordIssued(rec);
    await t.rejects(store.recordIssued({ ...rec, requestId: 'again' }), engine.uniqueViolation);
    t.equal((await verifyChain(store.exportRecords(), key)).ok, true, 'a refused write leaves the chain intact');
  });

  await t.test('each token signature is accepted once, across store instances (rule 5)', async (t) => {
    const other = await engine.open();
    t.teardown(() => other.close());
    const exp = new Date(Date.now() + 60_000);
    t.equal(await store.claim('sig-1', exp, new Date()), true);
    t.equal(await other.claim('sig-1', exp, new Date()), false, 'another replica sees it used');
    t.equal(await other.claim('sig-2', exp, new Date()), true);
    // Attack: one token replayed many times at once. The claims meet in one batch; exactly one wins.
    const racing = await Promise.all([store, other, store, other, store, store].map((s) => s.claim('sig-race', exp, new Date())));
    t.equal(racing.filter(Boolean).length, 1, 'of concurrent claims of one signature, exactly one wins');
    const oneBatch = await Promise.all([1, 2, 3].map(() => store.claim('sig-batch', exp, new Date())));
    t.same(oneBatch, [true, false, false], 'within one batch: the first claim wins, the rest are replays');
  });

  await t.test('an outage fails writes and readiness; recovery resumes the chain', async (t) => {
    const outage = await engine.outage();
    await t.rejects(store.recordIssued(issued()), 'write refused during the outage');
    await t.rejects(store.ready(), 'not ready');
    await outage.restore();
    await store.ready();
    await store.recordIssued(issued());
    t.equal((await verifyChain(store.exportRecords(), key)).ok, true);
  });

  await t.test('revocations, withdrawals and refusal summaries: on the chain and read back (issue 10)', async (t) => {
    const at = new Date();
    const admin = { callerArn: 'arn:aws:iam::111111111111:user/admin', accountId: '111111111111', sourceIp: '10.0.0.9' };
    await store.recordRefusalSummary({ at, intervalStart: new Date(at.getTime() - 60_000), total: 3, counts: [{ code: 'AUTHN_MISSING', network: '10.0.0.0/24', count: 3 }] });
    const revoked = await store.recordRevocation({ requestId: 'rv1', at, serial: '4242', caFingerprint: 'SHA256:ca', validBefore: Math.floor(at.getTime() / 1000) + 3600, revokedBy: 'serial', reason: 'laptop lost', ...admin });
    const withdrawn = await store.recordWithdrawal({ requestId: 'wd1', at, revocationSeq: revoked, reason: 'found it', ...admin });
    t.ok(withdrawn > revoked, 'each append answers with its sequence number');
    const revocations = await store.revocationRecords();
    t.same(revocations.slice(-2).map((r) => [r.seq, r.kind]), [[revoked, 'revoked'], [withdrawn, 'withdrawn']], 'only revocations and withdrawals, oldest first');
    t.notOk(revocations.some((r) => r.kind !== 'revoked' && r.kind !== 'withdrawn'), 'nothing else');
    t.match(revocations.at(-1)!.data, { revocationSeq: revoked, reason: 'found it' });
    t.equal(await store.newestRevocationSeq(), withdrawn);
    const summary = (await store.query({ kind: 'refused-summary' }, { limit: 1 })).records[0]!;
    t.match(summary.data, { total: 3, counts: [{ code: 'AUTHN_MISSING', network: '10.0.0.0/24', count: 3 }] }, 'the summary, as recorded');
    t.match(await verifyChain(store.exportRecords(), key), { ok: true });
  });

  await t.test('concurrent appends commit as batches: one checkpoint per batch, every record covered (issue 14)', async (t) => {
    const before = (await collect(store)).length;
    // Submitted in one tick: they reach the store together.
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordRefusal({ requestId: `b${i}`, at: new Date(), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' })));
    const records = (await collect(store)).slice(before);
    t.equal(records.length, 20);
    const signed = records.filter((r) => r.checkpoint !== undefined);
    t.ok(signed.length >= 1 && signed.length < 20, `20 appends, ${signed.length} checkpoint(s): one per batch, not per record`);
    t.ok(records.at(-1)!.checkpoint, "the newest record ends a batch: it carries the batch's checkpoint");
    t.match(await verifyChain(store.exportRecords(), key), { ok: true }, 'the chain verifies');

    const all = await collect(store);
    // An attacker without the key edits a record inside a batch and rehashes everything after it.
    const target = all.findIndex((r, i) => i >= before && r.checkpoint === undefined);
    const rewritten = [...all];
    let prev = target > 0 ? all[target - 1]!.hash : '0'.repeat(64);
    for (let i = target; i < all.length; i++) {
      const r = all[i]!;
      const data = i === target ? { ...r.data, code: 'FORGED' } : r.data;
      const hash = recordHash(prev, r.seq, r.at, r.kind, data);
      rewritten[i] = { ...r, data, prevHash: prev, hash };
      prev = hash;
    }
    const coveringSeq = all.slice(target).find((r) => r.checkpoint !== undefined)!.seq;
    t.match(await verifyChain(rewritten, key), { ok: false, failure: { seq: coveringSeq, reason: 'checkpoint' } }, "an edit inside a batch fails the batch's checkpoint");
    const stripped = all.map((r, i) => (i === all.length - 1 ? { ...r, checkpoint: undefined } : r));
    t.match(await verifyChain(stripped, key), { ok: false, failure: { reason: 'checkpoint' } }, 'a newest record without its checkpoint is covered by none');
    t.match(await verifyChain(stripped, key, { tailCovered: true }), { ok: true }, '…unless a signed head covers it (an export)');
  });

  await t.test('tampering in the database is detected, naming the record', async (t) => {
    const before = await collect(store);
    const n = before.length;
    const cases: Array<[string, () => Promise<void>, { seq: number; reason: string }]> = [
      ['edit a principal', () => engine.sql(engine.editPrincipal, [1]), { seq: 1, reason: 'hash' }],
      ['delete a record', () => engine.sql('DELETE FROM audit_records WHERE seq = 2'), { seq: 3, reason: 'sequence' }],
      ['reorder two records', async () => {
        await engine.sql('UPDATE audit_records SET seq = -1 WHERE seq = 2');
        await engine.sql('UPDATE audit_records SET seq = 2 WHERE seq = 3');
        await engine.sql('UPDATE audit_records SET seq = 3 WHERE seq = -1');
      }, { seq: 2, reason: 'previous-hash' }],
      ['append a forged record with a correct hash', async () => {
        const last = before.at(-1)!;
        const data = JSON.parse(canonicalJson({ serial: '666', principals: ['root'] })) as Record<string, unknown>;
        const at = new Date().toISOString();
        const hash = recordHash(last.hash, n + 1, at, 'issued', data);
        const forger = new CheckpointSigner((await import('node:crypto')).generateKeyPairSync('ed25519').privateKey);
        await engine.sql('INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES ($1, $2, $3, $4, $5, $6, $7)', [n + 1, at, 'issued', canonicalJson(data), last.hash, hash, forger.signSync(n + 1, hash)]);
      }, { seq: n + 1, reason: 'checkpoint' }],
    ];
    for (const [name, tamper, expected] of cases) {
      // Each case starts from the intact chain.
      await engine.sql('DELETE FROM audit_records');
      for (const r of before) {
        await engine.sql('INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES ($1, $2, $3, $4, $5, $6, $7)', [r.seq, r.at, r.kind, canonicalJson(r.data), r.prevHash, r.hash, r.checkpoint ?? '']);
      }
      t.equal((await verifyChain(store.exportRecords(), key)).ok, true, `${name}: intact before`);
      await tamper();
      const verdict = await verifyChain(store.exportRecords(), key);
      t.match(verdict, { ok: false, failure: expected }, name);
    }
    const otherKey = await importCheckpointKey({ ...new CheckpointSigner((await import('node:crypto')).generateKeyPairSync('ed25519').privateKey).jwk });
    t.match(await verifyChain(store.exportRecords(), otherKey), { ok: false, failure: { seq: 1, reason: 'checkpoint' } }, 'checkpoints checked against another key');
  });
}

t.test('SQLite store', async (t) => {
  const path = join(t.testdir(), 'audit.db');
  const raw = new Database(path);
  t.teardown(() => raw.close());
  await contract(t, {
    open: async () => new SqliteAuditLog(path, signer, { busyTimeoutMs: 50 }),
    sql: async (statement, params = []) => {
      raw.prepare(statement.replace(/\$\d+/g, '?')).run(...(params as unknown[]));
    },
    editPrincipal: `UPDATE audit_records SET data = json_set(data, '$.principals[0]', 'mallory') WHERE seq = ?`,
    uniqueViolation: { code: 'STORE_DUPLICATE_SERIAL' },
    outage: async () => {
      const locker = new Database(path);
      locker.exec('BEGIN EXCLUSIVE');
      return { restore: async () => {
        locker.exec('ROLLBACK');
        locker.close();
      } };
    },
  });
});

t.test('PostgreSQL store', needsPostgres, async (t) => {
  const server = await startPostgres(t);
  // The raw connection dies with the server during the outage case: expected, not a crash.
  const connect = async () => {
    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  const raw = await connect();
  t.teardown(() => raw.end().catch(() => undefined));
  let rawClient = raw;
  await contract(t, {
    open: () => PostgresAuditLog.open(server.url, signer, { timeoutMs: 2000 }),
    sql: async (statement, params = []) => {
      await rawClient.query(statement.replace('$4, $5', '$4::jsonb, $5'), params);
    },
    editPrincipal: `UPDATE audit_records SET data = jsonb_set(data, '{principals,0}', '"mallory"') WHERE seq = $1`,
    uniqueViolation: { code: 'STORE_DUPLICATE_SERIAL' },
    outage: async () => {
      server.stop();
      return { restore: async () => {
        server.start();
        rawClient = await connect();
        t.teardown(() => rawClient.end().catch(() => undefined));
      } };
    },
  });
});

// One contract, two engines: SQLite (a file) and PostgreSQL (a throwaway
// cluster on loopback). Records, queries, the shared replay cache, outages,
// and tampering done directly in the database.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import t, { type Test } from 'tap';
import { canonicalJson, importCheckpointKey, recordHash, verifyChain, type ChainedRecord } from '../../../protocol/audit-chain.js';
import type { AuditLog, CommitListener, IssuedRecord } from '../../../server/audit/audit-log.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../../server/audit/postgres-audit-log.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import type { ReplayCache } from '../../../server/identity/replay-cache.js';
import { needsPostgres, startPostgres } from '../../fixtures/postgres.js';

type Store = AuditLog & ReplayCache;

interface Engine {
  open(options?: { onCommit?: CommitListener }): Promise<Store>;
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
  const committed: ChainedRecord[] = [];
  const store = await engine.open({ onCommit: (records) => committed.push(...records) });
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
    t.same(await q({ callers: ['arn:aws:iam::222222222222:user/bob'] }), [3]);
    t.same(await q({ callers: ['arn:aws:iam::222222222222:user/bob', 'arn:aws:iam::111111111111:user/alice'] }), [3, 1], 'any of several callers');
    t.same(await q({ callers: [] }), [], 'a name that matched no caller matches no record');
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

  await t.test("the reviewer's reads: short caller names, active certificates, hourly counts, head (issue 16)", async (t) => {
    const arns = {
      user: 'arn:aws:iam::333333333333:user/eng/dana',
      userPrefixed: 'arn:aws:iam::333333333333:user/dana2',
      userSuffixed: 'arn:aws:iam::333333333333:user/odana',
      session: 'arn:aws:sts::333333333333:assumed-role/deploy/dana',
      sso: 'arn:aws:sts::333333333333:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/erin@example.com',
      roleNamedErin: 'arn:aws:sts::333333333333:assumed-role/erin@example.com/ci-run',
      instance: 'arn:aws:sts::333333333333:assumed-role/aws:ec2-instance/i-0123456789abcdef0',
    };
    const now = Math.floor(Date.now() / 1000);
    const active = (callerArn: string, over: Partial<IssuedRecord> = {}) => store.recordIssued(issued({ callerArn, accountId: '333333333333', principals: ['dana'], validAfter: now - 30, validBefore: now + 3600, ...over }));
    await active(arns.user, { principals: ['dana', 'deploy'] });
    await active(arns.userPrefixed);
    await active(arns.userSuffixed);
    await active(arns.session);
    await active(arns.sso, { principals: ['erin'] });
    await active(arns.roleNamedErin, { principals: ['erin'] });
    await active(arns.instance, { certificateType: 'host', principals: ['i-0123456789abcdef0'] });
    await active(arns.user, { validBefore: now - 1 });
    await active(arns.user, { validAfter: now + 600, validBefore: now + 4000 });

    t.same(await store.callersNamed('dana', 10), [arns.user, arns.session].sort(), 'an IAM user name and a role session name, each matched whole; never dana2 or odana');
    t.same(await store.callersNamed('erin@example.com', 10), [arns.sso], 'an SSO user name; not the role that happens to be called that');
    t.same(await store.callersNamed('i-0123456789abcdef0', 10), [arns.instance], 'an instance identity by its instance id');
    t.same(await store.callersNamed('dan', 10), [], 'a prefix matches nothing');
    t.same(await store.callersNamed('d_na', 10), [], 'no wildcard: _ is a character');
    t.same(await store.callersNamed('deploy', 10), [], 'a role name is not a session name');
    t.equal((await store.callersNamed('dana', 1)).length, 1, 'the limit holds');

    const current = await store.activeIssued(now, {}, 100);
    const byCaller = (arn: string) => current.filter((r) => r.data.callerArn === arn);
    t.equal(byCaller(arns.user).length, 1, 'the expired and the not-yet-valid certificates are not active');
    t.ok(current.every((r, i) => r.kind === 'issued' && (i === 0 || r.seq < current[i - 1]!.seq)), 'issued records, newest first');
    t.ok(current.every((r) => (r.data.validAfter as number) <= now && (r.data.validBefore as number) > now), 'every one valid now');
    t.same((await store.activeIssued(now, { principal: 'deploy' }, 100)).map((r) => r.data.callerArn), [arns.user], 'by principal');
    t.same((await store.activeIssued(now, { callers: [arns.sso, arns.instance] }, 100)).map((r) => r.data.callerArn), [arns.instance, arns.sso], 'by callers');
    t.same(await store.activeIssued(now, { callers: [] }, 100), [], 'no callers, no certificates');
    t.equal((await store.activeIssued(now, {}, 2)).length, 2, 'the limit holds');
    t.same(await store.activeIssued(now + 7200, { callers: [arns.user] }, 100), [], 'two hours later none is active');

    // An hour long past, so only these records fall in it.
    const hour = (h: number, m: number) => new Date(Date.UTC(2020, 0, 1, h, m));
    await store.recordIssued(issued({ at: hour(10, 5) }));
    await store.recordRefusal({ requestId: 'h1', at: hour(10, 30), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' });
    await store.recordRefusalSummary({ at: hour(11, 0), intervalStart: hour(10, 59), total: 5, counts: [{ code: 'AUTHN_MISSING', network: '10.0.0.0/24', count: 5 }] });
    await store.recordRevocation({ requestId: 'h2', at: hour(11, 10), serial: '77', caFingerprint: 'SHA256:ca', validBefore: 1, revokedBy: 'serial', reason: 'test', callerArn: arns.user, accountId: '333333333333', sourceIp: '10.0.0.1' });
    t.same(await store.hourlyCounts(hour(9, 0), hour(12, 0)), [
      { hour: '2020-01-01T10:00:00.000Z', issued: 1, refused: 1, revoked: 0 },
      { hour: '2020-01-01T11:00:00.000Z', issued: 0, refused: 5, revoked: 1 },
    ], 'per hour; a summary counts every refusal it stands for');
    t.same(await store.hourlyCounts(hour(11, 0), hour(11, 5)), [{ hour: '2020-01-01T11:00:00.000Z', issued: 0, refused: 5, revoked: 0 }], 'until is exclusive');

    const all = await collect(store);
    const last = all.at(-1)!;
    t.same(await store.head(), { seq: last.seq, hash: last.hash }, 'the head is the newest record');
    t.equal(await store.hashAt(3), all[2]!.hash);
    t.equal(await store.hashAt(last.seq + 1), undefined, 'no record, no hash');
    t.equal(await store.firstSeqSince(hour(11, 0)), all.find((r) => r.at >= hour(11, 0).toISOString())!.seq, 'the first record at or after a time');
    t.equal(await store.firstSeqSince(new Date(Date.now() + 3600_000)), undefined);
    const tail = [];
    for await (const r of store.exportRecords(last.seq - 2)) tail.push(r.seq);
    t.same(tail, [last.seq - 2, last.seq - 1, last.seq], 'an export from a sequence number');
    t.same(committed.map((r) => [r.seq, r.hash]), all.map((r) => [r.seq, r.hash]), 'every committed record reached the commit listener once, in order; failed batches never did');
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
    open: async (options) => new SqliteAuditLog(path, signer, { busyTimeoutMs: 50, ...options }),
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
    open: (options) => PostgresAuditLog.open(server.url, signer, { timeoutMs: 2000, ...options }),
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

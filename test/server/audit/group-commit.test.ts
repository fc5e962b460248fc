// The batching itself: who goes in which batch, and that no caller is
// answered before its batch has committed.
import t from 'tap';
import { GroupCommit, type BatchOutcome } from '../../../server/audit/group-commit.js';

/** A commit the test finishes by hand. */
function manualCommit() {
  const batches: Array<{ items: readonly number[]; finish: (outcome: BatchOutcome<string> | Error) => void }> = [];
  const group = new GroupCommit<number, string>(
    (items) => new Promise((resolve, reject) => batches.push({ items, finish: (o) => (o instanceof Error ? reject(o) : resolve(o)) })),
    4,
  );
  return { group, batches };
}
const allOk = (items: readonly number[]): BatchOutcome<string> => items.map((i) => ({ ok: true, value: `v${i}` }));
const tick = () => new Promise((r) => setImmediate(r));

t.test('one tick is one batch; what arrives during a commit is the next; nobody resolves before its commit', async (t) => {
  const { group, batches } = manualCommit();
  const settled: number[] = [];
  const first = [1, 2, 3].map((i) => group.submit(i).then((v) => (settled.push(i), v)));
  await tick();
  t.same(batches.map((b) => b.items), [[1, 2, 3]], 'submitted together, committed together');
  const second = [4, 5].map((i) => group.submit(i).then((v) => (settled.push(i), v)));
  await tick();
  t.equal(batches.length, 1, 'one commit at a time: 4 and 5 wait');
  t.same(settled, [], 'no caller resolved before its batch committed');
  batches[0]!.finish(allOk(batches[0]!.items));
  t.same(await Promise.all(first), ['v1', 'v2', 'v3']);
  await tick();
  t.same(batches[1]!.items, [4, 5], 'the next batch: everything that waited');
  t.same(settled, [1, 2, 3]);
  batches[1]!.finish(allOk(batches[1]!.items));
  t.same(await Promise.all(second), ['v4', 'v5']);
  await group.idle();
});

t.test('a failed commit fails its whole batch and only it; per-item errors stay per item; batches are capped', async (t) => {
  const { group, batches } = manualCommit();
  const doomed = [1, 2].map((i) => group.submit(i));
  await tick();
  const later = [3, 4, 5, 6, 7].map((i) => group.submit(i));
  batches[0]!.finish(new Error('disk says no'));
  for (const p of doomed) await t.rejects(p, { message: 'disk says no' });
  await tick();
  t.same(batches[1]!.items, [3, 4, 5, 6], 'at most maxBatch per commit');
  batches[1]!.finish([{ ok: true, value: 'v3' }, { ok: false, error: new Error('serial taken') }, { ok: true, value: 'v5' }, { ok: true, value: 'v6' }]);
  t.equal(await later[0], 'v3');
  await t.rejects(later[1]!, { message: 'serial taken' }, 'only the item refused');
  t.equal(await later[2], 'v5');
  await tick();
  t.same(batches[2]!.items, [7]);
  batches[2]!.finish([]);
  await t.rejects(later[4]!, /committed 0 results/, 'a commit that answers for the wrong number of items fails them');
  await group.idle();
});

t.test('SQLite: reads and the event loop go on while a batch holds the write transaction', async (t) => {
  const { join } = await import('node:path');
  const { CheckpointSigner } = await import('../../../server/audit/checkpoint-signer.js');
  const { SqliteAuditLog } = await import('../../../server/audit/sqlite-audit-log.js');
  const dir = t.testdir();
  const real = CheckpointSigner.openOrCreate(join(dir, 'cp.pem'));
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let signing!: () => void;
  const signingStarted = new Promise<void>((r) => (signing = r));
  // A checkpoint key that takes as long as the test says (a slow KMS): the batch waits inside its transaction.
  let slowNow = false;
  const slow = { jwk: real.jwk, signHead: real.signHead.bind(real), sign: async (seq: number, hash: string) => (slowNow && (signing(), await held), real.sign(seq, hash)) };
  const store = new SqliteAuditLog(join(dir, 'audit.db'), slow);
  t.teardown(() => store.close());
  await store.recordRefusal({ requestId: 'r0', at: new Date(), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' });
  slowNow = true;
  const first = store.recordRefusal({ requestId: 'r1', at: new Date(), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' });
  await signingStarted;
  const timerFired = await new Promise<boolean>((r) => setTimeout(() => r(true), 20));
  t.ok(timerFired, 'the event loop runs while the batch is open');
  const page = await store.query({}, { limit: 10 });
  t.same(page.records.map((r) => r.data.requestId), ['r0'], 'a read answers mid-commit, and sees only what is committed');
  let committed = false;
  void first.then(() => (committed = true));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(committed, false, 'the append is not answered before its commit');
  release();
  await first;
  t.same((await store.query({}, { limit: 10 })).records.map((r) => r.data.requestId), ['r1', 'r0']);
});

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

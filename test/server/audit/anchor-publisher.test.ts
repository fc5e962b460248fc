// The publisher anchors real chains (the SQLite store, a real checkpoint
// signer) and refuses — publishing nothing — when the chain has lost its
// anchored end or disagrees with it.
import { generateKeyPairSync } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { anchorName, formatAnchor, makeAnchor, type Anchor } from '../../../protocol/audit-anchor.js';
import { importCheckpointKey, recordHash, type ChainedRecord } from '../../../protocol/audit-chain.js';
import { AnchorPublisher, type AnchorPublisherDeps } from '../../../server/audit/anchor-publisher.js';
import { AnchorError, type AnchorStore } from '../../../server/audit/anchor-store.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { DirectoryAnchorStore } from '../../../server/audit/directory-anchor-store.js';
import { S3AnchorStore } from '../../../server/audit/s3-anchor-store.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { startS3Fixture } from '../../fixtures/s3-fixture.js';

const signer = new CheckpointSigner(generateKeyPairSync('ed25519').privateKey);
const verifyKey = await importCheckpointKey({ ...signer.jwk });
const forger = new CheckpointSigner(generateKeyPairSync('ed25519').privateKey);

/** A real chain, written record by record, whose view the publisher gets (as AuditLog.head/hashAt would give it). */
class Chain {
  records: ChainedRecord[] = [];
  private constructor(private readonly store: SqliteAuditLog) {}

  static async open(t: Test): Promise<Chain> {
    const store = new SqliteAuditLog(join(t.testdir(), 'audit.db'), signer);
    t.teardown(() => store.close());
    return new Chain(store);
  }

  async append(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.store.recordRefusal({ requestId: `r${this.records.length + i}`, at: new Date(), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' });
    this.records = [];
    for await (const r of this.store.exportRecords()) this.records.push(r);
  }

  head = async () => {
    const last = this.records.at(-1);
    return last && { seq: last.seq, hash: last.hash };
  };

  hashAt = async (seq: number) => this.records.find((r) => r.seq === seq)?.hash;
}

const clock = { t: Date.parse('2026-11-20T10:00:00.000Z'), now() { return new Date(this.t); } };

function publisher(chain: Chain, store: AnchorStore, over: Partial<AnchorPublisherDeps> = {}) {
  const logs: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const p = new AnchorPublisher({
    store, chainHead: chain.head, hashAt: chain.hashAt, signHead: (seq, hash, at) => signer.signHead(seq, hash, at), verifyKey, clock, intervalMs: 1000,
    log: { info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }), error: (obj, msg) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }) },
    ...over,
  });
  return { p, logs };
}

/** The store, counting publications. */
function counting(store: AnchorStore): AnchorStore & { published: Anchor[] } {
  const published: Anchor[] = [];
  return { location: store.location, published, newest: (n) => store.newest(n), publish: async (a) => (published.push(a), store.publish(a)) };
}

t.test('anchors the head, skips an unchanged one, follows the chain', async (t) => {
  const chain = await Chain.open(t);
  const store = counting(await DirectoryAnchorStore.open(join(t.testdir(), 'anchors')));
  const { p, logs } = publisher(chain, store);
  t.same(await p.anchorNow(), { outcome: 'empty' }, 'an empty chain: nothing to anchor');
  t.same(store.published, []);

  await chain.append(3);
  const first = await p.anchorNow();
  t.match(first, { outcome: 'created', anchor: { seq: 3, hash: chain.records[2]!.hash, at: clock.now().toISOString() } });
  t.match(logs.at(-1), { level: 'info', obj: { seq: 3, outcome: 'created' } });
  t.match(await p.anchorNow(), { outcome: 'unchanged', anchor: { seq: 3 } });
  t.equal(store.published.length, 1, 'nothing published for an unchanged head');

  await chain.append(2);
  clock.t += 60_000;
  t.match(await p.anchorNow(), { outcome: 'created', anchor: { seq: 5 } });
  t.same((await store.newest(5)).map((a) => a.seq), [5, 3]);
  t.match(p.status(), { newest: { seq: 5 }, lastSuccessAt: clock.now() });

  await chain.append(1);
  const [a, b] = await Promise.all([p.anchorNow(), p.anchorNow()]);
  t.same([a.outcome, b.outcome], ['created', 'unchanged'], 'two at once run one after the other');
});

t.test('refuses to anchor a truncated chain, and publishes nothing', async (t) => {
  const chain = await Chain.open(t);
  const dir = join(t.testdir(), 'anchors');
  const store = counting(await DirectoryAnchorStore.open(dir));
  await chain.append(6);
  await publisher(chain, store).p.anchorNow();
  t.same(await readdir(dir), [anchorName(6)]);

  // The newest records deleted from the database (the chain as head/hashAt now see it).
  chain.records = chain.records.slice(0, 4);
  const { p, logs } = publisher(chain, store);
  await t.rejects(p.anchorNow(), { code: 'AUDIT_TRUNCATED' });
  t.same(await readdir(dir), [anchorName(6)], 'no new anchor over the shorter chain');
  t.equal(store.published.length, 1);
  t.match(p.status(), { lastError: { code: 'AUDIT_TRUNCATED' } });

  // Even after new records bring the chain past the anchored seq, the
  // record at 6 is not the anchored one: the check still refuses.
  const rewritten = chain.records.slice(0, 4);
  for (let seq = 5; seq <= 7; seq++) {
    const prevHash = rewritten.at(-1)!.hash;
    const at = new Date().toISOString();
    const data = { code: 'POLICY_NO_RULE', sourceIp: '10.9.9.9', requestId: `x${seq}` };
    const hash = recordHash(prevHash, seq, at, 'refused', data);
    rewritten.push({ seq, at, kind: 'refused', data, prevHash, hash, checkpoint: signer.signSync(seq, hash) });
  }
  chain.records = rewritten;
  await t.rejects(p.anchorNow(), { code: 'AUDIT_ANCHOR_MISMATCH' });
  t.equal(store.published.length, 1, 'nothing published over rewritten history');

  // start() reports it rather than starting quietly.
  await t.rejects(p.start(), { code: 'AUDIT_ANCHOR_MISMATCH' });
  await p.stop();
  t.equal(logs.filter((l) => l.level === 'info').length, 0);
});

t.test('an anchor the checkpoint key did not sign is not believed', async (t) => {
  const chain = await Chain.open(t);
  const dir = join(t.testdir(), 'anchors');
  const store = counting(await DirectoryAnchorStore.open(dir));
  await chain.append(2);
  const { writeFile } = await import('node:fs/promises');
  const last = chain.records.at(-1)!;
  const at = clock.now().toISOString();
  await writeFile(join(dir, anchorName(last.seq)), formatAnchor(makeAnchor(last.seq, last.hash, at, await forger.signHead(last.seq, last.hash, at))));
  await t.rejects(publisher(chain, store).p.anchorNow(), { code: 'ANCHOR_INVALID' });
  t.same(store.published, []);

  // Nor does the publisher publish an anchor its own key would not verify.
  const other = await Chain.open(t);
  await other.append(1);
  const fresh = counting(await DirectoryAnchorStore.open(join(t.testdir(), 'fresh')));
  await t.rejects(publisher(other, fresh, { signHead: (s, h, a) => forger.signHead(s, h, a) }).p.anchorNow(), { code: 'ANCHOR_CONFIG' });
  t.same(fresh.published, []);
});

t.test('S3: the same refusal, and not one PUT', async (t) => {
  const s3 = await startS3Fixture(t);
  s3.createBucket('anchors', { denyDeletes: true, requireIfNoneMatch: true });
  const client = s3.client();
  t.teardown(() => client.destroy());
  const store = new S3AnchorStore({ s3: client, bucket: 'anchors', prefix: 'sshca/', retentionDays: 365 });
  const chain = await Chain.open(t);
  await chain.append(5);
  t.match(await publisher(chain, store).p.anchorNow(), { outcome: 'created', anchor: { seq: 5 } });
  chain.records = chain.records.slice(0, 3);
  const before = s3.requests.length;
  await t.rejects(publisher(chain, store).p.anchorNow(), { code: 'AUDIT_TRUNCATED' });
  t.same(s3.requests.slice(before).filter((r) => r.method !== 'GET'), [], 'only reads');
});

t.test('start, the timer, stop', async (t) => {
  await t.test('an unreachable store at start-up is logged and retried by the timer', async (t) => {
    const chain = await Chain.open(t);
    await chain.append(1);
    const real = await DirectoryAnchorStore.open(join(t.testdir(), 'anchors'));
    let down = true;
    const store: AnchorStore = {
      location: real.location,
      newest: (n) => (down ? Promise.reject(new AnchorError('ANCHOR_UNAVAILABLE', 'down')) : real.newest(n)),
      publish: (a) => real.publish(a),
    };
    const { p, logs } = publisher(chain, store);
    t.equal(await p.start(), undefined);
    t.match(logs, [{ level: 'error', obj: { code: 'ANCHOR_UNAVAILABLE' } }]);
    down = false;
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await p.stop();
    t.same((await real.newest(1)).map((a) => a.seq), [1], 'the timer published once the store was back');
  });

  await t.test('stop waits for a publication in flight', async (t) => {
    const chain = await Chain.open(t);
    await chain.append(1);
    const real = await DirectoryAnchorStore.open(join(t.testdir(), 'anchors'));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const events: string[] = [];
    const store: AnchorStore = {
      location: real.location,
      newest: (n) => real.newest(n),
      publish: async (a) => {
        await gate;
        events.push('published');
        return real.publish(a);
      },
    };
    const { p } = publisher(chain, store);
    const running = p.anchorNow();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopped = p.stop().then(() => events.push('stopped'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.same(events, [], 'stop() has not returned while the publication waits');
    release();
    await Promise.all([running, stopped]);
    t.same(events, ['published', 'stopped']);
  });

  t.throws(() => new AnchorPublisher({ intervalMs: 10 } as AnchorPublisherDeps), { code: 'ANCHOR_CONFIG' });
});

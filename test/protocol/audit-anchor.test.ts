// Anchors: names that list newest first, strict parsing, and the checks that
// catch what the chain alone cannot — records deleted from its end, history
// rewritten and re-signed — on real chains written by the SQLite store.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import {
  anchorKey, anchorName, checkAnchors, formatAnchor, makeAnchor, newestAnchorNames, parseAnchor, parseAnchorName, verifyExportAgainstAnchors, type Anchor,
} from '../../protocol/audit-anchor.js';
import { importCheckpointKey, recordHash, verifyChain, verifyExport, type ChainedRecord } from '../../protocol/audit-chain.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';

const signer = new CheckpointSigner(generateKeyPairSync('ed25519').privateKey);
const key = await importCheckpointKey({ ...signer.jwk });
const forger = new CheckpointSigner(generateKeyPairSync('ed25519').privateKey);
const dir = t.testdir();
const T0 = Date.parse('2026-11-20T10:00:00.000Z');
const iso = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

/** Writes `n` records one at a time (one batch, one checkpoint each) and returns the export. */
async function writeChain(path: string, n: number): Promise<ChainedRecord[]> {
  const store = new SqliteAuditLog(path, signer);
  try {
    for (let i = 1; i <= n; i++) await store.recordRefusal({ requestId: `r${i}`, at: new Date(T0 + i * 1000), code: 'POLICY_NO_RULE', sourceIp: '10.0.0.1' });
    return await readChain(store);
  } finally {
    await store.close();
  }
}

async function readChain(store: SqliteAuditLog): Promise<ChainedRecord[]> {
  const records: ChainedRecord[] = [];
  for await (const r of store.exportRecords()) records.push(r);
  return records;
}

/** The chain view checkAnchors takes, derived from exported records. */
const view = (records: readonly ChainedRecord[], firstSeq = records[0]?.seq ?? 1) => ({
  firstSeq,
  lastSeq: records.at(-1)?.seq ?? 0,
  hashAt: (seq: number) => records.find((r) => r.seq === seq)?.hash,
});

async function anchorOf(r: ChainedRecord, at: string, by = signer): Promise<Anchor> {
  return makeAnchor(r.seq, r.hash, at, await by.signHead(r.seq, r.hash, at));
}

async function exportLines(records: readonly ChainedRecord[], at: string): Promise<string[]> {
  const last = records.at(-1)!;
  return [...records.map((r) => JSON.stringify({ type: 'record', ...r })), JSON.stringify({ type: 'head', seq: last.seq, hash: last.hash, at, checkpoint: await signer.signHead(last.seq, last.hash, at) })];
}

const chain = await writeChain(join(dir, 'chain.db'), 6);

t.test('names list the newest first, in one sorted listing', async (t) => {
  const seqs = [1, 2, 9, 10, 11, 99, 100, 101, 12345, 999_999, 1_000_000, 2 ** 40, 1e15 - 1];
  const shuffled = [...seqs].sort(() => Math.random() - 0.5).map((s) => anchorName(s));
  t.same([...shuffled].sort().map((n) => parseAnchorName(n)), [...seqs].sort((a, b) => b - a), 'lexicographic order is newest first');
  t.same(newestAnchorNames([...shuffled, 'README', '.tmp', 'x.json'], 3).map((n) => parseAnchorName(n)), [1e15 - 1, 2 ** 40, 1_000_000]);
  t.equal(anchorKey(43, 'audit/anchors/'), `audit/anchors/${anchorName(43)}`);
  t.equal(anchorName(43), '0999999999999957-43.json');
  t.equal(parseAnchorName('0999999999999957-44.json'), undefined, 'halves that disagree are not an anchor name');
  t.equal(parseAnchorName('0999999999999957-043.json'), undefined);
  for (const bad of [0, -1, 1.5, 1e15, Number.NaN]) t.throws(() => anchorName(bad), { code: 'ANCHOR_INVALID' }, `seq ${bad}`);
});

t.test('documents parse strictly', async (t) => {
  const anchor = await anchorOf(chain[2]!, iso(1));
  const text = formatAnchor(anchor);
  t.same(parseAnchor(text), anchor, 'round trip');
  t.same(Object.keys(JSON.parse(text) as object), ['type', 'version', 'seq', 'hash', 'at', 'checkpoint']);
  const doc = JSON.parse(text) as Record<string, unknown>;
  const bad: Array<[string, string]> = [
    ['duplicate member', text.replace('"seq":3,', '"seq":3,"seq":6,')],
    ['unknown member', JSON.stringify({ ...doc, extra: 1 })],
    ['other type', JSON.stringify({ ...doc, type: 'sshca-audit-head' })],
    ['other version', JSON.stringify({ ...doc, version: 2 })],
    ['seq as text', JSON.stringify({ ...doc, seq: '3' })],
    ['hash in capitals', JSON.stringify({ ...doc, hash: anchor.hash.toUpperCase() })],
    ['time with an offset', JSON.stringify({ ...doc, at: '2026-11-20T11:00:00.000+01:00' })],
    ['not a JWS', JSON.stringify({ ...doc, checkpoint: 'x' })],
    ['an array', '[]'],
    ['oversized', JSON.stringify({ ...doc, checkpoint: `${anchor.checkpoint}${'A'.repeat(9000)}` })],
  ];
  for (const [what, text] of bad) t.throws(() => parseAnchor(text), { code: 'ANCHOR_INVALID' }, what);
});

t.test('checkAnchors', async (t) => {
  await t.test('a chain that reaches every anchor and agrees with it passes', async (t) => {
    const anchors = [await anchorOf(chain[2]!, iso(1)), await anchorOf(chain[5]!, iso(2)), await anchorOf(chain[4]!, iso(3))];
    const check = await checkAnchors(view(chain), anchors, key);
    t.match(check, { ok: true, checked: 3, skipped: 0 });
    t.equal(check.ok && check.newest?.seq, 6, 'newest is the highest seq checked');
    t.match(await checkAnchors(view(chain), [], key), { ok: true, checked: 0 });
  });

  await t.test('a chain that ends before an anchored head: truncated', async (t) => {
    const anchors = [await anchorOf(chain[2]!, iso(1)), await anchorOf(chain[5]!, iso(2))];
    const cut = chain.slice(0, 4);
    t.ok((await verifyChain(cut, key)).ok, 'the shorter chain verifies on its own');
    t.match(await checkAnchors(view(cut), anchors, key), { ok: false, failure: { reason: 'truncated', finding: 'beyond', seq: 6 } });
    t.match(await checkAnchors(view([]), anchors, key), { ok: false, failure: { reason: 'truncated', seq: 6 } }, 'an emptied chain too');
  });

  await t.test('a rewritten, re-signed history disagrees with the anchor: anchor', async (t) => {
    const anchors = [await anchorOf(chain[3]!, iso(1))];
    // Whoever holds the checkpoint key edits record 2 and re-hashes and
    // re-signs everything after it: the chain alone verifies.
    const rewritten: ChainedRecord[] = [];
    for (const r of chain) {
      const prevHash = rewritten.at(-1)?.hash ?? r.prevHash;
      const data = r.seq === 2 ? { ...r.data, sourceIp: '192.0.2.1' } : r.data;
      const hash = recordHash(prevHash, r.seq, r.at, r.kind, data);
      rewritten.push({ ...r, data, prevHash, hash, checkpoint: signer.signSync(r.seq, hash) });
    }
    t.ok((await verifyChain(rewritten, key)).ok, 'the rewritten chain verifies on its own');
    t.match(await checkAnchors(view(rewritten), anchors, key), { ok: false, failure: { reason: 'anchor', finding: 'hash', seq: 4 } });
  });

  await t.test('an anchor not signed by the checkpoint key: anchor, never believed', async (t) => {
    const forged = await anchorOf(chain[5]!, iso(1), forger);
    t.match(await checkAnchors(view(chain), [forged], key), { ok: false, failure: { reason: 'anchor', finding: 'signature', seq: 6 } });
    // A forged anchor far beyond the end is a forgery, not a truncation.
    const far = makeAnchor(1000, chain[5]!.hash, iso(1), await forger.signHead(1000, chain[5]!.hash, iso(1)));
    t.match(await checkAnchors(view(chain), [far], key), { ok: false, failure: { reason: 'anchor', finding: 'signature' } });
    // A genuine signature over one statement does not carry over to another.
    const genuine = await anchorOf(chain[5]!, iso(1));
    const altered = { ...genuine, seq: 7 };
    t.match(await checkAnchors(view(chain), [altered], key), { ok: false, failure: { reason: 'anchor', finding: 'signature', seq: 7 } });
    t.match(await checkAnchors(view(chain), [{ ...genuine, at: iso(2) }], key), { ok: false, failure: { finding: 'signature' } });
  });

  await t.test('a partial export skips (and counts) anchors older than its first record', async (t) => {
    const anchors = [await anchorOf(chain[1]!, iso(1)), await anchorOf(chain[2]!, iso(2)), await anchorOf(chain[4]!, iso(3))];
    t.match(await checkAnchors(view(chain.slice(3)), anchors, key), { ok: true, checked: 1, skipped: 2 });
    // Skipping is by position only: a newer anchor beyond the end still fails.
    t.match(await checkAnchors(view(chain.slice(3, 4)), anchors, key), { ok: false, failure: { reason: 'truncated', seq: 5 } });
  });

  await t.test('asOf: anchors published after an old export are not held against it', async (t) => {
    const later = await anchorOf(chain[5]!, iso(10));
    const cut = chain.slice(0, 4);
    t.match(await checkAnchors({ ...view(cut), asOf: iso(5) }, [later], key), { ok: true, checked: 0, skipped: 1 });
    t.match(await checkAnchors({ ...view(cut), asOf: iso(15) }, [later], key), { ok: false, failure: { reason: 'truncated' } }, 'an export signed after the anchor is held to it');
    t.match(await checkAnchors(view(cut), [later], key), { ok: false, failure: { reason: 'truncated' } }, 'strict without asOf');
  });
});

t.test('verifyExportAgainstAnchors: the newest records deleted in the database', async (t) => {
  const path = join(dir, 'truncated.db');
  const records = await writeChain(path, 6);
  const anchors = [await anchorOf(records[2]!, iso(1)), await anchorOf(records[5]!, iso(2))];
  const full = await exportLines(records, iso(3));
  t.match(await verifyExportAgainstAnchors(full, key, anchors), { ok: true, count: 6, anchors: { checked: 2, skipped: 0 } });

  const db = new Database(path);
  db.prepare('DELETE FROM audit_records WHERE seq > 4').run();
  db.close();
  const store = new SqliteAuditLog(path, signer);
  const remaining = await readChain(store).finally(() => store.close());
  t.equal(remaining.length, 4);
  const lines = await exportLines(remaining, iso(4));
  t.match(await verifyExport(lines, key), { ok: true, count: 4 }, 'without anchors the shorter chain verifies');
  t.match(await verifyExportAgainstAnchors(lines, key, anchors), { ok: false, failure: { reason: 'truncated', seq: 6 } });
  t.match(await verifyExportAgainstAnchors(lines, key, anchors, { asOfHead: true }), { ok: false, failure: { reason: 'truncated' } }, 'the export was signed after the anchor');

  // A chain broken in the middle is reported as such, before any anchor.
  const broken = full.filter((_, i) => i !== 1);
  t.match(await verifyExportAgainstAnchors(broken, key, anchors), { ok: false, failure: { reason: 'sequence' } });
});

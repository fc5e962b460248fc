// The SQLite store's own thread (issue 14): every fsync'd transaction and
// every query runs here, never on the thread that answers requests. Started
// twice by sqlite-audit-log.ts: a writer (one group-commit batch at a time)
// and a reader (queries, exports, the KRL's revocation read), so a long
// audit query never delays a commit and a commit never delays a query.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { ChainedRecord } from '../../protocol/audit-chain.js';
import { canonicalJson } from '../../protocol/audit-hash.js';
import type { ActiveFilter, AuditFilter, HourlyCounts } from './audit-log.js';
import { issuedSerials, lastLinked, linkBatch, type AppendInput, type LinkedRecord } from './chain-batch.js';

export interface WorkerSettings {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly role: 'writer' | 'reader';
}

/** One operation of a write batch. */
export type WriteOp =
  | { readonly type: 'claim'; readonly key: string; readonly expiresAt: number; readonly purgeBefore: number }
  | ({ readonly type: 'append' } & AppendInput)
  /** A write probe (/readyz): a store that can be read but not written is not ready. */
  | { readonly type: 'probe' };

/** What a write op resolves to: claimed or not; the record's sequence number; the probe's true. */
export type WriteResult = { readonly ok: true; readonly value: boolean | number } | { readonly ok: false; readonly error: SerializedError };

export interface SerializedError {
  readonly message: string;
  readonly code?: string;
}

/** What a write batch answers: each op's result, and the records it committed (oldest first). */
export interface WriteBatchResult {
  readonly results: readonly WriteResult[];
  readonly committed: readonly LinkedRecord[];
}

export type ReadMethod =
  | 'revocationRecords'
  | 'newestRevocationSeq'
  | 'revocationQueryPlan'
  | 'query'
  | 'latestExpiry'
  | 'exportPage'
  | 'activeIssued'
  | 'callersNamed'
  | 'hourlyCounts'
  | 'head'
  | 'hashAt'
  | 'firstSeqSince';

/** Main thread → worker. */
export type ToWorker =
  | { readonly id: number; readonly op: 'write'; readonly ops: readonly WriteOp[] }
  | { readonly id: number; readonly op: 'signed'; readonly checkpoint?: string; readonly error?: SerializedError }
  | { readonly id: number; readonly op: 'read'; readonly method: ReadMethod; readonly args: readonly unknown[] }
  | { readonly id: number; readonly op: 'close' };

/** Worker → main thread. */
export type FromWorker =
  | { readonly op: 'opened' }
  | { readonly op: 'failed'; readonly error: SerializedError }
  | { readonly id: number; readonly op: 'sign'; readonly seq: number; readonly hash: string }
  | { readonly id: number; readonly op: 'done'; readonly value: unknown }
  | { readonly id: number; readonly op: 'error'; readonly error: SerializedError };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_records (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  -- '' on every record of a batch but its last (issue 14).
  checkpoint TEXT NOT NULL
);
-- Rule 8: serials are unique across everything this CA ever issued.
CREATE UNIQUE INDEX IF NOT EXISTS audit_records_serial ON audit_records (json_extract(data, '$.serial')) WHERE kind = 'issued';
CREATE INDEX IF NOT EXISTS audit_records_at ON audit_records (at);
-- The KRL reads revocations through this index: its cost follows the number
-- of revocations, not the size of the record.
CREATE INDEX IF NOT EXISTS audit_records_revocations ON audit_records (seq) WHERE kind IN ('revoked', 'withdrawn');
-- "Who has access now" (issue 16) reads certificates not yet expired through this index.
CREATE INDEX IF NOT EXISTS audit_records_valid_before ON audit_records (json_extract(data, '$.validBefore')) WHERE kind = 'issued';
CREATE TABLE IF NOT EXISTS used_token_signatures (
  signature TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS used_token_signatures_expiry ON used_token_signatures (expires_at);
`;

/** The revocation index's condition, written exactly as the index has it so the planner uses it. */
const REVOCATION_KINDS = "kind IN ('revoked', 'withdrawn')";

interface Row {
  seq: number;
  at: string;
  kind: string;
  data: string;
  prev_hash: string;
  hash: string;
  checkpoint: string;
}

function toRecord(row: Row): ChainedRecord {
  return {
    seq: row.seq, at: row.at, kind: row.kind, data: JSON.parse(row.data) as Record<string, unknown>, prevHash: row.prev_hash, hash: row.hash,
    ...(row.checkpoint !== '' ? { checkpoint: row.checkpoint } : {}),
  };
}

function serialize(err: unknown): SerializedError {
  const e = err as { message?: unknown; code?: unknown };
  return { message: String(e?.message ?? err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
}

const settings = workerData as WorkerSettings;
const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);

let db: Database.Database;
try {
  db = new Database(settings.path, { timeout: settings.busyTimeoutMs });
  if (settings.role === 'writer') {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
  }
} catch (err) {
  send({ op: 'failed', error: serialize(err) });
  process.exit(0);
}

const statements = {
  head: db.prepare('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1'),
  insert: db.prepare('INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?)'),
  serialTaken: db.prepare("SELECT 1 FROM audit_records WHERE kind = 'issued' AND json_extract(data, '$.serial') = ?").pluck(),
  purge: db.prepare('DELETE FROM used_token_signatures WHERE expires_at < ?'),
  claim: db.prepare('INSERT OR IGNORE INTO used_token_signatures (signature, expires_at) VALUES (?, ?)'),
  probe: db.prepare('DELETE FROM used_token_signatures WHERE expires_at < 0'),
  revocations: db.prepare(`SELECT * FROM audit_records WHERE ${REVOCATION_KINDS} ORDER BY seq`),
  newestRevocation: db.prepare(`SELECT max(seq) AS s FROM audit_records WHERE ${REVOCATION_KINDS}`).pluck(),
  latestExpiry: db.prepare("SELECT max(json_extract(data, '$.validBefore')) FROM audit_records WHERE kind = 'issued' AND json_extract(data, '$.caFingerprint') = ?").pluck(),
  exportPage: db.prepare('SELECT * FROM audit_records WHERE seq > ? ORDER BY seq LIMIT 1000'),
  hashAt: db.prepare('SELECT hash FROM audit_records WHERE seq = ?').pluck(),
  firstSeqSince: db.prepare('SELECT min(seq) FROM audit_records WHERE at >= ?').pluck(),
  // The last path segment, exactly: `alice` never finds `.../alice2` or `.../malice`.
  callersNamed: db.prepare(
    "SELECT DISTINCT c FROM (SELECT json_extract(data, '$.callerArn') AS c FROM audit_records) WHERE c IS NOT NULL AND substr(c, -(length(@name) + 1)) = '/' || @name ORDER BY c LIMIT @limit",
  ).pluck(),
  hourlyCounts: db.prepare(`SELECT substr(at, 1, 13) AS h,
      sum(kind = 'issued') AS issued,
      sum(CASE kind WHEN 'refused' THEN 1 WHEN 'refused-summary' THEN json_extract(data, '$.total') ELSE 0 END) AS refused,
      sum(kind = 'revoked') AS revoked
    FROM audit_records WHERE at >= ? AND at < ? GROUP BY h ORDER BY h`),
};

/** Checkpoints are signed on the main thread (the key, file or KMS, lives there); the batch waits inside its transaction. */
const signing = new Map<number, { resolve: (jws: string) => void; reject: (err: Error) => void }>();
function checkpoint(id: number, seq: number, hash: string): Promise<string> {
  return new Promise((resolve, reject) => {
    signing.set(id, { resolve, reject });
    send({ id, op: 'sign', seq, hash });
  });
}

/**
 * One batch, one transaction, one fsync. The write lock is held while the
 * checkpoint is signed, so no other process can append in between (as
 * PostgreSQL holds its advisory lock); a failure anywhere rolls back the
 * whole batch and every operation in it fails.
 */
async function write(id: number, ops: readonly WriteOp[]): Promise<WriteBatchResult> {
  db.exec('BEGIN IMMEDIATE');
  try {
    const results: WriteResult[] = new Array<WriteResult>(ops.length);
    const committed: LinkedRecord[] = [];
    const claims = ops.flatMap((op, i) => (op.type === 'claim' ? [{ op, i }] : []));
    if (claims.length > 0) {
      // Kept a margin past expiry: a replica whose clock lags still finds the signature (rule 5).
      statements.purge.run(Math.min(...claims.map((c) => c.op.purgeBefore)));
      for (const { op, i } of claims) results[i] = { ok: true, value: statements.claim.run(op.key, op.expiresAt).changes === 1 };
    }
    ops.forEach((op, i) => {
      if (op.type === 'probe') {
        statements.probe.run();
        results[i] = { ok: true, value: true };
      }
    });
    const appends = ops.flatMap((op, i) => (op.type === 'append' ? [{ op, i }] : []));
    if (appends.length > 0) {
      const inputs = appends.map((a) => a.op);
      const taken = new Set(issuedSerials(inputs).filter((s) => statements.serialTaken.get(s) !== undefined));
      const linked = linkBatch(statements.head.get() as { seq: number; hash: string } | undefined, inputs, taken);
      const last = lastLinked(linked);
      const jws = last ? await checkpoint(id, last.seq, last.hash) : '';
      linked.forEach((r, k) => {
        const i = appends[k]!.i;
        if (r instanceof Error) {
          results[i] = { ok: false, error: serialize(r) };
          return;
        }
        statements.insert.run(r.seq, r.at, r.kind, canonicalJson(r.data), r.prevHash, r.hash, r === last ? jws : '');
        results[i] = { ok: true, value: r.seq };
        committed.push(r);
      });
    }
    db.exec('COMMIT');
    return { results, committed };
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

function query(filter: AuditFilter, page: { before?: number; limit: number }): { records: ChainedRecord[]; nextBefore?: number } {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, ...values: unknown[]) => {
    where.push(sql);
    args.push(...values);
  };
  if (filter.kind) add('kind = ?', filter.kind);
  if (filter.principal) add("EXISTS (SELECT 1 FROM json_each(data, '$.principals') WHERE value = ?)", filter.principal);
  if (filter.callers) callersIn(filter.callers, add);
  if (filter.account) add("json_extract(data, '$.accountId') = ?", filter.account);
  if (filter.serial) add("json_extract(data, '$.serial') = ?", filter.serial);
  if (filter.keyId) add("json_extract(data, '$.keyId') = ?", filter.keyId);
  if (filter.fingerprint) add("(json_extract(data, '$.publicKeyFingerprint') = ? OR json_extract(data, '$.certificateFingerprint') = ?)", filter.fingerprint, filter.fingerprint);
  if (filter.since) add('at >= ?', filter.since.toISOString());
  if (filter.until) add('at < ?', filter.until.toISOString());
  if (page.before !== undefined) add('seq < ?', page.before);
  const sql = `SELECT * FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
  const rows = db.prepare(sql).all(...args, page.limit + 1) as Row[];
  const records = rows.slice(0, page.limit).map(toRecord);
  return { records, ...(rows.length > page.limit ? { nextBefore: records.at(-1)!.seq } : {}) };
}

/** A filter's caller ARNs as `IN (…)`: an empty list matches nothing. */
function callersIn(callers: readonly string[], add: (sql: string, ...values: unknown[]) => void): void {
  if (callers.length === 0) add('0');
  else add(`json_extract(data, '$.callerArn') IN (${callers.map(() => '?').join(', ')})`, ...callers);
}

function activeIssued(nowSeconds: number, filter: ActiveFilter, limit: number): ChainedRecord[] {
  const where = ["kind = 'issued'", "json_extract(data, '$.validBefore') > ?", "json_extract(data, '$.validAfter') <= ?"];
  const args: unknown[] = [nowSeconds, nowSeconds];
  const add = (sql: string, ...values: unknown[]) => {
    where.push(sql);
    args.push(...values);
  };
  if (filter.principal) add("EXISTS (SELECT 1 FROM json_each(data, '$.principals') WHERE value = ?)", filter.principal);
  if (filter.callers) callersIn(filter.callers, add);
  return (db.prepare(`SELECT * FROM audit_records WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`).all(...args, limit) as Row[]).map(toRecord);
}

function hourlyCounts(since: string, until: string): HourlyCounts[] {
  const rows = statements.hourlyCounts.all(since, until) as Array<{ h: string; issued: number; refused: number; revoked: number }>;
  return rows.map((r) => ({ hour: `${r.h}:00:00.000Z`, issued: r.issued, refused: r.refused, revoked: r.revoked }));
}

function read(method: ReadMethod, args: readonly unknown[]): unknown {
  switch (method) {
    case 'revocationRecords':
      return (statements.revocations.all() as Row[]).map(toRecord);
    case 'newestRevocationSeq':
      return (statements.newestRevocation.get() as number | null) ?? 0;
    case 'revocationQueryPlan':
      return (db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM audit_records WHERE ${REVOCATION_KINDS} ORDER BY seq`).all() as Array<{ detail: string }>).map((r) => r.detail).join('\n');
    case 'query':
      return query(args[0] as AuditFilter, args[1] as { before?: number; limit: number });
    case 'latestExpiry':
      return (statements.latestExpiry.get(args[0]) as number | null) ?? undefined;
    case 'exportPage':
      return (statements.exportPage.all(args[0]) as Row[]).map(toRecord);
    case 'activeIssued':
      return activeIssued(args[0] as number, args[1] as ActiveFilter, args[2] as number);
    case 'callersNamed':
      return statements.callersNamed.all({ name: args[0], limit: args[1] });
    case 'hourlyCounts':
      return hourlyCounts(args[0] as string, args[1] as string);
    case 'head':
      return statements.head.get() ?? undefined;
    case 'hashAt':
      return statements.hashAt.get(args[0]) ?? undefined;
    case 'firstSeqSince':
      return (statements.firstSeqSince.get(args[0]) as number | null) ?? undefined;
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.op) {
    case 'write':
      write(message.id, message.ops).then(
        (value) => send({ id: message.id, op: 'done', value }),
        (err: unknown) => send({ id: message.id, op: 'error', error: serialize(err) }),
      );
      return;
    case 'signed': {
      const waiting = signing.get(message.id);
      signing.delete(message.id);
      if (message.checkpoint !== undefined) waiting?.resolve(message.checkpoint);
      else waiting?.reject(Object.assign(new Error(message.error?.message ?? 'the checkpoint was not signed'), { code: message.error?.code }));
      return;
    }
    case 'read':
      try {
        send({ id: message.id, op: 'done', value: read(message.method, message.args) });
      } catch (err) {
        send({ id: message.id, op: 'error', error: serialize(err) });
      }
      return;
    case 'close':
      db.close();
      send({ id: message.id, op: 'done', value: undefined });
      port.close();
      return;
  }
});
send({ op: 'opened' });

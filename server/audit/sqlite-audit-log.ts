// The embedded default's store: one SQLite file holding the chained audit
// record and the replay cache. WAL with synchronous=FULL, appends in
// BEGIN IMMEDIATE transactions: a record, its hash and its checkpoint are
// on disk before the certificate is returned.
import Database from 'better-sqlite3';
import { GENESIS_HASH, canonicalJson, recordHash, type ChainedRecord } from '../../protocol/audit-chain.js';
import { REPLAY_PURGE_MARGIN_MS, type ReplayCache } from '../identity/replay-cache.js';
import {
  definedOnly,
  issuedData,
  refusalData,
  refusalSummaryData,
  revocationData,
  withdrawalData,
  type AuditFilter,
  type AuditLog,
  type AuditPage,
  type IssuedRecord,
  type RefusalRecord,
  type RefusalSummaryRecord,
  type RevocationRecord,
  type WithdrawalRecord,
} from './audit-log.js';
import type { CheckpointKey } from './checkpoint-signer.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_records (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  checkpoint TEXT NOT NULL
);
-- Rule 8: serials are unique across everything this CA ever issued.
CREATE UNIQUE INDEX IF NOT EXISTS audit_records_serial ON audit_records (json_extract(data, '$.serial')) WHERE kind = 'issued';
CREATE INDEX IF NOT EXISTS audit_records_at ON audit_records (at);
-- The KRL reads revocations through this index: its cost follows the number
-- of revocations, not the size of the record.
CREATE INDEX IF NOT EXISTS audit_records_revocations ON audit_records (seq) WHERE kind IN ('revoked', 'withdrawn');
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
  return { seq: row.seq, at: row.at, kind: row.kind, data: JSON.parse(row.data) as Record<string, unknown>, prevHash: row.prev_hash, hash: row.hash, checkpoint: row.checkpoint };
}

/** AuditLog and ReplayCache on one SQLite database. */
export class SqliteAuditLog implements AuditLog, ReplayCache {
  private readonly db: Database.Database;

  constructor(path: string, private readonly checkpoints: CheckpointKey, options: { busyTimeoutMs?: number } = {}) {
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  /** Appends that must sign before they commit (a KMS checkpoint key) run one at a time. */
  private appending: Promise<unknown> = Promise.resolve();

  private async append(kind: string, at: Date, data: Record<string, unknown>): Promise<number> {
    const stored = definedOnly(data);
    const iso = at.toISOString();
    const next = () => {
      const last = this.db.prepare('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS_HASH;
      return { seq, prevHash, hash: recordHash(prevHash, seq, iso, kind, stored) };
    };
    const insert = (r: { seq: number; prevHash: string; hash: string }, checkpoint: string) =>
      this.db.prepare('INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?)').run(r.seq, iso, kind, canonicalJson(stored), r.prevHash, r.hash, checkpoint);
    const signSync = this.checkpoints.signSync?.bind(this.checkpoints);
    if (signSync) {
      // A key in memory: record and checkpoint in one synchronous transaction.
      return this.db
        .transaction(() => {
          const r = next();
          insert(r, signSync(r.seq, r.hash));
          return r.seq;
        })
        .immediate();
    }
    // A remote key: sign the next link, then commit it only if it is still the
    // next one (another process may have appended meanwhile: sign again).
    const run = this.appending.then(async () => {
      for (;;) {
        const r = next();
        const checkpoint = await this.checkpoints.sign(r.seq, r.hash);
        const committed = this.db
          .transaction(() => {
            const now = next();
            if (now.seq !== r.seq || now.prevHash !== r.prevHash) return false;
            insert(r, checkpoint);
            return true;
          })
          .immediate();
        if (committed) return r.seq;
      }
    });
    this.appending = run.catch(() => undefined);
    return run;
  }

  async recordIssued(r: IssuedRecord): Promise<void> {
    await this.append('issued', r.at, issuedData(r));
  }

  async recordRefusal(r: RefusalRecord): Promise<void> {
    await this.append('refused', r.at, refusalData(r));
  }

  async recordRevocation(r: RevocationRecord): Promise<number> {
    return this.append('revoked', r.at, revocationData(r));
  }

  async recordWithdrawal(r: WithdrawalRecord): Promise<number> {
    return this.append('withdrawn', r.at, withdrawalData(r));
  }

  async recordRefusalSummary(r: RefusalSummaryRecord): Promise<void> {
    await this.append('refused-summary', r.at, refusalSummaryData(r));
  }

  async revocationRecords(): Promise<ChainedRecord[]> {
    return (this.db.prepare(`SELECT * FROM audit_records WHERE ${REVOCATION_KINDS} ORDER BY seq`).all() as Row[]).map(toRecord);
  }

  async newestRevocationSeq(): Promise<number> {
    const row = this.db.prepare(`SELECT max(seq) AS s FROM audit_records WHERE ${REVOCATION_KINDS}`).get() as { s: number | null };
    return row.s ?? 0;
  }

  /** The query plan of the revocation read, for the test that pins its use of the index. */
  revocationQueryPlan(): string {
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM audit_records WHERE ${REVOCATION_KINDS} ORDER BY seq`).all() as Array<{ detail: string }>;
    return rows.map((r) => r.detail).join('\n');
  }

  async query(filter: AuditFilter, page: AuditPage): Promise<{ records: ChainedRecord[]; nextBefore?: number }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, ...values: unknown[]) => {
      where.push(sql);
      args.push(...values);
    };
    if (filter.kind) add('kind = ?', filter.kind);
    if (filter.principal) add("EXISTS (SELECT 1 FROM json_each(data, '$.principals') WHERE value = ?)", filter.principal);
    if (filter.caller) add("json_extract(data, '$.callerArn') = ?", filter.caller);
    if (filter.account) add("json_extract(data, '$.accountId') = ?", filter.account);
    if (filter.serial) add("json_extract(data, '$.serial') = ?", filter.serial);
    if (filter.keyId) add("json_extract(data, '$.keyId') = ?", filter.keyId);
    if (filter.fingerprint) add("(json_extract(data, '$.publicKeyFingerprint') = ? OR json_extract(data, '$.certificateFingerprint') = ?)", filter.fingerprint, filter.fingerprint);
    if (filter.since) add('at >= ?', filter.since.toISOString());
    if (filter.until) add('at < ?', filter.until.toISOString());
    if (page.before !== undefined) add('seq < ?', page.before);
    const sql = `SELECT * FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, page.limit + 1) as Row[];
    const records = rows.slice(0, page.limit).map(toRecord);
    return { records, ...(rows.length > page.limit ? { nextBefore: records.at(-1)!.seq } : {}) };
  }

  async latestExpiry(caFingerprint: string): Promise<number | undefined> {
    const row = this.db.prepare("SELECT max(json_extract(data, '$.validBefore')) AS v FROM audit_records WHERE kind = 'issued' AND json_extract(data, '$.caFingerprint') = ?").get(caFingerprint) as { v: number | null };
    return row.v ?? undefined;
  }

  async *exportRecords(): AsyncIterable<ChainedRecord> {
    // Pages rather than one long-lived iterator, so writers are never blocked by an export.
    let after = 0;
    for (;;) {
      const rows = this.db.prepare('SELECT * FROM audit_records WHERE seq > ? ORDER BY seq LIMIT 1000').all(after) as Row[];
      if (rows.length === 0) return;
      for (const row of rows) yield toRecord(row);
      after = rows.at(-1)!.seq;
    }
  }

  async claim(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    const result = this.db.transaction(() => {
      // Kept a margin past expiry: a replica whose clock lags still finds the signature (rule 5).
      this.db.prepare('DELETE FROM used_token_signatures WHERE expires_at < ?').run(now.getTime() - REPLAY_PURGE_MARGIN_MS);
      return this.db.prepare('INSERT OR IGNORE INTO used_token_signatures (signature, expires_at) VALUES (?, ?)').run(key, expiresAt.getTime());
    })();
    return result.changes === 1;
  }

  async ready(): Promise<void> {
    // A write probe: a store that can be read but not written must not report ready.
    this.db.transaction(() => this.db.prepare('DELETE FROM used_token_signatures WHERE expires_at < 0').run()).immediate();
  }

  async close(): Promise<void> {
    // Appends signing remotely finish (or fail) first: none commits into a closed database.
    await this.appending;
    this.db.close();
  }
}

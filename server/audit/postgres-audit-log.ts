// The shared store: PostgreSQL, so several server replicas write one chained
// record and share one replay cache. Appends take a transaction-scoped
// advisory lock, so the chain stays linear however many replicas write.
import pg from 'pg';
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

/** Arbitrary constants naming our advisory locks. */
const APPEND_LOCK = 0x55aca001;
const MIGRATE_LOCK = 0x55aca000;

/** Schema versions, applied in order at start-up, each once. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_records (
     seq bigint PRIMARY KEY,
     at text NOT NULL,
     kind text NOT NULL,
     data jsonb NOT NULL,
     prev_hash text NOT NULL,
     hash text NOT NULL,
     checkpoint text NOT NULL
   );
   CREATE UNIQUE INDEX audit_records_serial ON audit_records ((data->>'serial')) WHERE kind = 'issued';
   CREATE INDEX audit_records_at ON audit_records (at);
   CREATE TABLE used_token_signatures (signature text PRIMARY KEY, expires_at bigint NOT NULL);`,
  // The KRL reads revocations through their own index (its cost follows the
  // number of revocations, not the record); the replay purge by expiry.
  `CREATE INDEX audit_records_revocations ON audit_records (seq) WHERE kind IN ('revoked', 'withdrawn');
   CREATE INDEX used_token_signatures_expiry ON used_token_signatures (expires_at);`,
];

const REVOCATION_KINDS = "kind IN ('revoked', 'withdrawn')";

interface Row {
  seq: string;
  at: string;
  kind: string;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
  checkpoint: string;
}

function toRecord(row: Row): ChainedRecord {
  return { seq: Number(row.seq), at: row.at, kind: row.kind, data: row.data, prevHash: row.prev_hash, hash: row.hash, checkpoint: row.checkpoint };
}

/** AuditLog and ReplayCache on PostgreSQL. Build with `PostgresAuditLog.open`. */
export class PostgresAuditLog implements AuditLog, ReplayCache {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly checkpoints: CheckpointKey,
  ) {}

  /** Connects and migrates. `onIdleError` receives errors of idle connections (a restarting server). */
  static async open(url: string, checkpoints: CheckpointKey, options: { onIdleError?: (err: Error) => void; timeoutMs?: number } = {}): Promise<PostgresAuditLog> {
    const timeout = options.timeoutMs ?? 5000;
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: timeout, query_timeout: timeout, statement_timeout: timeout });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (err) => options.onIdleError?.(err));
    const log = new PostgresAuditLog(pool, checkpoints);
    try {
      await log.transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
        await c.query('CREATE TABLE IF NOT EXISTS sshca_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
        const { rows } = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM sshca_migrations');
        for (let v = (rows[0]?.v ?? 0) + 1; v <= MIGRATIONS.length; v++) {
          await c.query(MIGRATIONS[v - 1]!);
          await c.query('INSERT INTO sshca_migrations (version) VALUES ($1)', [v]);
        }
      });
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return log;
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out client emits 'error' when the server goes away; unheard,
    // that is an uncaught exception that would kill the process. The failure
    // still reaches the caller through the query that was running.
    const onError = (err: Error) => (failure ??= err);
    client.on('error', onError);
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.removeListener('error', onError);
      // A client that failed may hold a dead connection: release(err) makes the pool discard it.
      client.release(failure);
    }
  }

  private async append(kind: string, at: Date, data: Record<string, unknown>): Promise<number> {
    const stored = definedOnly(data);
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [APPEND_LOCK]);
      const { rows } = await c.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
      const seq = Number(rows[0]?.seq ?? 0) + 1;
      const prevHash = rows[0]?.hash ?? GENESIS_HASH;
      const iso = at.toISOString();
      const hash = recordHash(prevHash, seq, iso, kind, stored);
      // Signed under the chain's lock: a KMS checkpoint key holds it for one Sign call.
      const checkpoint = await this.checkpoints.sign(seq, hash);
      await c.query('INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)', [
        seq, iso, kind, canonicalJson(stored), prevHash, hash, checkpoint,
      ]);
      return seq;
    });
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
    const { rows } = await this.pool.query<Row>(`SELECT * FROM audit_records WHERE ${REVOCATION_KINDS} ORDER BY seq`);
    return rows.map(toRecord);
  }

  async newestRevocationSeq(): Promise<number> {
    const { rows } = await this.pool.query<{ s: string | null }>(`SELECT max(seq) AS s FROM audit_records WHERE ${REVOCATION_KINDS}`);
    return Number(rows[0]?.s ?? 0);
  }

  async query(filter: AuditFilter, page: AuditPage): Promise<{ records: ChainedRecord[]; nextBefore?: number }> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: (n: number) => string, value: unknown) => {
      args.push(value);
      where.push(sql(args.length));
    };
    if (filter.kind) add((n) => `kind = $${n}`, filter.kind);
    if (filter.principal) add((n) => `data->'principals' ? $${n}`, filter.principal);
    if (filter.caller) add((n) => `data->>'callerArn' = $${n}`, filter.caller);
    if (filter.account) add((n) => `data->>'accountId' = $${n}`, filter.account);
    if (filter.serial) add((n) => `data->>'serial' = $${n}`, filter.serial);
    if (filter.keyId) add((n) => `data->>'keyId' = $${n}`, filter.keyId);
    if (filter.fingerprint) add((n) => `(data->>'publicKeyFingerprint' = $${n} OR data->>'certificateFingerprint' = $${n})`, filter.fingerprint);
    if (filter.since) add((n) => `at >= $${n}`, filter.since.toISOString());
    if (filter.until) add((n) => `at < $${n}`, filter.until.toISOString());
    if (page.before !== undefined) add((n) => `seq < $${n}`, page.before);
    args.push(page.limit + 1);
    const { rows } = await this.pool.query<Row>(`SELECT * FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${args.length}`, args);
    const records = rows.slice(0, page.limit).map(toRecord);
    return { records, ...(rows.length > page.limit ? { nextBefore: records.at(-1)!.seq } : {}) };
  }

  async latestExpiry(caFingerprint: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ v: string | null }>("SELECT max((data->>'validBefore')::bigint) AS v FROM audit_records WHERE kind = 'issued' AND data->>'caFingerprint' = $1", [caFingerprint]);
    return rows[0]?.v == null ? undefined : Number(rows[0].v);
  }

  async *exportRecords(): AsyncIterable<ChainedRecord> {
    let after = 0;
    for (;;) {
      const { rows } = await this.pool.query<Row>('SELECT * FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT 1000', [after]);
      if (rows.length === 0) return;
      for (const row of rows) yield toRecord(row);
      after = Number(rows.at(-1)!.seq);
    }
  }

  async claim(key: string, expiresAt: Date, _now: Date): Promise<boolean> {
    // The caller's clock is unused on purpose: expiry is judged by the database's clock,
    // shared by every replica, and with a margin (rule 5): a replica whose
    // clock lags cannot find a signature purged that it would still accept.
    return this.transaction(async (c) => {
      await c.query('DELETE FROM used_token_signatures WHERE expires_at < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1', [REPLAY_PURGE_MARGIN_MS]);
      const { rowCount } = await c.query('INSERT INTO used_token_signatures (signature, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [key, expiresAt.getTime()]);
      return rowCount === 1;
    });
  }

  async ready(): Promise<void> {
    await this.pool.query('DELETE FROM used_token_signatures WHERE expires_at < 0');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

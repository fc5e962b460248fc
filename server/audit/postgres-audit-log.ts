// The shared store: PostgreSQL, so several server replicas write one chained
// record and share one replay cache. Appends take a transaction-scoped
// advisory lock, so the chain stays linear however many replicas write; and
// appends (and replay claims) arriving together commit as one batch (issue
// 14): one lock, one commit and one checkpoint per batch per replica.
import pg from 'pg';
import { canonicalJson, type ChainedRecord } from '../../protocol/audit-chain.js';
import { REPLAY_PURGE_MARGIN_MS, type ReplayCache } from '../identity/replay-cache.js';
import {
  definedOnly,
  issuedData,
  refusalData,
  refusalSummaryData,
  revocationData,
  withdrawalData,
  type ActiveFilter,
  type AuditFilter,
  type AuditLog,
  type ChainHead,
  type CommitListener,
  type HourlyCounts,
  type AuditPage,
  type IssuedRecord,
  type RefusalRecord,
  type RefusalSummaryRecord,
  type RevocationRecord,
  type WithdrawalRecord,
} from './audit-log.js';
import { issuedSerials, lastLinked, linkBatch, type AppendInput, type LinkedRecord } from './chain-batch.js';
import type { CheckpointKey } from './checkpoint-signer.js';
import { GroupCommit } from './group-commit.js';

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
  // "Who has access now" (issue 16) reads certificates not yet expired through this index.
  `CREATE INDEX audit_records_valid_before ON audit_records (((data->>'validBefore')::bigint)) WHERE kind = 'issued';`,
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
  // '' on every record of a batch but its last: the batch's checkpoint covers them.
  return { seq: Number(row.seq), at: row.at, kind: row.kind, data: row.data, prevHash: row.prev_hash, hash: row.hash, ...(row.checkpoint !== '' ? { checkpoint: row.checkpoint } : {}) };
}

/** AuditLog and ReplayCache on PostgreSQL. Build with `PostgresAuditLog.open`. */
export class PostgresAuditLog implements AuditLog, ReplayCache {
  private readonly appends = new GroupCommit<AppendInput, number>((batch) => this.appendBatch(batch));
  private readonly claims = new GroupCommit<{ key: string; expiresAt: number }, boolean>((batch) => this.claimBatch(batch));

  private constructor(
    private readonly pool: pg.Pool,
    private readonly checkpoints: CheckpointKey,
    private readonly onCommit: CommitListener | undefined,
  ) {}

  /**
   * Connects and migrates. `onIdleError` receives errors of idle connections
   * (a restarting server); `onCommit`, each committed batch's records.
   */
  static async open(url: string, checkpoints: CheckpointKey, options: { onIdleError?: (err: Error) => void; timeoutMs?: number; onCommit?: CommitListener } = {}): Promise<PostgresAuditLog> {
    const timeout = options.timeoutMs ?? 5000;
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: timeout, query_timeout: timeout, statement_timeout: timeout });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (err) => options.onIdleError?.(err));
    const log = new PostgresAuditLog(pool, checkpoints, options.onCommit);
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
    return this.appends.submit({ kind, at: at.toISOString(), data: definedOnly(data) });
  }

  /** One batch: under the chain's lock, linked onto the head, one multi-row insert, one checkpoint. */
  private async appendBatch(batch: readonly AppendInput[]) {
    const linked = await this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [APPEND_LOCK]);
      const { rows } = await c.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
      const head = rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : undefined;
      // Rule 8 checked under the lock, so a taken serial fails its own record, not its whole batch.
      const serials = issuedSerials(batch);
      const taken = serials.length === 0 ? [] : (await c.query<{ s: string }>("SELECT data->>'serial' AS s FROM audit_records WHERE kind = 'issued' AND data->>'serial' = ANY($1::text[])", [serials])).rows.map((r) => r.s);
      const linked = linkBatch(head, batch, new Set(taken));
      const last = lastLinked(linked);
      if (last) {
        // Signed under the chain's lock: a KMS checkpoint key holds it for one Sign call per batch.
        const checkpoint = await this.checkpoints.sign(last.seq, last.hash);
        const records = linked.filter((r): r is LinkedRecord => !(r instanceof Error));
        await c.query(
          `INSERT INTO audit_records (seq, at, kind, data, prev_hash, hash, checkpoint)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[])`,
          [records.map((r) => r.seq), records.map((r) => r.at), records.map((r) => r.kind), records.map((r) => canonicalJson(r.data)), records.map((r) => r.prevHash), records.map((r) => r.hash), records.map((r) => (r === last ? checkpoint : ''))],
        );
      }
      return linked;
    });
    const committed = linked.filter((r): r is LinkedRecord => !(r instanceof Error));
    if (committed.length > 0) this.onCommit?.(committed);
    return linked.map((r) => (r instanceof Error ? { ok: false as const, error: r } : { ok: true as const, value: r.seq }));
  }

  /** One batch of replay claims: one insert; of two claims of one signature, only the first can win. */
  private async claimBatch(batch: ReadonlyArray<{ key: string; expiresAt: number }>) {
    const first = new Map<string, number>();
    batch.forEach((c, i) => {
      if (!first.has(c.key)) first.set(c.key, i);
    });
    const keys = [...first.keys()];
    const inserted = await this.transaction(async (c) => {
      // Expiry is judged by the database's clock, shared by every replica, and
      // with a margin (rule 5): a replica whose clock lags cannot find a
      // signature purged that it would still accept.
      await c.query('DELETE FROM used_token_signatures WHERE expires_at < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1', [REPLAY_PURGE_MARGIN_MS]);
      const { rows } = await c.query<{ signature: string }>(
        'INSERT INTO used_token_signatures (signature, expires_at) SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING RETURNING signature',
        [keys, keys.map((k) => batch[first.get(k)!]!.expiresAt)],
      );
      return new Set(rows.map((r) => r.signature));
    });
    return batch.map((c, i) => ({ ok: true as const, value: first.get(c.key) === i && inserted.has(c.key) }));
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
    if (filter.callers) add((n) => `data->>'callerArn' = ANY($${n}::text[])`, filter.callers);
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

  async activeIssued(nowSeconds: number, filter: ActiveFilter, limit: number): Promise<ChainedRecord[]> {
    const args: unknown[] = [nowSeconds];
    const where = ["kind = 'issued'", "(data->>'validBefore')::bigint > $1", "(data->>'validAfter')::bigint <= $1"];
    if (filter.principal) where.push(`data->'principals' ? $${args.push(filter.principal)}`);
    if (filter.callers) where.push(`data->>'callerArn' = ANY($${args.push(filter.callers)}::text[])`);
    const { rows } = await this.pool.query<Row>(`SELECT * FROM audit_records WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT $${args.push(limit)}`, args);
    return rows.map(toRecord);
  }

  async callersNamed(name: string, limit: number): Promise<string[]> {
    // The last path segment, exactly: `alice` never finds `.../alice2` or `.../malice`.
    const { rows } = await this.pool.query<{ c: string }>(
      "SELECT DISTINCT data->>'callerArn' AS c FROM audit_records WHERE right(data->>'callerArn', length($1) + 1) = '/' || $1 ORDER BY c LIMIT $2",
      [name, limit],
    );
    return rows.map((r) => r.c);
  }

  async hourlyCounts(since: Date, until: Date): Promise<HourlyCounts[]> {
    const { rows } = await this.pool.query<{ h: string; issued: string; refused: string; revoked: string }>(
      `SELECT left(at, 13) AS h,
         count(*) FILTER (WHERE kind = 'issued') AS issued,
         coalesce(sum(CASE kind WHEN 'refused' THEN 1 WHEN 'refused-summary' THEN (data->>'total')::bigint ELSE 0 END), 0) AS refused,
         count(*) FILTER (WHERE kind = 'revoked') AS revoked
       FROM audit_records WHERE at >= $1 AND at < $2 GROUP BY h ORDER BY h`,
      [since.toISOString(), until.toISOString()],
    );
    return rows.map((r) => ({ hour: `${r.h}:00:00.000Z`, issued: Number(r.issued), refused: Number(r.refused), revoked: Number(r.revoked) }));
  }

  async head(): Promise<ChainHead | undefined> {
    const { rows } = await this.pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
    return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : undefined;
  }

  async hashAt(seq: number): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ hash: string }>('SELECT hash FROM audit_records WHERE seq = $1', [seq]);
    return rows[0]?.hash;
  }

  async firstSeqSince(since: Date): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ s: string | null }>('SELECT min(seq) AS s FROM audit_records WHERE at >= $1', [since.toISOString()]);
    return rows[0]?.s == null ? undefined : Number(rows[0].s);
  }

  async *exportRecords(fromSeq = 1): AsyncIterable<ChainedRecord> {
    let after = fromSeq - 1;
    for (;;) {
      const { rows } = await this.pool.query<Row>('SELECT * FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT 1000', [after]);
      if (rows.length === 0) return;
      for (const row of rows) yield toRecord(row);
      after = Number(rows.at(-1)!.seq);
    }
  }

  async claim(key: string, expiresAt: Date, _now: Date): Promise<boolean> {
    // The caller's clock is unused on purpose: the purge goes by the database's (claimBatch).
    return this.claims.submit({ key, expiresAt: expiresAt.getTime() });
  }

  async ready(): Promise<void> {
    await this.pool.query('DELETE FROM used_token_signatures WHERE expires_at < 0');
  }

  async close(): Promise<void> {
    // Every write in flight commits (or fails) first: the last refusal summary is not lost.
    await Promise.all([this.appends.idle(), this.claims.idle()]);
    await this.pool.end();
  }
}

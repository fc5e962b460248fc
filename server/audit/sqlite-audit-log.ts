// The embedded default's store: one SQLite file holding the chained audit
// record and the replay cache. WAL with synchronous=FULL; writes that arrive
// together (appends and replay claims alike) commit in one transaction, one
// fsync and one checkpoint per batch (issue 14), and a caller's promise
// resolves only once its batch is on disk. The database itself lives on two
// worker threads (sqlite-store-worker.ts): nothing here blocks the thread
// that answers requests.
import { Worker } from 'node:worker_threads';
import type { ChainedRecord } from '../../protocol/audit-chain.js';
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
import type { CheckpointKey } from './checkpoint-signer.js';
import { GroupCommit, type BatchOutcome } from './group-commit.js';
import { storeWorker } from './store-worker-url.js';
import type { FromWorker, ReadMethod, SerializedError, ToWorker, WorkerSettings, WriteBatchResult, WriteOp } from './sqlite-store-worker.js';

/** A store operation that failed in the worker, with the code SQLite (or the chain) gave it. */
export class StoreError extends Error {
  readonly code: string;
  constructor(error: SerializedError) {
    super(error.message);
    this.code = error.code ?? 'STORE_ERROR';
  }
}

/** A message to the worker, numbered when sent. */
type Request = ToWorker extends infer M ? (M extends { id: number } ? Omit<M, 'id'> : never) : never;

/** One worker thread and the calls waiting on it. */
class StoreThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  readonly opened: Promise<void>;
  private readonly exited: Promise<void>;

  constructor(settings: WorkerSettings, private readonly onSign: (seq: number, hash: string) => Promise<string>) {
    // Referenced until it has opened, then only while a call is in flight.
    const { url, execArgv } = storeWorker();
    this.worker = new Worker(url, { workerData: settings, ...(execArgv ? { execArgv } : {}) });
    let opened!: () => void;
    let failed!: (err: Error) => void;
    this.opened = new Promise<void>((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    // Awaited by every call: a store that failed to open fails each of them, not the process.
    this.opened.catch(() => undefined);
    this.worker.on('message', (message: FromWorker) => this.receive(message, opened, failed));
    const fail = (err: Error) => {
      this.failure ??= err;
      failed(err);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
      this.worker.unref();
    };
    this.worker.on('error', fail);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      fail(new StoreError({ message: 'the audit store thread has stopped', code: 'STORE_CLOSED' }));
      resolve();
    }));
  }

  private receive(message: FromWorker, opened: () => void, failed: (err: Error) => void): void {
    if (message.op === 'opened' || message.op === 'failed') {
      if (this.waiting.size === 0) this.worker.unref();
      return message.op === 'opened' ? opened() : failed(new StoreError(message.error));
    }
    if (message.op === 'sign') {
      this.onSign(message.seq, message.hash).then(
        (checkpoint) => this.post({ id: message.id, op: 'signed', checkpoint }),
        (err: Error & { code?: string }) => this.post({ id: message.id, op: 'signed', error: { message: err.message, ...(err.code ? { code: err.code } : {}) } }),
      );
      return;
    }
    const w = this.waiting.get(message.id);
    this.waiting.delete(message.id);
    // Idle again: a store with nothing in flight must not keep the process alive.
    if (this.waiting.size === 0) this.worker.unref();
    if (message.op === 'done') w?.resolve(message.value);
    else w?.reject(new StoreError(message.error));
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  async call<T>(message: Request): Promise<T> {
    await this.opened;
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      // In flight: the process waits for the answer.
      this.worker.ref();
      this.post({ ...message, id } as ToWorker);
    });
  }

  async close(): Promise<void> {
    if (!this.failure) {
      await this.call({ op: 'close' }).catch(() => undefined);
    }
    await this.worker.terminate();
    await this.exited;
  }
}

export interface SqliteStoreOptions {
  readonly busyTimeoutMs?: number;
  readonly maxBatch?: number;
  /** Called with each committed batch's records (main.ts logs them, one JSON line each). */
  readonly onCommit?: CommitListener;
}

/** AuditLog and ReplayCache on one SQLite database. */
export class SqliteAuditLog implements AuditLog, ReplayCache {
  private readonly writer: StoreThread;
  /** Started on the first read: many stores (an instance's, a test's) never read. */
  private reader: Promise<StoreThread> | undefined;
  private readonly settings: WorkerSettings;
  private readonly writes: GroupCommit<WriteOp, boolean | number>;
  private closing: Promise<void> | undefined;

  /** Opens (creating if need be) the database at `path`; failures surface on the first call (main.ts awaits `ready()`). */
  constructor(path: string, checkpoints: CheckpointKey, options: SqliteStoreOptions = {}) {
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.settings = { path, busyTimeoutMs, role: 'writer' };
    this.writer = new StoreThread(this.settings, (seq, hash) => checkpoints.sign(seq, hash));
    this.writes = new GroupCommit(async (ops) => {
      const { results, committed } = await this.writer.call<WriteBatchResult>({ op: 'write', ops });
      if (committed.length > 0) options.onCommit?.(committed);
      return results.map((r) => (r.ok ? r : { ok: false as const, error: new StoreError(r.error) })) as BatchOutcome<boolean | number>;
    }, options.maxBatch);
  }

  /** Opens the store and proves it writable before anything relies on it (start-up fails fast on a bad path). */
  static async open(path: string, checkpoints: CheckpointKey, options: SqliteStoreOptions = {}): Promise<SqliteAuditLog> {
    const store = new SqliteAuditLog(path, checkpoints, options);
    try {
      await store.ready();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private async append(kind: string, at: Date, data: Record<string, unknown>): Promise<number> {
    return (await this.writes.submit({ type: 'append', kind, at: at.toISOString(), data: definedOnly(data) })) as number;
  }

  private async read<T>(method: ReadMethod, ...args: unknown[]): Promise<T> {
    // The reader opens once the writer has created the schema.
    this.reader ??= this.writer.opened.then(() => new StoreThread({ ...this.settings, role: 'reader' }, () => Promise.reject(new Error('the reader signs nothing'))));
    return (await this.reader).call<T>({ op: 'read', method, args });
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

  revocationRecords(): Promise<ChainedRecord[]> {
    return this.read('revocationRecords');
  }

  newestRevocationSeq(): Promise<number> {
    return this.read('newestRevocationSeq');
  }

  /** The query plan of the revocation read, for the test that pins its use of the index. */
  revocationQueryPlan(): Promise<string> {
    return this.read('revocationQueryPlan');
  }

  query(filter: AuditFilter, page: AuditPage): Promise<{ records: ChainedRecord[]; nextBefore?: number }> {
    return this.read('query', filter, page);
  }

  latestExpiry(caFingerprint: string): Promise<number | undefined> {
    return this.read('latestExpiry', caFingerprint);
  }

  activeIssued(nowSeconds: number, filter: ActiveFilter, limit: number): Promise<ChainedRecord[]> {
    return this.read('activeIssued', nowSeconds, filter, limit);
  }

  callersNamed(name: string, limit: number): Promise<string[]> {
    return this.read('callersNamed', name, limit);
  }

  hourlyCounts(since: Date, until: Date): Promise<HourlyCounts[]> {
    return this.read('hourlyCounts', since.toISOString(), until.toISOString());
  }

  head(): Promise<ChainHead | undefined> {
    return this.read('head');
  }

  hashAt(seq: number): Promise<string | undefined> {
    return this.read('hashAt', seq);
  }

  firstSeqSince(since: Date): Promise<number | undefined> {
    return this.read('firstSeqSince', since.toISOString());
  }

  async *exportRecords(fromSeq = 1): AsyncIterable<ChainedRecord> {
    // Pages rather than one long-lived read, so writers are never blocked by an export.
    let after = fromSeq - 1;
    for (;;) {
      const records = await this.read<ChainedRecord[]>('exportPage', after);
      if (records.length === 0) return;
      yield* records;
      after = records.at(-1)!.seq;
    }
  }

  async claim(key: string, expiresAt: Date, now: Date): Promise<boolean> {
    return (await this.writes.submit({ type: 'claim', key, expiresAt: expiresAt.getTime(), purgeBefore: now.getTime() - REPLAY_PURGE_MARGIN_MS })) as boolean;
  }

  async ready(): Promise<void> {
    await this.writes.submit({ type: 'probe' });
  }

  /** Waits for every write in flight (the last refusal summary included), then stops both threads. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writes.idle();
      const reader = await this.reader?.catch(() => undefined);
      await Promise.all([this.writer.close(), reader?.close()]);
    })();
    return this.closing;
  }
}

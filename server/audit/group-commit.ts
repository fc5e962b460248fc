// Group commit (issue 14): writes that arrive while one transaction commits
// wait and go together in the next, so a burst costs one commit (one fsync,
// one advisory lock, one checkpoint signature) per batch instead of one per
// request. Every caller's promise settles with its own batch: it resolves
// only once that batch is durable, and a failed commit fails all of it.

/** What one batch's commit returns: a result, or an error of its own, per item in order. */
export type BatchOutcome<R> = ReadonlyArray<{ readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: Error }>;

interface Waiting<I, R> {
  readonly item: I;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/** One commit at a time; whatever queued meanwhile is the next batch (no timer, no added latency when idle). */
export class GroupCommit<I, R> {
  private queue: Array<Waiting<I, R>> = [];
  private draining: Promise<void> | undefined;

  constructor(
    private readonly commit: (items: readonly I[]) => Promise<BatchOutcome<R>>,
    private readonly maxBatch = 500,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves once everything submitted so far has committed or failed. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    // Let the rest of this tick's submissions join the first batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let outcome: BatchOutcome<R>;
      try {
        outcome = await this.commit(batch.map((w) => w.item));
        if (outcome.length !== batch.length) throw new Error(`a batch of ${batch.length} committed ${outcome.length} results`);
      } catch (err) {
        for (const w of batch) w.reject(err);
        continue;
      }
      batch.forEach((w, i) => {
        const o = outcome[i]!;
        if (o.ok) w.resolve(o.value);
        else w.reject(o.error);
      });
    }
    this.draining = undefined;
  }
}

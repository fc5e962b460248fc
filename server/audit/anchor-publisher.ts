// Publishes the signed chain head to an AnchorStore, every `intervalMs` and
// on demand. Before publishing it checks the chain against the newest
// anchor and refuses, publishing nothing, if the chain ends before it or
// disagrees with it: a new anchor over a truncated or rewritten chain would
// paper over the evidence the old one holds.
import { checkAnchors, makeAnchor, type Anchor, type AnchorFailure } from '../../protocol/audit-anchor.js';
import type { VerifyKey } from '../../protocol/audit-chain.js';
import type { Clock } from '../clock.js';
import type { ChainHead } from './audit-log.js';
import { AnchorError, type AnchorErrorCode, type AnchorStore, type PublishOutcome } from './anchor-store.js';

/** The few logger methods used (a Fastify/pino logger fits). */
export interface AnchorLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AnchorPublisherDeps {
  readonly store: AnchorStore;
  /** The newest record's seq and hash (AuditLog.head); undefined for an empty chain. */
  readonly chainHead: () => Promise<ChainHead | undefined>;
  /** The hash of record `seq` (AuditLog.hashAt). */
  readonly hashAt: (seq: number) => Promise<string | undefined>;
  /** CheckpointKey.signHead. */
  readonly signHead: (seq: number, hash: string, at: string) => Promise<string>;
  /** The checkpoint key's public half (importCheckpointKey(checkpoints.jwk)): anchors found in the store are believed only if it verifies them. */
  readonly verifyKey: VerifyKey;
  readonly clock: Clock;
  /** Milliseconds between periodic publications (start()). */
  readonly intervalMs: number;
  readonly log: AnchorLog;
}

/**
 * What one publication did: `created` or `exists` (see PublishOutcome),
 * `unchanged` (the newest anchor already names the head), or `empty` (no
 * records yet, nothing to anchor).
 */
export type AnchorResult = { readonly outcome: PublishOutcome | 'unchanged'; readonly anchor: Anchor } | { readonly outcome: 'empty' };

/** The last publication, for /readyz and metrics. */
export interface AnchorStatus {
  readonly lastSuccessAt?: Date;
  readonly newest?: Anchor;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: Date };
}

const FINDING_CODE: Readonly<Record<AnchorFailure['finding'], AnchorErrorCode>> = {
  beyond: 'AUDIT_TRUNCATED',
  hash: 'AUDIT_ANCHOR_MISMATCH',
  signature: 'ANCHOR_INVALID',
};

/** Codes that mean the chain or the store holds evidence of tampering, not a passing outage. */
export const ANCHOR_INTEGRITY_CODES: ReadonlySet<string> = new Set<AnchorErrorCode>(['AUDIT_TRUNCATED', 'AUDIT_ANCHOR_MISMATCH', 'ANCHOR_INVALID', 'ANCHOR_CONFLICT']);

export class AnchorPublisher {
  private queue: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private timer?: NodeJS.Timeout;
  private state: AnchorStatus = {};

  constructor(private readonly deps: AnchorPublisherDeps) {
    if (!Number.isSafeInteger(deps.intervalMs) || deps.intervalMs < 1000) throw new AnchorError('ANCHOR_CONFIG', 'the anchor interval must be at least 1000 ms');
  }

  /** Checks the chain against the newest anchor, then anchors the head unless the newest anchor already names it. One at a time. */
  anchorNow(): Promise<AnchorResult> {
    this.inFlight++;
    const run = this.queue.then(() => this.publish());
    this.queue = run.catch(() => undefined);
    return run.then(
      (result) => {
        this.inFlight--;
        if (result.outcome !== 'empty') this.state = { lastSuccessAt: this.deps.clock.now(), newest: result.anchor };
        return result;
      },
      (err: unknown) => {
        this.inFlight--;
        const { code, message } = err instanceof AnchorError ? err : { code: 'ANCHOR_UNAVAILABLE', message: String(err) };
        this.state = { ...this.state, lastError: { code, message, at: this.deps.clock.now() } };
        throw err;
      },
    );
  }

  status(): AnchorStatus {
    return this.state;
  }

  /**
   * The start-up check and first publication, then one every intervalMs.
   * Rejects on evidence of tampering (ANCHOR_INTEGRITY_CODES) so main.ts
   * can refuse to start, or at least say so loudly; an unreachable store
   * is logged and retried by the timer — the CA keeps working meanwhile.
   */
  async start(): Promise<AnchorResult | undefined> {
    // Started first: after evidence of tampering, every tick refuses and logs it again.
    this.timer ??= setInterval(() => this.tick(), this.deps.intervalMs);
    // The timer alone never keeps the process alive.
    this.timer.unref();
    try {
      return await this.anchorNow();
    } catch (err) {
      if (err instanceof AnchorError && ANCHOR_INTEGRITY_CODES.has(err.code)) throw err;
      this.logFailure(err);
      return undefined;
    }
  }

  /** Stops the timer and waits for a publication in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  private tick(): void {
    // A slow store must not pile up publications behind each other.
    if (this.inFlight > 0) return;
    this.anchorNow().catch((err: unknown) => this.logFailure(err));
  }

  private logFailure(err: unknown): void {
    const code = err instanceof AnchorError ? err.code : 'ANCHOR_UNAVAILABLE';
    this.deps.log.error({ code, location: this.deps.store.location, err }, ANCHOR_INTEGRITY_CODES.has(code) ? 'audit anchoring refused: the chain disagrees with its published anchors' : 'audit anchor not published');
  }

  private async publish(): Promise<AnchorResult> {
    const { store, verifyKey } = this.deps;
    const [head, newest] = await Promise.all([this.deps.chainHead(), store.newest(1).then((a) => a[0])]);
    if (newest) {
      const check = await checkAnchors({ firstSeq: 1, lastSeq: head?.seq ?? 0, hashAt: this.deps.hashAt }, [newest], verifyKey);
      if (!check.ok) throw new AnchorError(FINDING_CODE[check.failure.finding], `${store.location}: ${check.failure.message}; nothing was anchored`);
      if (head && newest.seq === head.seq) return { outcome: 'unchanged', anchor: newest };
    }
    if (!head) return { outcome: 'empty' };
    const at = this.deps.clock.now().toISOString();
    const anchor = makeAnchor(head.seq, head.hash, at, await this.deps.signHead(head.seq, head.hash, at));
    // Nothing is published that would not verify (a wrong key here would
    // otherwise halt every later check on a bad newest anchor).
    const self = await checkAnchors({ firstSeq: 1, lastSeq: head.seq, hashAt: () => head.hash }, [anchor], verifyKey);
    if (!self.ok) throw new AnchorError('ANCHOR_CONFIG', 'the new anchor does not verify with the checkpoint key given to the publisher');
    const outcome = await store.publish(anchor);
    this.deps.log.info({ seq: anchor.seq, outcome, location: store.location }, 'audit head anchored');
    return { outcome, anchor };
  }
}

// The KRL as GET /v1/krl serves it: bytes built once per change of the
// revocation set, never per request (rule 16). A request costs at most one
// indexed "newest revocation" lookup per recheck interval, which is how a
// revocation made on another replica is noticed.
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { buildKrl, type BuiltKrl, type PublishedCaKeys } from './krl-builder.js';

/** How often the store is asked whether another replica revoked something. */
export const KRL_RECHECK_MS = 5_000;

/** Caches the built KRL; rebuilds on a new revocation/withdrawal or when an entry expires. */
export class KrlCache {
  private cached?: { readonly krl: BuiltKrl; checkedAt: number };
  private pending?: Promise<BuiltKrl>;

  constructor(
    private readonly deps: {
      readonly audit: Pick<AuditLog, 'revocationRecords' | 'newestRevocationSeq'>;
      readonly caKeys: () => PublishedCaKeys;
      readonly clock: Clock;
      readonly recheckMs?: number;
    },
  ) {}

  /** The current KRL. Rejects only when there is none yet and the store cannot be read. */
  async current(): Promise<BuiltKrl> {
    const now = this.deps.clock.now().getTime();
    const c = this.cached;
    if (c && !this.expiryDue(c.krl, now) && now - c.checkedAt < (this.deps.recheckMs ?? KRL_RECHECK_MS)) return c.krl;
    return this.singleFlight(() => this.update(false));
  }

  /** After a revocation or withdrawal here: build from the store now. */
  async refresh(): Promise<BuiltKrl> {
    // Waits for a running update first, so the rebuild surely sees the new record.
    await this.pending?.catch(() => undefined);
    return this.singleFlight(() => this.update(true));
  }

  private singleFlight(work: () => Promise<BuiltKrl>): Promise<BuiltKrl> {
    this.pending ??= work().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private expiryDue(krl: BuiltKrl, nowMs: number): boolean {
    return krl.nextChangeAt !== undefined && nowMs >= krl.nextChangeAt * 1000;
  }

  private async update(force: boolean): Promise<BuiltKrl> {
    const now = this.deps.clock.now().getTime();
    const c = this.cached;
    try {
      if (c && !force && !this.expiryDue(c.krl, now) && (await this.deps.audit.newestRevocationSeq()) === c.krl.newestSeq) {
        c.checkedAt = now;
        return c.krl;
      }
      const krl = buildKrl(await this.deps.audit.revocationRecords(), this.deps.caKeys(), Math.floor(now / 1000));
      this.cached = { krl, checkedAt: now };
      return krl;
    } catch (err) {
      // A complete older KRL beats none: instances would keep theirs anyway.
      // Forced refreshes (after a local change) must not hide the failure.
      if (c && !force) {
        c.checkedAt = now;
        return c.krl;
      }
      throw err;
    }
  }
}

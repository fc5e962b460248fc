// Anonymous refusals go on the chain in aggregate (rule 16). A request that
// never authenticated costs a counter increment, not a hashed, signed,
// fsync'd record: at most one summary record per interval, of bounded size,
// however many arrive. Each refusal's detail stays in the log.
import { isIPv4, isIPv6 } from 'node:net';
import type { Clock } from '../clock.js';
import type { AuditLog } from './audit-log.js';

/** Distinct (code, network) pairs one summary holds; the rest count under network `other`. */
export const MAX_SUMMARY_KEYS = 256;

/** The source network a refusal is counted under: /24 for IPv4, /64 for IPv6. */
export function sourceNetwork(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = mapped ? mapped[1]! : ip;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  if (!isIPv6(ip)) return 'unknown';
  // Expand `::` to zero groups, then keep the first four.
  const [head = '', tail] = ip.toLowerCase().split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Counts refusals of unauthenticated requests and writes one summary record per interval. */
export class RefusalAggregator {
  private counts = new Map<string, { code: string; network: string; count: number }>();
  private total = 0;
  private since: Date;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      readonly audit: Pick<AuditLog, 'recordRefusalSummary'>;
      readonly clock: Clock;
      /** Told when a summary cannot be written (its counts are kept for the next try). */
      readonly onError: (err: unknown) => void;
    },
  ) {
    this.since = deps.clock.now();
  }

  /** Counts one refusal: constant time and memory whatever arrives. */
  count(code: string, sourceIp: string): void {
    this.add(code, sourceNetwork(sourceIp), 1);
  }

  private add(code: string, network: string, n: number): void {
    let key = `${code} ${network}`;
    // Past the cap, a new network counts under `other` (one such key per code).
    if (!this.counts.has(key) && this.counts.size >= MAX_SUMMARY_KEYS) {
      network = 'other';
      key = `${code} other`;
    }
    const entry = this.counts.get(key) ?? { code, network, count: 0 };
    entry.count += n;
    this.counts.set(key, entry);
    this.total += n;
  }

  /** Writes what was counted since the last summary as one record (nothing when nothing was counted). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.total === 0) return;
    const counts = [...this.counts.values()].sort((a, b) => (a.code === b.code ? compare(a.network, b.network) : compare(a.code, b.code)));
    const record = { at: this.deps.clock.now(), intervalStart: this.since, total: this.total, counts };
    this.counts = new Map();
    this.total = 0;
    this.since = record.at;
    try {
      await this.deps.audit.recordRefusalSummary(record);
    } catch (err) {
      // Put the counts back so the next summary carries them.
      for (const c of counts) this.add(c.code, c.network, c.count);
      this.since = record.intervalStart;
      this.deps.onError(err);
    }
  }

  /** Flushes every `intervalMs` until stop(). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

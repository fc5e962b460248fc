// The closed-loop load generator: `concurrency` workers, each sending its
// next pre-signed request as soon as the previous one is answered, over
// keep-alive connections (one undici Pool per server). It does as little as a
// client can per request — no signing, no key generation, no JSON parse of a
// 201 — so that on a small machine the CPU goes to the server under test.
import { Pool } from 'undici';

/** One request, signed before the clock starts. */
export interface LoadItem {
  /** Index of the server it was signed for (its audience and STS endpoint). */
  readonly target: number;
  readonly body: string;
  readonly token: string;
}

/** The next item to send, or undefined when there are no more. */
export type NextItem = () => LoadItem | undefined | Promise<LoadItem | undefined>;

/** What one run measured. */
export interface LoadResult {
  readonly seconds: number;
  readonly sent: number;
  /** 201 answers: certificates. */
  readonly issued: number;
  /** Every request's latency (errors included), sorted ascending. */
  readonly latenciesMs: readonly number[];
  /** Non-201 outcomes by `status code` (or `network <error>`), with the first one's body for diagnosis. */
  readonly errors: ReadonlyMap<string, number>;
  readonly firstError?: string;
}

/** The `p` quantile (0–1) of ascending `sorted`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** Errors as `count×what`, most frequent first. */
export function describeErrors(errors: ReadonlyMap<string, number>): string {
  return [...errors].sort((a, b) => b[1] - a[1]).map(([what, n]) => `${n}×${what}`).join(', ');
}

/** Keep-alive pools to `origins`, each allowing `concurrency` connections. */
export class LoadGenerator {
  private readonly pools: Pool[];

  constructor(
    origins: readonly string[],
    private readonly concurrency: number,
  ) {
    this.pools = origins.map((o) => new Pool(o, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 }));
  }

  /** Sends items from `next` until it runs dry; `onAnswer` sees each answer as it comes (the soak's windows). */
  async run(next: NextItem, onAnswer?: (latencyMs: number, status: number) => void): Promise<LoadResult> {
    const latencies: number[] = [];
    const errors = new Map<string, number>();
    let firstError: string | undefined;
    let issued = 0;
    const fail = (what: string, detail: string) => {
      errors.set(what, (errors.get(what) ?? 0) + 1);
      firstError ??= detail;
    };
    const worker = async () => {
      for (let item = await next(); item; item = await next()) {
        const t0 = performance.now();
        let status = 0;
        try {
          const res = await this.pools[item.target]!.request({
            path: '/v1/certs/user',
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${item.token}` },
            body: item.body,
          });
          status = res.statusCode;
          const text = await res.body.text();
          if (status === 201) issued++;
          else fail(`${status} ${/"code":"([A-Z_]+)"/.exec(text)?.[1] ?? ''}`.trim(), `${status} ${text.slice(0, 400)}`);
        } catch (err) {
          fail(`network ${(err as { code?: string }).code ?? (err as Error).name}`, (err as Error).message);
        }
        const ms = performance.now() - t0;
        latencies.push(ms);
        onAnswer?.(ms, status);
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: this.concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return { seconds, sent: latencies.length, issued, latenciesMs: latencies, errors, ...(firstError !== undefined ? { firstError } : {}) };
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
  }
}

/** Items from an array, in order. */
export function fromArray(items: readonly LoadItem[]): NextItem {
  let i = 0;
  return () => items[i++];
}

// One row of a table: sign (untimed), warm up (untimed), then the timed run
// between two readings of every server's own CPU counter, and of any other
// counters the mode cares about (chain records, STS and KMS calls).
import { LoadGenerator, fromArray, percentile, type LoadResult } from './load-generator.js';
import { scrapeProcessMetrics } from './process-metrics.js';
import type { ServerProcess } from './server-process.js';
import type { TokenSource } from './token-source.js';

export interface RowOptions {
  readonly concurrency: number;
  /** Timed requests. */
  readonly requests: number;
  /** Untimed requests first (JIT, connections, caches); at least two per worker. */
  readonly warmup: number;
}

/** What a row reports. */
export interface RowFigures {
  readonly concurrency: number;
  readonly load: LoadResult;
  readonly certsPerSecond: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly max?: number;
  /** Summed over the servers (user + system, all threads), per 201. */
  readonly serverCpuMsPerCert?: number;
  /** The bench process's own CPU per request: the load generator's cost. */
  readonly benchCpuMsPerRequest: number;
  /** Each counter's increase over the timed run. */
  readonly counted: Readonly<Record<string, number>>;
}

/** Counters read before and after the timed run (e.g. rows in audit_records). */
export type Counters = Readonly<Record<string, () => Promise<number>>>;

async function readCounters(counters: Counters): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, read] of Object.entries(counters)) out[name] = await read();
  return out;
}

/** Measures `servers` at one concurrency; requests are spread over them in turn. */
export async function measureRow(servers: readonly ServerProcess[], tokens: TokenSource, options: RowOptions, counters: Counters = {}): Promise<RowFigures> {
  const warmup = Math.max(options.warmup, 2 * options.concurrency);
  const items = await tokens.sign(warmup + options.requests);
  const load = new LoadGenerator(servers.map((s) => s.url), options.concurrency);
  try {
    await load.run(fromArray(items.slice(0, warmup)));
    const cpuBefore = await Promise.all(servers.map((s) => scrapeProcessMetrics(s.metricsUrl)));
    const countedBefore = await readCounters(counters);
    const benchBefore = process.cpuUsage();
    const result = await load.run(fromArray(items.slice(warmup)));
    const bench = process.cpuUsage(benchBefore);
    const cpuAfter = await Promise.all(servers.map((s) => scrapeProcessMetrics(s.metricsUrl)));
    const countedAfter = await readCounters(counters);
    const serverCpuSeconds = cpuAfter.reduce((sum, s, i) => sum + s.cpuSeconds - cpuBefore[i]!.cpuSeconds, 0);
    return {
      concurrency: options.concurrency,
      load: result,
      certsPerSecond: result.issued / result.seconds,
      p50: percentile(result.latenciesMs, 0.5),
      p99: percentile(result.latenciesMs, 0.99),
      max: result.latenciesMs.at(-1),
      ...(result.issued > 0 ? { serverCpuMsPerCert: (serverCpuSeconds * 1000) / result.issued } : {}),
      benchCpuMsPerRequest: (bench.user + bench.system) / 1000 / Math.max(1, result.sent),
      counted: Object.fromEntries(Object.keys(counters).map((k) => [k, countedAfter[k]! - countedBefore[k]!])),
    };
  } finally {
    await load.close();
  }
}

// --soak: steady load on one dev server for a bounded time, reading the
// server's resident set and used heap (its own metrics) after the warm-up and
// at the end. Tokens expire after five minutes, so they are signed as the
// soak goes, on a worker thread, a few seconds' worth ahead.
import { profilingNodeArgs, type BenchOptions } from './bench-options.js';
import type { Cleanup } from './cleanup.js';
import { startDevServers } from './dev-servers.js';
import { LoadGenerator, describeErrors, percentile, type LoadItem, type NextItem } from './load-generator.js';
import { scrapeProcessMetrics, type ProcessSample } from './process-metrics.js';
import { fixed, textTable } from './text-table.js';
import { TokenSource } from './token-source.js';

const QUEUE_LOW = 1500;
const CHUNK = 250;
/** A signer that produced nothing for this long has stalled: the soak stops and says so rather than report 0/s. */
const SIGNING_STALL_MS = 30_000;
const MB = 1024 * 1024;

/** Signed items kept a little ahead of the load; `next` returns undefined once `until` has passed. */
class SignedQueue {
  private items: LoadItem[] = [];
  private head = 0;
  private refilling?: Promise<void>;
  /** Times a client found no signed item waiting: signing, not the server, set the pace then. */
  starved = 0;

  constructor(private readonly tokens: TokenSource) {}

  private refill(): Promise<void> {
    return (this.refilling ??= this.tokens.sign(CHUNK).then((more) => {
      this.items = [...this.items.slice(this.head), ...more];
      this.head = 0;
      this.refilling = undefined;
    }));
  }

  /** Signs a first batch, so that clients do not start by waiting. */
  async fill(): Promise<void> {
    while (this.items.length - this.head < QUEUE_LOW) await this.refill();
  }

  /** Items until the deadline (performance.now() milliseconds). */
  until(deadline: number): NextItem {
    return async () => {
      if (performance.now() >= deadline) return undefined;
      if (this.items.length - this.head < QUEUE_LOW) void this.refill();
      while (this.head >= this.items.length) {
        this.starved++;
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`token signing produced nothing for ${SIGNING_STALL_MS / 1000} s: the soak's figures would be the signer's, not the server's`)), SIGNING_STALL_MS);
        });
        try {
          await Promise.race([this.refill(), stalled]);
        } finally {
          clearTimeout(timer);
        }
      }
      return this.items[this.head++];
    };
  }
}

/** Runs the soak; prints its progress table as it goes and returns the summary. */
export async function runSoak(cleanup: Cleanup, options: BenchOptions, minutes: number): Promise<string> {
  return cleanup.scope(async (c) => {
    const logLevel = options.logLevel ?? 'silent';
    const concurrency = options.soakConcurrency;
    const { servers, targets } = await startDevServers(c, { count: 1, dataDir: c.tempDir('sshca-bench-soak-'), logLevel, caKeyType: options.caKeyType, nodeArgs: profilingNodeArgs(options) });
    const server = servers[0]!;
    // One signing thread: the other CPU belongs to the server.
    const tokens = new TokenSource(targets, 1);
    c.add(() => tokens.close());
    const queue = new SignedQueue(tokens);
    const load = new LoadGenerator([server.url], concurrency);
    c.add(() => load.close());
    const durationMs = minutes * 60_000;
    const warmupMs = Math.min(options.soakWarmupSeconds * 1000, durationMs / 5);
    const windowMs = Math.min(60_000, durationMs / 5);
    process.stdout.write(`soak: sshca-server --dev, embedded SQLite, ${concurrency} concurrent, ${minutes} min after ${fixed(warmupMs / 1000, 0)} s of warm-up, CA ${options.caKeyType}, log level ${logLevel}\n`);

    process.stderr.write(`bench: soak warm-up, ${fixed(warmupMs / 1000, 0)} s …\n`);
    await queue.fill();
    await load.run(queue.until(performance.now() + warmupMs));
    queue.starved = 0;
    const start = await scrapeProcessMetrics(server.metricsUrl);

    const columns = [{ title: 'minute' }, { title: 'certs/s' }, { title: 'p50 ms' }, { title: 'p99 ms' }, { title: 'errors' }, { title: 'RSS MB' }, { title: 'heap used MB' }];
    const header = textTable(columns, [['0', '', '', '', '', fixed(start.residentBytes / MB), fixed(start.heapUsedBytes / MB)]]);
    process.stdout.write(`${header}\n`);
    let window: number[] = [];
    let windowErrors = 0;
    let windowStart = performance.now();
    const began = windowStart;
    const report = async () => {
      const now = performance.now();
      const sorted = window.sort((a, b) => a - b);
      const seconds = (now - windowStart) / 1000;
      const errors = windowErrors;
      window = [];
      windowErrors = 0;
      windowStart = now;
      const sample = await scrapeProcessMetrics(server.metricsUrl);
      const cells = [fixed((now - began) / 60_000, 1), fixed((sorted.length - errors) / seconds, 0), fixed(percentile(sorted, 0.5)), fixed(percentile(sorted, 0.99)), String(errors), fixed(sample.residentBytes / MB), fixed(sample.heapUsedBytes / MB)];
      // The header's widths: one line per window, aligned under it.
      process.stdout.write(`${textTable(columns, [cells]).split('\n')[1]}\n`);
      return sample;
    };
    const timer = setInterval(() => void report(), windowMs);
    c.add(() => clearInterval(timer));
    const cpuBefore = start.cpuSeconds;
    const result = await load.run(queue.until(began + durationMs), (ms, status) => {
      window.push(ms);
      if (status !== 201) windowErrors++;
    });
    clearInterval(timer);
    // The last window gets a line of its own only if it is not a sliver left over after the last tick.
    const end: ProcessSample = performance.now() - windowStart > windowMs / 2 ? await report() : await scrapeProcessMetrics(server.metricsUrl);
    const growth = (a: number, b: number) => fixed(((b - a) / a) * 100, 1);
    const summary = textTable(
      [{ title: '', left: true }, { title: 'RSS MB' }, { title: 'heap used MB' }],
      [
        ['start (after warm-up)', fixed(start.residentBytes / MB), fixed(start.heapUsedBytes / MB)],
        ['end', fixed(end.residentBytes / MB), fixed(end.heapUsedBytes / MB)],
        ['growth %', growth(start.residentBytes, end.residentBytes), growth(start.heapUsedBytes, end.heapUsedBytes)],
      ],
    );
    const overall =
      `overall: ${result.issued} certificates in ${fixed(result.seconds, 0)} s = ${fixed(result.issued / result.seconds, 0)} certs/s, ` +
      `p50 ${fixed(percentile(result.latenciesMs, 0.5))} ms, p99 ${fixed(percentile(result.latenciesMs, 0.99))} ms, max ${fixed(result.latenciesMs.at(-1))} ms, ` +
      `srv CPU ${fixed(((end.cpuSeconds - cpuBefore) * 1000) / Math.max(1, result.issued), 2)} ms/cert, errors ${result.sent - result.issued}${result.errors.size ? ` (${describeErrors(result.errors)}; first: ${result.firstError})` : ''}` +
      `${queue.starved > 0 ? `\nnote: clients waited for token signing ${queue.starved} times: the offered load was partly the signer's pace` : ''}`;
    return `${summary}\n${overall}\n`;
  });
}

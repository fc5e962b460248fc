// dev: one `sshca-server --dev` on the embedded SQLite — the figures issue 14
// first measured (certificates/s, tail latency, CPU per certificate, all with
// the loopback STS replay), one row per concurrency.
import { profilingNodeArgs, type BenchOptions } from './bench-options.js';
import type { Cleanup } from './cleanup.js';
import { startDevServers } from './dev-servers.js';
import { measureRow } from './measure-row.js';
import { ROW_COLUMNS, renderTable, rowCells } from './row-table.js';
import type { KeygenRate } from './ssh-keygen-baseline.js';
import { TokenSource } from './token-source.js';

/** Runs the dev rows; returns the rendered table. */
export async function runDevMode(cleanup: Cleanup, options: BenchOptions, keygen: KeygenRate | undefined): Promise<string> {
  return cleanup.scope(async (c) => {
    const logLevel = options.logLevel ?? 'silent';
    const { servers, targets } = await startDevServers(c, { count: 1, dataDir: c.tempDir('sshca-bench-dev-'), logLevel, caKeyType: options.caKeyType, nodeArgs: profilingNodeArgs(options) });
    const tokens = new TokenSource(targets, options.tokenWorkers);
    c.add(() => tokens.close());
    const rows = [];
    for (const concurrency of options.concurrencies) {
      process.stderr.write(`bench: dev, ${concurrency} concurrent …\n`);
      const figures = await measureRow(servers, tokens, { concurrency, requests: options.requests, warmup: options.warmup });
      rows.push({ cells: rowCells(figures, keygen), figures });
    }
    return renderTable(`dev: sshca-server --dev, embedded SQLite, 1 process, CA ${options.caKeyType}, log level ${logLevel}`, ROW_COLUMNS, rows);
  });
}

// postgres: 1 and then 2 `sshca-server --dev` processes on one PostgreSQL
// database (a throwaway cluster, test/fixtures/postgres.ts), so the chain's
// commit rate across replicas shows: records/s is counted in audit_records
// itself, before and after each timed run.
import pg from 'pg';
import { startPostgres } from '../../test/fixtures/postgres.js';
import { profilingNodeArgs, type BenchOptions } from './bench-options.js';
import type { Cleanup } from './cleanup.js';
import { startDevServers } from './dev-servers.js';
import { measureRow, type RowFigures } from './measure-row.js';
import { ROW_COLUMNS, renderTable, rowCells } from './row-table.js';
import type { KeygenRate } from './ssh-keygen-baseline.js';
import { fixed } from './text-table.js';
import { TokenSource } from './token-source.js';

export const SERVER_COUNTS = [1, 2];

/** Runs the PostgreSQL rows; returns the rendered table. */
export async function runPostgresMode(cleanup: Cleanup, options: BenchOptions, keygen: KeygenRate | undefined): Promise<string> {
  return cleanup.scope(async (c) => {
    const logLevel = options.logLevel ?? 'silent';
    const cluster = await startPostgres(c.asTap());
    const rows: Array<{ cells: string[]; figures: RowFigures; label: string }> = [];
    for (const count of SERVER_COUNTS) {
      // A database of its own per server count: each starts from an empty chain.
      const admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE bench_${count}`);
      await admin.end();
      const store = cluster.url.replace(/\/postgres$/, `/bench_${count}`);
      const records = new pg.Client({ connectionString: store });
      await c.scope(async (s) => {
        const { servers, targets } = await startDevServers(s, { count, dataDir: s.tempDir('sshca-bench-pg-'), logLevel, caKeyType: options.caKeyType, store, nodeArgs: profilingNodeArgs(options) });
        // After the servers: the first one creates the schema.
        await records.connect();
        s.add(() => records.end());
        const tokens = new TokenSource(targets, options.tokenWorkers);
        s.add(() => tokens.close());
        for (const concurrency of options.concurrencies) {
          process.stderr.write(`bench: postgres, ${count} server(s), ${concurrency} concurrent …\n`);
          const figures = await measureRow(servers, tokens, { concurrency, requests: options.requests, warmup: options.warmup }, {
            records: async () => (await records.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_records')).rows[0]!.n,
          });
          rows.push({ cells: [String(count), ...rowCells(figures, keygen), fixed(figures.counted.records! / figures.load.seconds, 0)], figures, label: `${count} server(s), conc ${concurrency}` });
        }
      });
    }
    const columns = [{ title: 'servers' }, ...ROW_COLUMNS, { title: 'records/s' }];
    return renderTable(`postgres: sshca-server --dev ×1 and ×2 on one PostgreSQL database (SSHCA_STORE), CA ${options.caKeyType}, log level ${logLevel}; srv CPU summed over the servers`, columns, rows);
  });
}

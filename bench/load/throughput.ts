// `npm run bench`: sshca's throughput, latency and CPU per certificate
// under load (issue 14), measured from outside the server processes, beside
// `ssh-keygen -s` in the same run. Modes: dev (embedded SQLite), postgres (1
// and 2 servers on one database), prod (production configuration against the
// STS and KMS fixtures with injected latency); --soak for memory over time.
// Figures only: targets are for the reader to compare, not asserted here.
// Run: npm run bench [-- --mode dev --requests 400]; --help lists the options.
import { availableParallelism, cpus } from 'node:os';
import { postgresBinDir } from '../../test/fixtures/postgres.js';
import { awsFixturesUnavailable } from './aws-fixtures.js';
import { parseBenchOptions, type BenchOptions, type Mode } from './bench-options.js';
import { Cleanup } from './cleanup.js';
import { runDevMode } from './dev-mode.js';
import { runPostgresMode } from './postgres-mode.js';
import { runProdMode } from './prod-mode.js';
import { runSoak } from './soak-mode.js';
import { sshKeygenRate } from './ssh-keygen-baseline.js';
import { fixed } from './text-table.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** Why a mode cannot run on this machine, if it cannot. */
function unavailable(mode: Mode): string | undefined {
  if (mode === 'postgres' && !postgresBinDir()) return 'PostgreSQL is not installed (apt-get install postgresql)';
  if (mode === 'prod') return awsFixturesUnavailable();
  return undefined;
}

async function bench(cleanup: Cleanup, options: BenchOptions): Promise<void> {
  const out = (text: string) => process.stdout.write(`${text}\n`);
  out(`sshca load bench: node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), bench and servers on this machine`);
  if (options.soakMinutes !== undefined) {
    out(await runSoak(cleanup, options, options.soakMinutes));
    return;
  }
  const modes: Mode[] = [];
  for (const mode of options.modes === 'available' ? (['dev', 'postgres', 'prod'] as const) : options.modes) {
    const why = unavailable(mode);
    if (why === undefined) modes.push(mode);
    else if (options.modes === 'available') out(`(${mode} mode skipped: ${why})`);
    else throw new Error(`${mode} mode cannot run here: ${why}`);
  }
  out(`${options.requests} timed requests per row after ${options.warmup} untimed (at least 2 per client); latency is per request, as the client sees it\n`);

  process.stderr.write('bench: ssh-keygen -s …\n');
  const keygen = await cleanup.scope((c) => sshKeygenRate(c.tempDir('sshca-bench-keygen-'), { certs: options.keygenCerts, caKeyType: options.caKeyType }));
  out(`ssh-keygen -s, one process per certificate, ${keygen.parallel} at a time, CA ${options.caKeyType}: ${fixed(keygen.certsPerSecond, 0)} certs/s (${keygen.certs} in ${fixed(keygen.seconds, 2)} s)\n`);

  const runners = { dev: runDevMode, postgres: runPostgresMode, prod: runProdMode };
  for (const mode of modes) out(await runners[mode](cleanup, options, keygen));
}

const cleanup = new Cleanup();
let stopping = false;
const interrupt = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`bench: ${signal}, stopping servers and removing temp dirs …\n`);
  void cleanup.run().finally(() => process.exit(130));
};
process.on('SIGINT', interrupt);
process.on('SIGTERM', interrupt);

let options: BenchOptions;
try {
  options = parseBenchOptions(process.argv.slice(2));
} catch (err) {
  const message = (err as Error).message;
  process.stderr.write(`${message}\n`);
  process.exit(message.startsWith('usage:') ? 0 : 2);
}
try {
  await bench(cleanup, options);
} catch (err) {
  // After Ctrl-C, whatever was running fails as its servers go: that is no news.
  if (!stopping) process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}

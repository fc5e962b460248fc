// The built `sshca-server` as a process of its own, as operators run it: the
// bench measures it from outside (HTTP, and its own Prometheus metrics), so
// the load generator never shares an event loop or a CPU budget with it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';

/**
 * The main build's server (`npm run build`), not a copy: this file runs from
 * dist/load-bench/bench/load/ (tsconfig.bench.json), three levels below dist/.
 * SSHCA_BENCH_SERVER_BIN names another build's (an older commit's, for a
 * before/after comparison on the same machine with the same load).
 */
export const SERVER_BIN = process.env.SSHCA_BENCH_SERVER_BIN || join(import.meta.dirname, '..', '..', '..', 'server', 'bin', 'sshca-server.js');

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/** A running server process. */
export interface ServerProcess {
  readonly url: string;
  /** Its GET /metrics (SSHCA_METRICS_PORT=0: a free port, printed at start). */
  readonly metricsUrl: string;
  readonly pid: number;
  /** The last few kilobytes it wrote to stderr (stdout, the JSON log, goes to /dev/null). */
  stderrTail(): string;
  /** SIGTERM (a graceful close, which writes a --cpu-prof profile), SIGKILL if it lingers. */
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  readonly args: readonly string[];
  /** Added to a minimal environment (PATH only), never the bench's own. */
  readonly env: Readonly<Record<string, string>>;
  /** Node options before the script: --import, --cpu-prof … */
  readonly nodeArgs?: readonly string[];
}

/** Starts a server; resolves once it prints where it listens and where its metrics are. */
export async function startServerProcess(cleanup: Cleanup, options: ServerProcessOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), SERVER_BIN, ...options.args], {
    // The JSON log is written (pino pays for it) but nobody reads it: a pipe
    // the bench drained would cost the bench CPU the server does not use.
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH ?? '', AWS_EC2_METADATA_DISABLED: 'true', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', SSHCA_METRICS_PORT: '0', ...options.env },
  });
  cleanup.track(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  cleanup.add(stop);
  const started = await new Promise<{ url: string; metricsUrl: string } | Error>((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`sshca-server did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const check = () => {
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      const metricsUrl = /metrics \(Prometheus\) at (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url && metricsUrl) {
        clearTimeout(timer);
        resolve({ url, metricsUrl });
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(new Error(`sshca-server exited (${signal ?? code}) before listening`));
    });
  });
  if (started instanceof Error) {
    await stop();
    throw new Error(`${started.message}:\n${stderr}`);
  }
  return { ...started, pid: child.pid!, stderrTail: () => stderr, stop };
}

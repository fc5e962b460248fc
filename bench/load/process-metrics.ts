// What a server process says about itself on GET /metrics: prom-client's
// default process metrics (registered with the prefix `sshca_`), read before
// and after a timed run so CPU per certificate is the server's own figure,
// not the bench's guess.
import { request } from 'undici';

/** One reading of a server process. */
export interface ProcessSample {
  /** User + system CPU of the whole process (all its threads), in seconds. */
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  readonly heapUsedBytes: number;
}

/** The value of an unlabelled metric, with or without the `sshca_` prefix. */
function value(text: string, name: string): number {
  const m = new RegExp(`^(?:sshca_)?${name} ([0-9.eE+-]+)`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} not found in the server's /metrics`);
  return Number(m[1]);
}

/** Scrapes `metricsUrl` once. */
export async function scrapeProcessMetrics(metricsUrl: string): Promise<ProcessSample> {
  const res = await request(metricsUrl, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${metricsUrl}: ${res.statusCode}`);
  return {
    cpuSeconds: value(text, 'process_cpu_user_seconds_total') + value(text, 'process_cpu_system_seconds_total'),
    residentBytes: value(text, 'process_resident_memory_bytes'),
    heapUsedBytes: value(text, 'nodejs_heap_size_used_bytes'),
  };
}

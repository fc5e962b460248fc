// The load bench's command line, checked up front so that a typo fails in a
// second rather than after minutes of load.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

export const MODES = ['dev', 'postgres', 'prod'] as const;
export type Mode = (typeof MODES)[number];

export interface BenchOptions {
  /** Asked for explicitly (--mode), or every mode this machine can run. */
  readonly modes: readonly Mode[] | 'available';
  readonly concurrencies: readonly number[];
  readonly requests: number;
  readonly warmup: number;
  /** SSHCA_LOG_LEVEL; unset: silent for dev and postgres, info (as deployed) for prod. */
  readonly logLevel?: string;
  readonly caKeyType: string;
  readonly keygenCerts: number;
  readonly prodConcurrency: number;
  readonly stsLatencyMs: number;
  readonly kmsLatencyMs: number;
  readonly prodStore?: 'postgres' | 'sqlite';
  readonly prodCheckpoint: 'kms' | 'file';
  /** --soak: minutes of steady load instead of the tables. */
  readonly soakMinutes?: number;
  readonly soakConcurrency: number;
  readonly soakWarmupSeconds: number;
  /** --cpu-prof DIR: each server writes a V8 CPU profile there when it stops. */
  readonly cpuProfDir?: string;
  readonly tokenWorkers: number;
}

export const USAGE = `usage: npm run bench -- [options]
  --mode dev,postgres,prod   modes to run (default: each one this machine can run)
  --concurrency 1,8,64       concurrent clients, one row each (dev, postgres)
  --requests N               timed requests per row (default 2000)
  --warmup N                 untimed requests before each row (default 200, at least 2 per client)
  --log-level LEVEL          server SSHCA_LOG_LEVEL (default: silent; prod: info, as deployed)
  --ca-key-type TYPE         dev CA key, and ssh-keygen's (default ed25519)
  --keygen-certs N           certificates for the ssh-keygen -s yardstick (default 500)
  --prod-concurrency N       production-like clients (default 100)
  --sts-latency MS           injected STS latency (default 30)
  --kms-latency MS           injected KMS latency (default 15)
  --prod-store postgres|sqlite      production-like store (default postgres if installed, as deployed)
  --prod-checkpoint kms|file        checkpoint key (default kms, as deployed)
  --soak [MINUTES]           steady load on the dev server instead (default 10, at most 240)
  --soak-concurrency N       (default 8)
  --soak-warmup SECONDS      load before the first reading (default 60, at most a fifth of the soak)
  --cpu-prof DIR             servers write V8 CPU profiles to DIR when they stop
environment: SSHCA_BENCH_SERVER_BIN=PATH  another build's dist/server/bin/sshca-server.js (before/after)`;

function whole(value: string | undefined, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value ?? '') || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** Parses argv; throws with a message on anything unknown or out of range. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  // `--soak` alone means the default duration: parseArgs needs a value, so give it one.
  const args = argv.flatMap((a, i) => (a === '--soak' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--')) ? [a, '10'] : [a]));
  const { values: v } = parseArgs({
    args,
    strict: true,
    options: {
      mode: { type: 'string' },
      concurrency: { type: 'string', default: '1,8,64' },
      requests: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      'log-level': { type: 'string' },
      'ca-key-type': { type: 'string', default: 'ed25519' },
      'keygen-certs': { type: 'string', default: '500' },
      'prod-concurrency': { type: 'string', default: '100' },
      'sts-latency': { type: 'string', default: '30' },
      'kms-latency': { type: 'string', default: '15' },
      'prod-store': { type: 'string' },
      'prod-checkpoint': { type: 'string', default: 'kms' },
      soak: { type: 'string' },
      'soak-concurrency': { type: 'string', default: '8' },
      'soak-warmup': { type: 'string', default: '60' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (v.help) throw new Error(USAGE);
  const modes = v.mode === undefined ? 'available' : v.mode.split(',').map((m) => m.trim());
  for (const m of modes === 'available' ? [] : modes) if (!(MODES as readonly string[]).includes(m)) throw new Error(`--mode: ${m} is not one of ${MODES.join(', ')}`);
  if (v['prod-store'] !== undefined && !['postgres', 'sqlite'].includes(v['prod-store'])) throw new Error('--prod-store must be postgres or sqlite');
  if (!['kms', 'file'].includes(v['prod-checkpoint'])) throw new Error('--prod-checkpoint must be kms or file');
  if (!['ed25519', 'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'rsa-4096'].includes(v['ca-key-type'])) throw new Error('--ca-key-type must be one of ed25519, ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-4096');
  const soakMinutes = v.soak === undefined ? undefined : Number(v.soak);
  if (soakMinutes !== undefined && !(soakMinutes > 0 && soakMinutes <= 240)) throw new Error('--soak must be more than 0 and at most 240 minutes');
  return {
    modes: modes as readonly Mode[] | 'available',
    concurrencies: v.concurrency.split(',').map((c) => whole(c.trim(), '--concurrency', 1, 1000)),
    requests: whole(v.requests, '--requests', 1, 1_000_000),
    warmup: whole(v.warmup, '--warmup', 0, 1_000_000),
    ...(v['log-level'] !== undefined ? { logLevel: v['log-level'] } : {}),
    caKeyType: v['ca-key-type'],
    keygenCerts: whole(v['keygen-certs'], '--keygen-certs', 1, 100_000),
    prodConcurrency: whole(v['prod-concurrency'], '--prod-concurrency', 1, 1000),
    stsLatencyMs: whole(v['sts-latency'], '--sts-latency', 0, 10_000),
    kmsLatencyMs: whole(v['kms-latency'], '--kms-latency', 0, 10_000),
    ...(v['prod-store'] !== undefined ? { prodStore: v['prod-store'] as 'postgres' | 'sqlite' } : {}),
    prodCheckpoint: v['prod-checkpoint'] as 'kms' | 'file',
    ...(soakMinutes !== undefined ? { soakMinutes } : {}),
    soakConcurrency: whole(v['soak-concurrency'], '--soak-concurrency', 1, 1000),
    soakWarmupSeconds: whole(v['soak-warmup'], '--soak-warmup', 0, 3600),
    ...(v['cpu-prof'] !== undefined ? { cpuProfDir: resolve(v['cpu-prof']) } : {}),
    tokenWorkers: availableParallelism(),
  };
}

/** Node options for server processes: a CPU profile per process when asked for. */
export function profilingNodeArgs(options: BenchOptions): string[] {
  return options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
}

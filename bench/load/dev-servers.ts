// `sshca-server --dev` processes sharing one data dir (so one CA key, one
// checkpoint key and one dev identity), on the embedded SQLite or on one
// PostgreSQL (SSHCA_STORE). Each signs tokens for itself: its own URL is the
// audience and its /dev/sts/ the STS endpoint it replays them against.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import type { TokenTarget } from './token-source.js';

export interface DevServersOptions {
  readonly count: number;
  readonly dataDir: string;
  readonly logLevel: string;
  readonly caKeyType: string;
  /** postgres://…; absent: the embedded SQLite in the data dir (one process only). */
  readonly store?: string;
  readonly nodeArgs?: readonly string[];
}

/** Running dev servers and whom to sign tokens for. */
export interface DevServers {
  readonly servers: readonly ServerProcess[];
  readonly targets: readonly TokenTarget[];
}

/** Starts `count` dev servers, one after the other (the first creates the data dir's keys). */
export async function startDevServers(cleanup: Cleanup, options: DevServersOptions): Promise<DevServers> {
  const servers: ServerProcess[] = [];
  for (let i = 0; i < options.count; i++) {
    servers.push(
      await startServerProcess(cleanup, {
        args: ['--dev', '--port', '0', '--data-dir', options.dataDir, '--dev-user', 'bench', '--ca-key-type', options.caKeyType],
        // Rate limits off: every request comes from one address.
        env: { SSHCA_LOG_LEVEL: options.logLevel, SSHCA_RATE_LIMIT_PER_MINUTE: '0', ...(options.store ? { SSHCA_STORE: options.store } : {}) },
        ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
      }),
    );
  }
  const creds = readFileSync(join(options.dataDir, 'aws-credentials'), 'utf8');
  const credentials = { accessKeyId: /aws_access_key_id = (\S+)/.exec(creds)![1]!, secretAccessKey: /aws_secret_access_key = (\S+)/.exec(creds)![1]! };
  const targets = await Promise.all(
    servers.map(async (s) => {
      const info = (await (await fetch(`${s.url}/v1/ca`)).json()) as { audience: string; stsEndpoints: string[] };
      return { endpoint: info.stsEndpoints[0]!, audience: info.audience, credentials };
    }),
  );
  return { servers, targets };
}

// prod: the server in production configuration, as the CDK app deploys it
// (user CA and checkpoint key in KMS, PostgreSQL, info logging), against the
// STS and KMS fixtures answering after an injected latency. What the server
// adds on top of the latency it waits for is the figure: p99 − injected.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir, startPostgres } from '../../test/fixtures/postgres.js';
import { profilingNodeArgs, type BenchOptions } from './bench-options.js';
import { STS_ENDPOINT, startAwsFixtures } from './aws-fixtures.js';
import type { Cleanup } from './cleanup.js';
import { measureRow } from './measure-row.js';
import { ROW_COLUMNS, renderTable, rowCells } from './row-table.js';
import { startServerProcess } from './server-process.js';
import type { KeygenRate } from './ssh-keygen-baseline.js';
import { fixed } from './text-table.js';
import { TokenSource } from './token-source.js';

/** The audience tokens name: a deployment's public URL (the bench reaches the server on loopback, as a load balancer would). */
const AUDIENCE = 'https://sshca.bench.example';

/** Runs the production-like row; returns the rendered table. */
export async function runProdMode(cleanup: Cleanup, options: BenchOptions, keygen: KeygenRate | undefined): Promise<string> {
  return cleanup.scope(async (c) => {
    const logLevel = options.logLevel ?? 'info';
    const storeKind = options.prodStore ?? (postgresBinDir() ? 'postgres' : 'sqlite');
    const dir = c.tempDir('sshca-bench-prod-');
    const aws = await startAwsFixtures(c, dir, { stsMs: options.stsLatencyMs, kmsMs: options.kmsLatencyMs });
    const policy = join(dir, 'policy.yaml');
    writeFileSync(policy, `accounts: ['${aws.principal.account}']\nrules:\n  - name: engineers\n    match: { account: '${aws.principal.account}' }\n    principals: ['{{user}}']\n`);
    let checkpointKey = `kms:${aws.checkpointArn}`;
    if (options.prodCheckpoint === 'file') {
      checkpointKey = join(dir, 'checkpoint.pem');
      writeFileSync(checkpointKey, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    }
    const store: Record<string, string> = storeKind === 'postgres' ? { SSHCA_STORE: (await startPostgres(c.asTap())).url } : { SSHCA_AUDIT_DB: join(dir, 'audit.db') };
    const server = await startServerProcess(c, {
      args: [],
      env: {
        SSHCA_AUDIENCE: AUDIENCE,
        SSHCA_STS_ENDPOINTS: STS_ENDPOINT,
        SSHCA_POLICY: policy,
        SSHCA_USER_CA: `kms:${aws.userCaArn}`,
        SSHCA_CHECKPOINT_KEY: checkpointKey,
        SSHCA_KMS_ENDPOINT: aws.kmsUrl,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: aws.kmsCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: aws.kmsCredentials.secretAccessKey,
        ...store,
        SSHCA_PORT: '0',
        SSHCA_LOG_LEVEL: logLevel,
        // Off, unlike a deployment: every request comes from one address.
        SSHCA_RATE_LIMIT_PER_MINUTE: '0',
        ...aws.serverEnv,
      },
      nodeArgs: [...aws.serverNodeArgs, ...profilingNodeArgs(options)],
    });
    const tokens = new TokenSource([{ endpoint: STS_ENDPOINT, audience: AUDIENCE, credentials: { accessKeyId: aws.principal.accessKeyId, secretAccessKey: aws.principal.secretAccessKey } }], options.tokenWorkers);
    c.add(() => tokens.close());
    process.stderr.write(`bench: prod, ${options.prodConcurrency} concurrent …\n`);
    const figures = await measureRow([server], tokens, { concurrency: options.prodConcurrency, requests: options.requests, warmup: options.warmup }, {
      sts: async () => (await aws.counts()).sts,
      kmsSign: async () => (await aws.counts()).kmsSign,
      fixtureCpuMs: async () => (await aws.counts()).cpuMs,
    });
    // On every certificate's path: one STS replay, one KMS Sign for the
    // certificate and, with a KMS checkpoint key, one for its batch's checkpoint.
    const kmsOnPath = options.prodCheckpoint === 'kms' ? 2 : 1;
    const injected = options.stsLatencyMs + kmsOnPath * options.kmsLatencyMs;
    const perCert = (n: number | undefined) => (figures.load.issued > 0 && n !== undefined ? n / figures.load.issued : undefined);
    const columns = [...ROW_COLUMNS, { title: 'injected ms' }, { title: 'srv-added p50' }, { title: 'srv-added p99' }, { title: 'STS/cert' }, { title: 'KMS Sign/cert' }, { title: 'fixtures CPU ms/cert' }];
    const cells = [
      ...rowCells(figures, keygen),
      String(injected),
      fixed(figures.p50 !== undefined ? figures.p50 - injected : undefined),
      fixed(figures.p99 !== undefined ? figures.p99 - injected : undefined),
      fixed(perCert(figures.counted.sts), 2),
      fixed(perCert(figures.counted.kmsSign), 2),
      fixed(perCert(figures.counted.fixtureCpuMs), 2),
    ];
    const title =
      `prod: sshca-server in production configuration, ${storeKind === 'postgres' ? 'PostgreSQL' : 'SQLite file'}, user CA in KMS, checkpoint key ${options.prodCheckpoint === 'kms' ? 'in KMS' : 'in a file'}, log level ${logLevel}, rate limits off;\n` +
      `      STS fixture +${options.stsLatencyMs} ms (HTTPS), KMS fixture +${options.kmsLatencyMs} ms; injected on each path = STS + ${kmsOnPath}× KMS Sign = ${injected} ms`;
    return renderTable(title, columns, [{ cells, figures }]);
  });
}

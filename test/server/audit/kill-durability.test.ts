// Group commit under a crash (issue 14): a server process killed with
// SIGKILL while batches are in flight has, on its record, every certificate
// a client received, and the chain still verifies — on SQLite and on
// PostgreSQL.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { IdentityTokenSigner } from '../../../client/identity-token-signer.js';
import { importCheckpointKey, verifyChain } from '../../../protocol/audit-chain.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import type { AuditLog } from '../../../server/audit/audit-log.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../../server/audit/postgres-audit-log.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { needsPostgres, startPostgres } from '../../fixtures/postgres.js';
import { spawnServer } from '../../fixtures/server-process.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const REQUESTS = 400;
const CONCURRENCY = 24;
/** Killed once this many certificates have reached clients: batches are surely in flight then. */
const KILL_AFTER = 80;

async function killMidBurst(t: Test, env: Record<string, string>, openStore: (dataDir: string) => Promise<AuditLog>): Promise<void> {
  const dataDir = join(t.testdir(), 'data');
  const server = await spawnServer(t, ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'kay'], { SSHCA_LOG_LEVEL: 'warn', SSHCA_RATE_LIMIT_PER_MINUTE: '0', ...env });
  t.ok(server.url, `the server listens ${server.stderr()}`);
  const info = (await (await fetch(`${server.url}/v1/ca`)).json()) as { audience: string; stsEndpoints: string[] };
  const creds = readFileSync(join(dataDir, 'aws-credentials'), 'utf8');
  const signer = new IdentityTokenSigner({ credentials: { accessKeyId: /aws_access_key_id = (\S+)/.exec(creds)![1]!, secretAccessKey: /aws_secret_access_key = (\S+)/.exec(creds)![1]! } });
  const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
  // Signed before the burst, so the burst is as dense as the server allows.
  const work = await Promise.all(Array.from({ length: REQUESTS }, async (_, i) => {
    const body = JSON.stringify({ publicKey, reason: `crash ${i}` });
    return { body, token: await signer.sign({ endpoint: info.stsEndpoints[0]!, audience: info.audience, method: 'POST', pathAndQuery: '/v1/certs/user', body }) };
  }));
  const dispatcher = new Agent({ connections: CONCURRENCY });
  t.teardown(() => dispatcher.destroy());
  const received: string[] = [];
  let next = 0;
  let killed = false;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < work.length && !killed) {
      const item = work[next++]!;
      try {
        const res = await fetch(`${server.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${item.token}` }, body: item.body, dispatcher } as RequestInit);
        const json = (await res.json()) as { serial?: string };
        if (res.status === 201 && json.serial) received.push(json.serial);
      } catch {
        // The connection died with the server: that client got nothing.
      }
      if (received.length >= KILL_AFTER && !killed) {
        killed = true;
        server.child.kill('SIGKILL');
      }
    }
  }));
  await exited;
  t.ok(killed, `killed with SIGKILL after ${received.length} certificates reached clients`);

  const checkpoints = CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem'));
  const store = await openStore(dataDir);
  t.teardown(() => store.close());
  const missing: string[] = [];
  for (const serial of received) {
    if ((await store.query({ kind: 'issued', serial }, { limit: 1 })).records.length !== 1) missing.push(serial);
  }
  t.same(missing, [], `every one of the ${received.length} certificates a client received is on the record`);
  const verdict = await verifyChain(store.exportRecords(), await importCheckpointKey({ ...checkpoints.jwk }));
  t.equal(verdict.ok, true, `the chain verifies after the crash ${JSON.stringify(verdict)}`);
  t.ok(verdict.ok && verdict.count >= received.length, 'with at least those records on it');
}

t.test('SQLite: SIGKILL mid-burst loses no record of a certificate that was returned', async (t) => {
  await killMidBurst(t, {}, async (dataDir) => new SqliteAuditLog(join(dataDir, 'audit.db'), CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem'))));
});

t.test('PostgreSQL: SIGKILL mid-burst loses no record of a certificate that was returned', needsPostgres, async (t) => {
  const pg = await startPostgres(t);
  await killMidBurst(t, { SSHCA_STORE: pg.url }, (dataDir) => PostgresAuditLog.open(pg.url, CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem'))));
});

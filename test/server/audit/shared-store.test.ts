// Two server processes on one PostgreSQL: certificates issued concurrently
// through both get unique serials, every one is on the record, and the chain
// still verifies. A store outage mid-way answers 503 and issues nothing.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { IdentityTokenSigner } from '../../../client/identity-token-signer.js';
import { importCheckpointKey, verifyChain } from '../../../protocol/audit-chain.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../../server/audit/postgres-audit-log.js';
import { needsPostgres, startPostgres } from '../../fixtures/postgres.js';
import { spawnServer } from '../../fixtures/server-process.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const PER_SERVER = 30;

t.test('two replicas, one PostgreSQL', needsPostgres, async (t) => {
  const pg = await startPostgres(t);
  const dataDir = join(t.testdir(), 'data');
  const args = ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'kay'];
  const env = { SSHCA_STORE: pg.url, SSHCA_LOG_LEVEL: 'warn' };
  // One after the other: the first creates the shared data dir (keys, credentials).
  const a = await spawnServer(t, args, env);
  const b = await spawnServer(t, args, env);
  t.ok(a.url && b.url, `both replicas listen ${a.stderr()} ${b.stderr()}`);
  const creds = readFileSync(join(dataDir, 'aws-credentials'), 'utf8');
  const signer = new IdentityTokenSigner({ credentials: { accessKeyId: /aws_access_key_id = (\S+)/.exec(creds)![1]!, secretAccessKey: /aws_secret_access_key = (\S+)/.exec(creds)![1]! } });
  const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
  let n = 0;
  const request = async (url: string) => {
    const info = (await (await fetch(`${url}/v1/ca`)).json()) as { audience: string; stsEndpoints: string[] };
    const body = JSON.stringify({ publicKey, reason: `r${n++}` });
    const token = await signer.sign({ endpoint: info.stsEndpoints[0]!, audience: info.audience, method: 'POST', pathAndQuery: '/v1/certs/user', body });
    const res = await fetch(`${url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}` }, body });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const burst = async (url: string) => {
    const results = [];
    for (let i = 0; i < PER_SERVER; i += 6) results.push(...(await Promise.all(Array.from({ length: 6 }, () => request(url)))));
    return results;
  };
  const results = (await Promise.all([burst(a.url!), burst(b.url!)])).flat();
  const issued = results.filter((r) => r.status === 201);
  t.equal(issued.length, 2 * PER_SERVER, `every request was issued (${results.filter((r) => r.status !== 201).map((r) => r.json.code).join(',')})`);
  t.equal(new Set(issued.map((r) => r.json.serial)).size, issued.length, 'serials are unique');

  const key = await importCheckpointKey({ ...CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem')).jwk });
  const store = await PostgresAuditLog.open(pg.url, CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem')));
  t.teardown(() => store.close());
  const verdict = await verifyChain(store.exportRecords(), key);
  t.match(verdict, { ok: true, count: issued.length }, 'the chain verifies with every record on it');
  const recorded = (await store.query({ kind: 'issued' }, { limit: 500 })).records.map((r) => r.data.serial);
  t.same(new Set(recorded), new Set(issued.map((r) => r.json.serial)), 'issued == recorded');

  pg.stop();
  const during = await request(a.url!);
  t.equal(during.status, 503, 'store down: 503');
  t.equal(during.json.code, 'UNAVAILABLE_STORE');
  t.notOk('certificate' in during.json, 'and no certificate');
  pg.start();
  let after = await request(b.url!);
  // The first request after a restart may meet a connection the pool has not yet noticed is dead.
  if (after.status === 503) after = await request(b.url!);
  t.equal(after.status, 201, 'issues again once the store is back');
  t.equal((await verifyChain(store.exportRecords(), key)).ok, true);
});

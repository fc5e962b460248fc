// A record nobody can shorten quietly (issue 16): once the chain head is
// anchored outside the database, deleting the newest records directly in
// SQLite or PostgreSQL makes `sshca audit verify` fail with AUDIT_TRUNCATED,
// and the server refuses to anchor over the gap. Partial exports (--since)
// verify as what they are.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import t, { type Test } from 'tap';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { needsPostgres, startPostgres } from '../fixtures/postgres.js';
import { startS3Fixture } from '../fixtures/s3-fixture.js';
import { spawnServer } from '../fixtures/server-process.js';

/** A dev server (extra environment: its store and anchors) with three certificates issued through the CLI. */
async function serverWithThreeCertificates(t: Test, env: Record<string, string>) {
  const dataDir = join(t.testdir(), 'data');
  const server = await spawnServer(t, ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'ida'], { SSHCA_LOG_LEVEL: 'warn', ...env });
  t.ok(server.url, server.stderr());
  const loginEnv = devLoginEnv(dataDir, join(t.testdirName, 'home'));
  const cli = (args: string[]) => runCli([...args, '--server', server.url!, '--profile', 'sshca-dev'], loginEnv);
  for (const reason of ['r1', 'r2', 'r3']) t.equal((await cli(['login', '--reason', reason])).code, 0);
  return { server, dataDir, env: loginEnv, cli };
}

t.test('SQLite, anchored to <data dir>/anchors: truncation is reported, partial exports verify', needsOpenSsh, async (t) => {
  const { server, dataDir, env, cli } = await serverWithThreeCertificates(t, {});

  const anchored = await cli(['audit', 'anchor', '--json']);
  t.equal(anchored.code, 0, anchored.stderr);
  t.match(JSON.parse(anchored.stdout), { outcome: 'created', anchor: { seq: 3 }, location: join(dataDir, 'anchors') }, 'the head (record 3) anchored in the data dir');
  const files = readdirSync(join(dataDir, 'anchors')).filter((f) => f.endsWith('.json'));
  t.equal(files.length, 1);
  t.equal(statSync(join(dataDir, 'anchors', files[0]!)).mode & 0o222, 0, 'the anchor file is read-only');
  t.match(JSON.parse((await cli(['audit', 'anchor', '--json'])).stdout), { outcome: 'unchanged' }, 'anchoring an unchanged head writes nothing new');

  const fine = await cli(['audit', 'verify']);
  t.equal(fine.code, 0, fine.stderr);
  t.match(fine.stdout, /anchors: 1 checked; newest: record #3/);
  t.equal((await cli(['login', '--reason', 'r4'])).code, 0);
  const before = join(t.testdirName, 'before.ndjson');
  t.equal((await cli(['audit', 'export', '--output', before])).code, 0);

  // A partial export: the records of the last minute, verifiable on their own.
  const partial = join(t.testdirName, 'partial.ndjson');
  t.equal((await cli(['audit', 'export', '--since', '1m', '--output', partial])).code, 0);
  const partialLines = readFileSync(partial, 'utf8').trimEnd().split('\n');
  t.match(JSON.parse(partialLines[0]!), { type: 'start', seq: 1 }, 'a partial export opens with its start');
  const keyFile = join(t.testdirName, 'checkpoint-key.json');
  writeFileSync(keyFile, await (await fetch(`${server.url}/v1/audit/checkpoint-key`)).text());
  const offline = (file: string, more: string[] = []) => runCli(['audit', 'verify', '--file', file, '--checkpoint-key', keyFile, ...more], env);
  const sinceLater = join(t.testdirName, 'since-later.ndjson');
  // Records 3 and 4 only: rewrite the export from record 3 on, as the server would for a later --since.
  const full = readFileSync(before, 'utf8').trimEnd().split('\n');
  const third = JSON.parse(full[2]!) as { prevHash: string; at: string };
  writeFileSync(sinceLater, [JSON.stringify({ type: 'start', seq: 3, prevHash: third.prevHash, since: third.at }), ...full.slice(2)].join('\n') + '\n');
  const partialOk = await offline(sinceLater, ['--anchors', join(dataDir, 'anchors')]);
  t.equal(partialOk.code, 0, partialOk.stderr);
  t.match(partialOk.stdout, /verified 2 records \(records 3–4: a partial export from /, 'says it is partial');
  t.match(partialOk.stdout, /anchors: 1 checked/, 'the anchor inside the partial export is checked');
  const noStart = join(t.testdirName, 'no-start.ndjson');
  writeFileSync(noStart, full.slice(2).join('\n') + '\n');
  t.equal(errorCodeOf((await offline(noStart)).stderr), 'AUDIT_SEQUENCE', 'without its start line, a tail is a chain with its first records missing');

  // The attacker with database access deletes the newest records (3 and 4); record 2 ends a batch, so what is left verifies by itself.
  const db = new Database(join(dataDir, 'audit.db'));
  db.prepare('DELETE FROM audit_records WHERE seq >= 3').run();
  db.close();
  const truncated = await cli(['audit', 'verify']);
  t.equal(truncated.code, 1, 'verify fails');
  t.equal(errorCodeOf(truncated.stderr), 'AUDIT_TRUNCATED', 'AUDIT_TRUNCATED: the chain ends before the anchored head');
  t.match(truncated.stderr, /audit record 3:/, 'naming the anchored record');
  t.equal(errorCodeOf((await offline(before, ['--anchors', join(dataDir, 'anchors')])).stderr), undefined, 'the export taken before still verifies against the anchors');
  const after = join(t.testdirName, 'after.ndjson');
  t.equal((await cli(['audit', 'export', '--output', after])).code, 0);
  t.equal((await offline(after)).code, 0, 'without anchors the shortened chain verifies: the gap anchoring closes');
  t.equal(errorCodeOf((await offline(after, ['--anchors', join(dataDir, 'anchors')])).stderr), 'AUDIT_TRUNCATED', 'offline, with the anchors synced from their store');

  const refused = await cli(['audit', 'anchor']);
  t.equal(errorCodeOf(refused.stderr), 'AUDIT_TRUNCATED', 'the server refuses to anchor over the gap');
  t.equal(refused.code, 1);
  t.equal(readdirSync(join(dataDir, 'anchors')).filter((f) => f.endsWith('.json')).length, 1, 'and writes no anchor');
});

t.test('PostgreSQL, anchored to S3 with Object Lock: truncation is reported', { skip: needsOpenSsh.skip || needsPostgres.skip }, async (t) => {
  const postgres = await startPostgres(t);
  const s3 = await startS3Fixture(t);
  s3.createBucket('sshca-anchors', { objectLock: true, versioning: true, denyDeletes: true, requireIfNoneMatch: true });
  const { cli } = await serverWithThreeCertificates(t, {
    SSHCA_STORE: postgres.url, SSHCA_AUDIT_ANCHOR: 's3://sshca-anchors/audit/', SSHCA_S3_ENDPOINT: s3.url,
    AWS_REGION: s3.region, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
  });
  const anchored = await cli(['audit', 'anchor', '--json']);
  t.equal(anchored.code, 0, anchored.stderr);
  const { anchor } = JSON.parse(anchored.stdout) as { anchor: { seq: number } };
  t.equal(anchor.seq, 3);
  const put = s3.requests.find((r) => r.method === 'PUT' && r.path.endsWith(`-${anchor.seq}.json`));
  t.match(put?.headers, { 'x-amz-object-lock-mode': 'COMPLIANCE', 'if-none-match': '*' }, 'written once, under compliance-mode retention');
  t.equal((await cli(['audit', 'verify'])).code, 0);

  const raw = new pg.Client({ connectionString: postgres.url });
  await raw.connect();
  await raw.query('DELETE FROM audit_records WHERE seq >= 3');
  await raw.end();
  const truncated = await cli(['audit', 'verify']);
  t.equal(truncated.code, 1);
  t.equal(errorCodeOf(truncated.stderr), 'AUDIT_TRUNCATED', 'AUDIT_TRUNCATED from the S3 anchors');
  t.equal(errorCodeOf((await cli(['audit', 'anchor'])).stderr), 'AUDIT_TRUNCATED', 'and no new anchor papers over it');
});

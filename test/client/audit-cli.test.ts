// `sshca audit list|export|verify` against the dev server: the record is
// queryable by auditors only, exports verify offline, and every kind of
// tampering — in a file or in the database — is caught, naming the record.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

t.test('audit list, export and verify', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'ida' });
  const dir = t.testdir();
  const env = devLoginEnv(dev.dataDir, join(dir, 'home'));
  const cli = (args: string[]) => runCli([...args, '--server', dev.url, '--profile', 'sshca-dev'], env);
  t.equal((await cli(['login'])).code, 0);
  t.equal((await cli(['login', '--principal', 'root'])).code, 3);
  t.equal((await cli(['login', '--ttl', '1h', '--reason', 'INC-7'])).code, 0);

  const all = JSON.parse((await cli(['audit', 'list', '--json'])).stdout);
  t.same(all.records.map((r: { kind: string }) => r.kind), ['issued', 'refused', 'issued'], 'newest first');
  t.match(all.records[0].data, { principals: ['ida'], reason: 'INC-7', policyRule: 'dev-user', callerArn: 'arn:aws:iam::000000000000:user/ida' });
  const refused = JSON.parse((await cli(['audit', 'list', '--kind', 'refused', '--json'])).stdout);
  t.same(refused.records.map((r: { data: { code: string } }) => r.data.code), ['POLICY_PRINCIPAL_DENIED']);
  const page = JSON.parse((await cli(['audit', 'list', '--limit', '2', '--json'])).stdout);
  t.equal(page.records.length, 2);
  const rest = JSON.parse((await cli(['audit', 'list', '--limit', '2', '--before', String(page.nextBefore), '--json'])).stdout);
  t.same(rest.records.map((r: { seq: number }) => r.seq), [1], 'the cursor reaches the oldest record');
  t.match((await cli(['audit', 'list'])).stdout, /#3 .* issued +arn:aws:iam::000000000000:user\/ida serial \d+ principals ida/);

  const verified = await cli(['audit', 'verify']);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, /verified 3 records/);

  const file = join(dir, 'audit.ndjson');
  t.equal((await cli(['audit', 'export', '--output', file])).code, 0);
  const keyFile = join(dir, 'checkpoint-key.json');
  writeFileSync(keyFile, await (await fetch(`${dev.url}/v1/audit/checkpoint-key`)).text());
  const offline = (f: string, k = keyFile) => runCli(['audit', 'verify', '--file', f, '--checkpoint-key', k], env);
  t.equal((await offline(file)).code, 0, 'the export verifies offline');

  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  const tampered: Array<[string, string[], string, number]> = [
    ['a record edited', lines.map((l, i) => (i === 0 ? l.replace('"ida"', '"mallory"') : l)), 'AUDIT_HASH', 1],
    ['a record deleted', lines.filter((_, i) => i !== 1), 'AUDIT_SEQUENCE', 3],
    ['records reordered', [lines[1]!, lines[0]!, ...lines.slice(2)], 'AUDIT_SEQUENCE', 2],
    ['a record inserted (a copy)', [lines[0]!, lines[0]!, ...lines.slice(1)], 'AUDIT_SEQUENCE', 1],
    ['cut short (head dropped)', lines.slice(0, 2), 'AUDIT_HEAD', 2],
    ['cut short (old head kept)', [...lines.slice(0, 2), lines.at(-1)!], 'AUDIT_HEAD', 3],
  ];
  for (const [name, content, code, seq] of tampered) {
    const f = join(dir, `tampered-${code}-${seq}.ndjson`);
    writeFileSync(f, `${content.join('\n')}\n`);
    const r = await offline(f);
    t.equal(r.code, 1, `${name}: exit 1`);
    t.equal(errorCodeOf(r.stderr), code, `${name}: ${code}`);
    t.match(r.stderr, new RegExp(`audit record ${seq}:`), `${name}: names record ${seq}`);
  }
  const otherKey = join(dir, 'other-key.json');
  const { generateKeyPairSync } = await import('node:crypto');
  writeFileSync(otherKey, JSON.stringify(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' })));
  const wrongKey = await offline(file, otherKey);
  t.equal(errorCodeOf(wrongKey.stderr), 'AUDIT_CHECKPOINT', 'a checkpoint that does not verify');

  // Tampering in the database itself: the server's own export shows it.
  const db = new Database(join(dev.dataDir, 'audit.db'));
  db.prepare("UPDATE audit_records SET data = json_set(data, '$.reason', 'routine') WHERE seq = 3").run();
  db.close();
  const afterTamper = await cli(['audit', 'verify']);
  t.equal(afterTamper.code, 1);
  t.equal(errorCodeOf(afterTamper.stderr), 'AUDIT_HASH');
  t.match(afterTamper.stderr, /audit record 3:/);
});

t.test('only auditors may read the record', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'jo' });
  writeFileSync(join(dev.dataDir, 'policy.yaml'), "accounts: ['000000000000']\nrules:\n  - name: users\n    match: { account: '000000000000' }\n    principals: ['{{user}}']\n");
  t.equal(dev.server.reloadPolicy().ok, true);
  const env = devLoginEnv(dev.dataDir, t.testdir());
  const r = await runCli(['audit', 'list', '--server', dev.url, '--profile', 'sshca-dev'], env);
  t.equal(r.code, 3);
  t.equal(errorCodeOf(r.stderr), 'POLICY_ROLE_REQUIRED');
  t.equal((await runCli(['audit', 'export', '--server', dev.url, '--profile', 'sshca-dev'], env)).code, 3, 'export too');
  t.equal((await fetch(`${dev.url}/v1/audit/checkpoint-key`)).status, 200, 'the checkpoint key is public');
});

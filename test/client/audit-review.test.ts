// The reviewer's questions against two replicas on one PostgreSQL (issue 16):
// who holds a valid certificate now (`sshca audit active`: expired and
// revoked ones left out, one issued by the other replica included), callers
// by short name, durations for --since, CSV, and every record on the
// server's log as one JSON line.
import { join } from 'node:path';
import t from 'tap';
import type { ChainedRecord } from '../../protocol/audit-chain.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../server/audit/postgres-audit-log.js';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { needsPostgres, startPostgres } from '../fixtures/postgres.js';
import { spawnServer } from '../fixtures/server-process.js';

interface Active {
  certificates: Array<{ serial: string; callerArn: string; principals: string[]; sourceIp: string; policyRule?: string; reason?: string; validBefore: number }>;
  truncated: boolean;
  caller?: { query: string; by: string; matched: string[] };
}

/** Parses RFC 4180 CSV (quoted cells, doubled quotes, CRLF rows). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    row.push(cell);
    cell = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endCell();
    else if (c === '\r' && text[i + 1] === '\n') {
      endCell();
      rows.push(row);
      row = [];
      i++;
    } else cell += c;
  }
  return rows;
}

t.test('who has access now, across replicas; short caller names; CSV; the record as log lines', { skip: needsOpenSsh.skip || needsPostgres.skip }, async (t) => {
  const pg = await startPostgres(t);
  const dataDir = join(t.testdir(), 'data');
  const args = ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'ida'];
  const serverEnv = { SSHCA_STORE: pg.url, SSHCA_LOG_LEVEL: 'warn' };
  const a = await spawnServer(t, args, serverEnv);
  const b = await spawnServer(t, args, serverEnv);
  t.ok(a.url && b.url, `both replicas listen ${a.stderr()} ${b.stderr()}`);
  const env = devLoginEnv(dataDir, join(t.testdirName, 'home'));
  const cli = (url: string, more: string[]) => runCli([...more, '--server', url, '--profile', 'sshca-dev'], env);
  const ida = 'arn:aws:iam::000000000000:user/ida';

  t.equal((await cli(a.url!, ['login', '--reason', 'INC-1'])).code, 0, 'a certificate from replica A');
  t.equal((await cli(b.url!, ['login', '--ttl', '2h', '--reason', 'INC-2'])).code, 0, 'one from replica B');
  t.equal((await cli(a.url!, ['login', '--reason', 'INC-3'])).code, 0, 'another from A');
  const issued = JSON.parse((await cli(a.url!, ['audit', 'list', '--kind', 'issued', '--json'])).stdout) as { records: Array<{ seq: number; data: { serial: string; reason: string } }> };
  const serialOf = (reason: string) => issued.records.find((r) => r.data.reason === reason)!.data.serial;
  const [first, fromB, third] = ['INC-1', 'INC-2', 'INC-3'].map(serialOf) as [string, string, string];

  // A certificate that has expired, on the chain as any other (appended through the store, linked and signed).
  const checkpoints = CheckpointSigner.openOrCreate(join(dataDir, 'checkpoint-key.pem'));
  const store = await PostgresAuditLog.open(pg.url, checkpoints);
  t.teardown(() => store.close());
  const now = Math.floor(Date.now() / 1000);
  await store.recordIssued({
    requestId: 'old', at: new Date((now - 7200) * 1000), serial: 9_000_001n, keyId: 'old', certificateType: 'user', principals: ['ida'], validAfter: now - 7200, validBefore: now - 3600,
    extensions: [], criticalOptions: {}, callerArn: ida, accountId: '000000000000', userId: 'AIDAOLD', sourceIp: '127.0.0.1', publicKeyFingerprint: 'SHA256:old', certificateFingerprint: 'SHA256:oldc', caFingerprint: 'SHA256:ca', reason: 'INC-0',
  });
  t.equal((await cli(b.url!, ['revoke', '--serial', first, '--reason', 'laptop lost'])).code, 0, 'the first certificate revoked through B');

  const active = async (url: string, more: string[] = []) => {
    const r = await cli(url, ['audit', 'active', '--json', ...more]);
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Active;
  };
  const serials = (x: Active) => x.certificates.map((c) => c.serial).sort();
  const seenFromA = await active(a.url!);
  t.same(serials(seenFromA), [fromB, third].sort(), 'valid now and not revoked: the one issued by replica B is there; the revoked and the expired ones are not');
  t.same(serials(await active(b.url!)), serials(seenFromA), 'both replicas answer the same');
  t.match(seenFromA.certificates.find((c) => c.serial === fromB), { callerArn: ida, principals: ['ida'], sourceIp: '127.0.0.1', policyRule: 'dev-user', reason: 'INC-2' }, 'who, from where, by which rule, why');
  t.equal(seenFromA.truncated, false);

  // A revocation withdrawn gives the certificate back.
  const revocation = JSON.parse((await cli(a.url!, ['audit', 'list', '--kind', 'revoked', '--json'])).stdout).records[0].seq as number;
  t.equal((await cli(a.url!, ['revoke', '--withdraw', String(revocation), '--reason', 'found it'])).code, 0);
  t.same(serials(await active(a.url!)), [first, fromB, third].sort(), 'withdrawn: the first certificate is active again');
  t.equal((await cli(a.url!, ['revoke', '--serial', first, '--reason', 'lost again'])).code, 0);

  // Short names: the IAM user name matches whole, a prefix matches nobody; the answer says what matched.
  const byName = await active(a.url!, ['--caller', 'ida']);
  t.same(byName.caller, { query: 'ida', by: 'name', matched: [ida] }, 'the short name, and the ARN it matched');
  t.same(serials(byName), [fromB, third].sort());
  const prefix = await active(a.url!, ['--caller', 'id']);
  t.same([prefix.caller?.matched, prefix.certificates], [[], []], 'a prefix of the name matches no one');
  const text = await cli(a.url!, ['audit', 'list', '--caller', 'id']);
  t.equal(text.code, 0);
  t.match(text.stderr, /caller id: no caller/, 'and says so');
  t.same((await active(a.url!, ['--caller', ida])).caller, { query: ida, by: 'arn', matched: [ida] }, 'an ARN is matched exactly');
  t.same(serials(await active(a.url!, ['--principal', 'root'])), [], 'by principal');
  const badName = await cli(a.url!, ['audit', 'active', '--caller', 'ida*']);
  t.equal(errorCodeOf(badName.stderr), 'REQUEST_INVALID', 'a name with characters IAM never uses is refused, not guessed at');

  // CSV: one header, one row per certificate, cells quoted where needed.
  const csv = await cli(a.url!, ['audit', 'active', '--csv']);
  const rows = parseCsv(csv.stdout);
  t.same(rows[0], ['serial', 'type', 'principals', 'caller', 'source_ip', 'issued_at', 'expires_at', 'rule', 'reason', 'key_id', 'public_key']);
  t.same(rows.slice(1).map((r) => r[0]).sort(), [fromB, third].sort());
  const listCsv = parseCsv((await cli(a.url!, ['audit', 'list', '--csv', '--since', '1h'])).stdout);
  const header = listCsv[0]!;
  const col = (row: string[], name: string) => row[header.indexOf(name)];
  const rowB = listCsv.find((r) => col(r, 'serial') === fromB)!;
  t.same([col(rowB, 'kind'), col(rowB, 'lifetime'), col(rowB, 'rule'), col(rowB, 'reason'), col(rowB, 'source_ip')], ['issued', '2h', 'dev-user', 'INC-2', '127.0.0.1'], 'list --csv: lifetime, rule, reason, source address');
  t.notOk(listCsv.some((r) => col(r, 'serial') === '9000001'), '--since 1h leaves out the record from two hours ago');
  t.ok(parseCsv((await cli(a.url!, ['audit', 'list', '--csv', '--since', '3h'])).stdout).some((r) => col(r, 'serial') === '9000001'), '--since 3h includes it');
  const lines = (await cli(a.url!, ['audit', 'list', '--kind', 'issued'])).stdout;
  t.match(lines, new RegExp(`serial ${fromB} principals ida  \\[from 127\\.0\\.0\\.1, lifetime 2h, rule dev-user, reason "INC-2"\\]`), 'text shows source address, lifetime, rule and reason');
  t.equal(errorCodeOf((await cli(a.url!, ['audit', 'list', '--since', 'yesterday'])).stderr), 'CLIENT_USAGE', 'a time that is neither a duration nor a date');
  t.equal(errorCodeOf((await cli(a.url!, ['audit', 'list', '--since', '2026-11-01T10:00'])).stderr), 'CLIENT_USAGE', 'a time without a zone is ambiguous');

  // Every record reached a server's log as one JSON line, once, with its hash.
  const all: ChainedRecord[] = [];
  for await (const r of store.exportRecords()) all.push(r);
  const logged = [a, b].flatMap((s) =>
    s.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; audit?: { seq: number; hash: string; kind: string; data: object } }).filter((l) => l.msg === 'audit record'),
  );
  // The expired record was appended by this test's own store: it never went through a server.
  const viaServers = all.filter((r) => r.data.requestId !== 'old');
  t.same(logged.map((l) => [l.audit!.seq, l.audit!.hash]).sort((x, y) => (x[0] as number) - (y[0] as number)), viaServers.map((r) => [r.seq, r.hash]), 'one log line per record, from the replica that wrote it, even at SSHCA_LOG_LEVEL=warn');
});

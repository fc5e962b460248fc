// Rule 16 / issue 10 item 1: requests that never authenticate cannot grow
// the audit record one record at a time, are rate-limited per source, and
// do not slow an honest caller on another address beyond a stated factor.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { encodeIdentityToken } from '../../protocol/identity-token.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { MAX_SUMMARY_KEYS, RefusalAggregator, sourceNetwork } from '../../server/audit/refusal-aggregator.js';
import type { RefusalSummaryRecord } from '../../server/audit/audit-log.js';
import { auditRows, lastAnonymousRefusalCode, postUserCert, requestCertificate, signToken, startDevServer } from '../fixtures/dev-server.js';

const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));

/** One POST /v1/certs/user from `localAddress`, through a keep-alive agent. */
function post(url: string, agent: Agent, body: string, headers: Record<string, string>): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const u = new URL('/v1/certs/user', url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ method: 'POST', hostname: u.hostname, port: u.port, path: u.pathname, agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        const code = (JSON.parse(text) as { code?: string }).code;
        resolve({ status: res.statusCode ?? 0, ...(code ? { code } : {}), ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function honestIssuance(url: string, n: number, dev: Parameters<typeof requestCertificate>[0], phase: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    // A distinct body per request: the same body twice in one second would be the same token.
    const res = await requestCertificate(dev, { publicKey, reason: `honest ${phase} ${i}` });
    times.push(performance.now() - started);
    if (res.status !== 201) throw new Error(`honest request refused: ${res.status} ${JSON.stringify(res.json)} (${url})`);
  }
  return times;
}

t.test('a flood of anonymous requests: bounded record, 429s, an honest caller unaffected', async (t) => {
  const LIMIT = 200;
  const FLOOD = 3000;
  const dev = await startDevServer(t, { env: { SSHCA_RATE_LIMIT_PER_MINUTE: String(LIMIT) } });
  // The flood comes from another loopback address: rate limits are per source.
  const agent = new Agent({ keepAlive: true, maxSockets: 16, localAddress: '127.0.0.2' });
  t.teardown(() => agent.destroy());

  const before = await honestIssuance(dev.url, 15, dev, 'before');
  const kinds = [
    () => post(dev.url, agent, JSON.stringify({ publicKey }), {}),
    () => post(dev.url, agent, JSON.stringify({ publicKey }), { authorization: 'SSHCA-AWS4 not-a-token!' }),
    () => post(dev.url, agent, JSON.stringify({ publicKey, extra: 1 }), { authorization: 'SSHCA-AWS4 eyJ2IjoxfQ' }),
  ];
  const statuses = new Map<string, number>();
  let sent = 0;
  let retryAfterSeen = false;
  const flood = Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < FLOOD) {
        const r = await kinds[sent++ % kinds.length]!();
        const key = `${r.status} ${r.code}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (r.status === 429 && r.retryAfter && Number(r.retryAfter) > 0) retryAfterSeen = true;
      }
    }),
  );
  // Give the flood a head start, then issue while it runs.
  await new Promise((r) => setTimeout(r, 200));
  const during = await honestIssuance(dev.url, 15, dev, 'during');
  await flood;

  const refused = [...statuses.values()].reduce((a, b) => a + b, 0);
  t.equal(refused, FLOOD, 'every flood request was refused');
  t.equal(statuses.get('429 REQUEST_RATE_LIMITED'), FLOOD - LIMIT, `all but the first ${LIMIT} in the minute are rate-limited`);
  t.ok(statuses.get('401 AUTHN_FAILED'), 'missing and malformed tokens: the uniform 401');
  t.ok(statuses.get('400 REQUEST_INVALID'), 'schema errors: 400');
  t.ok(retryAfterSeen, '429 carries Retry-After');

  // A stated factor: the honest caller's median issuance time under the
  // flood stays within 8x its median without it, plus 50 ms of slack: the
  // flood's own client shares this process, and other test files share the
  // 2 cores. (Measured: 2.4x alone, 3.9x with 4 test files in parallel.)
  const m0 = median(before);
  const m1 = median(during);
  t.ok(m1 <= 8 * m0 + 50, `honest median ${m1.toFixed(1)} ms under the flood vs ${m0.toFixed(1)} ms without`);

  await dev.server.app.flushRefusals();
  const rows = auditRows(dev);
  t.equal(rows.filter((r) => r.kind === 'issued').length, 30, 'every honest certificate is on the record');
  t.equal(rows.filter((r) => r.kind === 'refused').length, 0, 'no anonymous refusal has a record of its own');
  const summaries = rows.filter((r) => r.kind === 'refused-summary');
  t.equal(summaries.length, 1, 'one summary record for the whole interval');
  const counts = summaries[0]!.counts!;
  t.equal(counts.reduce((a, c) => a + c.count, 0), FLOOD, 'the summary counts every refusal');
  t.same(new Set(counts.map((c) => c.network)), new Set(['127.0.0.0/24']), 'counted by source network');
  t.same(
    new Set(counts.map((c) => c.code)),
    new Set(['AUTHN_MISSING', 'AUTHN_TOKEN_MALFORMED', 'REQUEST_INVALID', 'REQUEST_RATE_LIMITED']),
    'counted by specific code (the 401 body stays uniform)',
  );
  t.equal(rows.length, 31, 'the record grew by the honest certificates and one summary, nothing else');
});

t.test('public lists have their own per-source limit', async (t) => {
  // 6: startDevServer itself fetches /v1/ca once.
  const dev = await startDevServer(t, { env: { SSHCA_PUBLIC_RATE_LIMIT_PER_MINUTE: '6', SSHCA_RATE_LIMIT_PER_MINUTE: '0' } });
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await fetch(`${dev.url}/v1/krl`)).status);
  t.same(statuses, [200, 200, 200, 200, 200, 429, 429]);
  t.equal((await fetch(`${dev.url}/healthz`)).status, 200, 'health checks are never limited');
  // 0 switches the token-route limit off.
  for (let i = 0; i < 8; i++) t.equal((await requestCertificate(dev, { publicKey, reason: `r${i}` })).status, 201);
});

t.test('summaries stay bounded and lose nothing when a write fails', async (t) => {
  const written: RefusalSummaryRecord[] = [];
  let fail = true;
  const errors: unknown[] = [];
  const aggregator = new RefusalAggregator({
    audit: {
      recordRefusalSummary: async (r) => {
        if (fail) throw new Error('store down');
        written.push(r);
      },
    },
    clock: { now: () => new Date() },
    onError: (err) => errors.push(err),
  });
  // 10 000 distinct /64s, two codes.
  for (let i = 0; i < 10_000; i++) aggregator.count(i % 2 ? 'AUTHN_MISSING' : 'REQUEST_INVALID', `2001:db8:${(i >> 8).toString(16)}:${(i & 0xff).toString(16)}::1`);
  await aggregator.flush();
  t.equal(errors.length, 1, 'the failed write is reported');
  t.equal(written.length, 0);
  fail = false;
  aggregator.count('AUTHN_MISSING', '192.0.2.7');
  await aggregator.flush();
  t.equal(written.length, 1);
  const summary = written[0]!;
  t.equal(summary.total, 10_001, 'counts from the failed write are carried into the next');
  t.equal(summary.counts.reduce((a, c) => a + c.count, 0), 10_001);
  t.ok(summary.counts.length <= MAX_SUMMARY_KEYS + 2, `at most ${MAX_SUMMARY_KEYS} networks plus one 'other' per code (${summary.counts.length})`);
  t.ok(summary.counts.some((c) => c.network === 'other'), 'the rest counted under other');
  await aggregator.flush();
  t.equal(written.length, 1, 'nothing counted: no record');
});

t.test('source networks', async (t) => {
  t.equal(sourceNetwork('198.51.100.23'), '198.51.100.0/24');
  t.equal(sourceNetwork('::ffff:198.51.100.23'), '198.51.100.0/24', 'IPv4-mapped IPv6 is IPv4');
  t.equal(sourceNetwork('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(sourceNetwork('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(sourceNetwork('::1'), '0:0:0:0::/64');
  t.equal(sourceNetwork('not an address'), 'unknown');
});

t.test('a forged token costs no durable write: the replay cache only holds signatures STS vouched for', async (t) => {
  const dev = await startDevServer(t);
  const body = JSON.stringify({ publicKey });
  for (let i = 0; i < 20; i++) {
    // Well-formed, fresh, for the allowlisted endpoint, signed with nothing anyone holds.
    const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const accessKey = `AKIA${randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`;
    const authorization = `AWS4-HMAC-SHA256 Credential=${accessKey}/${amzDate.slice(0, 8)}/us-east-1/sts/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date;x-sshca-audience;x-sshca-request, Signature=${randomBytes(32).toString('hex')}`;
    const token = encodeIdentityToken({ v: 1, endpoint: dev.endpoint, amzDate, authorization });
    t.equal((await postUserCert(dev, body, [['authorization', `SSHCA-AWS4 ${token}`]])).status, 401);
  }
  t.equal(await lastAnonymousRefusalCode(dev).then(() => auditRows(dev).at(-1)?.counts?.[0]?.count), 20, 'counted in one summary');
  const db = new Database(join(dev.dataDir, 'audit.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare('SELECT count(*) AS n FROM used_token_signatures').get() as { n: number }).n, 0, 'no replay-cache row for a forged token');
  // Control: a genuine token is remembered (and refused the second time).
  const genuine = await signToken(dev, body);
  t.equal((await postUserCert(dev, body, [['authorization', `SSHCA-AWS4 ${genuine}`]])).status, 201);
  t.equal((await postUserCert(dev, body, [['authorization', `SSHCA-AWS4 ${genuine}`]])).status, 401);
  t.equal((db.prepare('SELECT count(*) AS n FROM used_token_signatures').get() as { n: number }).n, 1);
  t.equal(await lastAnonymousRefusalCode(dev), 'AUTHN_REPLAY');
});

t.test("an anonymous refusal's detail is in the log (its specific code, source and request id), while the chain only counts it", async (t) => {
  const { spawnServer } = await import('../fixtures/server-process.js');
  const dataDir = join(t.testdir(), 'data');
  const server = await spawnServer(t, ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'kay'], { SSHCA_LOG_LEVEL: 'info' });
  t.ok(server.url, server.stderr());
  const body = JSON.stringify({ publicKey });
  const res = await fetch(`${server.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'SSHCA-AWS4 not-a-token' }, body });
  t.equal(res.status, 401);
  const { requestId } = (await res.json()) as { requestId: string };
  await server.logged('request refused');
  const line = server.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request refused');
  t.match(line, { reasonCode: 'AUTHN_TOKEN_MALFORMED', code: 'AUTHN_FAILED' }, 'the specific code is logged (the 401 body stays uniform)');
  t.equal(line?.sourceIp, '127.0.0.1', 'with the source address');
  t.equal(line?.reqId, requestId, 'and the request id the client saw');
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare("SELECT count(*) AS n FROM audit_records WHERE kind = 'refused'").get() as { n: number }).n, 0, 'no individual record on the chain');
});

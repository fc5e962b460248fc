// Rule 21: X-Forwarded-For is believed only from configured proxies. Behind
// a trusted relay the caller's own address reaches the audit record and the
// per-source rate limit (one bucket per engineer, not one for the whole
// load balancer); sent directly, a forged header changes nothing.
import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';
import { loadConfig } from '../../server/config.js';
import { signToken, startDevServer, type DevServer } from '../fixtures/dev-server.js';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { keygenList, needsOpenSsh } from '../fixtures/openssh.js';

const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
let n = 0;

/** Issues a certificate from `localAddress`, with an X-Forwarded-For header when given; the status. */
async function issue(dev: DevServer, localAddress: string, forwardedFor?: string): Promise<number> {
  return (await issueWithBody(dev, localAddress, forwardedFor)).status;
}

async function issueWithBody(dev: DevServer, localAddress: string, forwardedFor?: string): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ publicKey, reason: `proxy test ${n++}` });
  const token = await signToken(dev, body);
  const url = new URL('/v1/certs/user', dev.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname, localAddress, headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${token}`, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function recordedSources(dev: DevServer): string[] {
  const db = new Database(join(dev.dataDir, 'audit.db'), { readonly: true });
  try {
    return (db.prepare("SELECT json_extract(data, '$.sourceIp') AS ip FROM audit_records WHERE kind = 'issued' ORDER BY seq").all() as Array<{ ip: string }>).map((r) => r.ip);
  } finally {
    db.close();
  }
}

t.test('only a trusted proxy forwards the client address', async (t) => {
  const dev = await startDevServer(t, { env: { SSHCA_TRUSTED_PROXIES: '127.0.0.2/32', SSHCA_RATE_LIMIT_PER_MINUTE: '3' } });
  // Through the trusted relay: the client's address, the right-most untrusted one (a client-sent entry before it is ignored).
  t.equal(await issue(dev, '127.0.0.2', '198.51.100.66, 203.0.113.9'), 201);
  // Sent directly with a forged header: ignored.
  t.equal(await issue(dev, '127.0.0.1', '203.0.113.77'), 201);
  t.same(recordedSources(dev), ['203.0.113.9', '127.0.0.1'], 'the audit record names the real caller');

  // Rate limits follow the forwarded address: one engineer's burst does not stop another behind the same proxy.
  t.equal(await issue(dev, '127.0.0.2', '203.0.113.9'), 201);
  t.equal(await issue(dev, '127.0.0.2', '203.0.113.9'), 201);
  t.equal(await issue(dev, '127.0.0.2', '203.0.113.9'), 429, 'the fourth request from 203.0.113.9 in a minute');
  t.equal(await issue(dev, '127.0.0.2', '203.0.113.10'), 201, 'another client behind the same proxy is unaffected');
});

t.test("a source-address policy pins the certificate to the engineer behind the relay, never to the relay or a forged header", needsOpenSsh, async (t) => {
  // The dev policy with {{sourceIp}}, written before the first start (an existing policy is never overwritten).
  const dataDir = t.testdir({
    'policy.yaml': "accounts: ['000000000000']\nrules:\n  - name: pinned\n    match: { iamUser: 'arn:aws:iam::000000000000:user/alice' }\n    principals: ['{{user}}']\n    criticalOptions: { source-address: '{{sourceIp}}' }\n",
  });
  const dev = await startDevServer(t, { dataDir, env: { SSHCA_TRUSTED_PROXIES: '127.0.0.2/32' } });
  const sourceAddressOf = async (localAddress: string, forwardedFor: string) => {
    const r = await issueWithBody(dev, localAddress, forwardedFor);
    t.equal(r.status, 201, r.body);
    const file = join(dataDir, `cert-${n}.pub`);
    writeFileSync(file, `${(JSON.parse(r.body) as { certificate: string }).certificate}\n`);
    return keygenList(file).criticalOptions;
  };
  t.same(await sourceAddressOf('127.0.0.2', '203.0.113.9'), ['source-address 203.0.113.9/32'], 'through the trusted relay: the engineer\'s address');
  t.same(await sourceAddressOf('127.0.0.1', '203.0.113.77'), ['source-address 127.0.0.1/32'], 'sent directly: the forged header is ignored');
});

t.test('without the setting, forwarded headers are ignored', async (t) => {
  const dev = await startDevServer(t);
  t.equal(await issue(dev, '127.0.0.2', '203.0.113.9'), 201);
  t.same(recordedSources(dev), ['127.0.0.2']);
});

t.test('SSHCA_TRUSTED_PROXIES is validated', async (t) => {
  const load = (value: string) => loadConfig(['--dev'], { SSHCA_TRUSTED_PROXIES: value }, 'tester', '/tmp');
  t.same(load('10.0.0.0/16, 2001:db8::/32, 127.0.0.2').trustedProxies, ['10.0.0.0/16', '2001:db8::/32', '127.0.0.2']);
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/']) t.throws(() => load(bad), { code: 'CONFIG_INVALID' }, bad);
});

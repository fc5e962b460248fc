// Issue 10 item 8: a token names the server URL the user chose. A look-alike
// server that relays to the real one gets nothing it can use: the client
// refuses a server calling itself by another name, and a look-alike that
// lies about its name receives a token the real server refuses.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { devLoginEnv, errorCodeOf, runCli } from '../fixtures/cli.js';
import { auditRows, lastAnonymousRefusalCode, startDevServer, type DevServer } from '../fixtures/dev-server.js';

/** A relay on its own port forwarding everything to `dev`; `impersonate` rewrites /v1/ca's audience to the relay's URL. */
async function startRelay(t: Test, dev: DevServer, impersonate: boolean): Promise<{ url: string; posts: string[]; answers: number[] }> {
  const posts: string[] = [];
  const answers: number[] = [];
  let url = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        if (req.method !== 'GET') posts.push(req.url ?? '');
        const headers: Record<string, string> = {};
        for (const name of ['authorization', 'content-type', 'accept']) if (req.headers[name]) headers[name] = String(req.headers[name]);
        const upstream = await fetch(`${dev.url}${req.url}`, { method: req.method!, headers, ...(body.length ? { body } : {}) });
        let text = await upstream.text();
        if (impersonate && req.url === '/v1/ca') text = JSON.stringify({ ...(JSON.parse(text) as object), audience: url });
        if (req.method !== 'GET' || req.url?.startsWith('/v1/audit')) answers.push(upstream.status);
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' }).end(text);
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return { url, posts, answers };
}

t.test('a look-alike server cannot use a relayed token', async (t) => {
  const dev = await startDevServer(t);
  const home = join(t.testdir(), 'home');
  const env = devLoginEnv(dev.dataDir, home);
  const issued = () => auditRows(dev).filter((r) => r.kind === 'issued').length;

  const direct = await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev', '--no-agent'], env);
  t.equal(direct.code, 0, `control: the real server, by its own URL (${direct.stderr})`);
  t.equal(issued(), 1);

  // A transparent relay: the client notices the server's name is not the one it was given, and signs nothing.
  const relay = await startRelay(t, dev, false);
  const mismatch = await runCli(['login', '--server', relay.url, '--profile', 'sshca-dev', '--no-agent'], env);
  t.equal(mismatch.code, 3);
  t.equal(errorCodeOf(mismatch.stderr), 'CLIENT_AUDIENCE_MISMATCH');
  t.same(relay.posts, [], 'no token ever reached the relay');

  // A relay that lies about its name gets a token naming itself; the real server refuses it.
  const liar = await startRelay(t, dev, true);
  const relayed = await runCli(['login', '--server', liar.url, '--profile', 'sshca-dev', '--no-agent'], env);
  t.same(liar.posts, ['/v1/certs/user'], 'the look-alike received a token and relayed it');
  t.same(liar.answers, [401], 'the real server refused it');
  t.equal(errorCodeOf(relayed.stderr), 'AUTHN_FAILED');
  t.equal(issued(), 1, 'nothing issued through the relay');
  t.equal(await lastAnonymousRefusalCode(dev), 'AUTHN_STS_REJECTED', 'the signature names another audience: STS rejects the rebuilt request');

  // An auditor's token, relayed, does not hand over the audit record either.
  const audit = await runCli(['audit', 'list', '--server', liar.url, '--profile', 'sshca-dev'], env);
  t.not(audit.code, 0);
  t.same(liar.answers, [401, 401], 'the audit query was refused too');
});

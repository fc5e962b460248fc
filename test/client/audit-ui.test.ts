// `sshca audit ui` in a real headless browser (Debian's chromium): the page
// lists an issued and a revoked certificate where each belongs, the chart
// draws the hours with records, and the view answers only on loopback, only
// to its own Host, and only with the secret of the URL it printed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CLI, devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { decodePng } from '../fixtures/png.js';

const CHROMIUM = '/usr/bin/chromium';
/** Outside CI a machine without chromium skips; under CI=true it fails (scripts/setup.mjs installs it). */
const needsChromium = { skip: process.env.CI !== 'true' && !existsSync(CHROMIUM) ? 'chromium not installed (apt-get install chromium)' : false };

/** Runs headless chromium; asynchronously, since the dev server answering the view lives in this process. */
function chromium(dir: string, args: string[]): Promise<{ stdout: string; status: number | null }> {
  // --no-sandbox: tests run as root. The virtual time budget lets the page's fetches finish before the DOM is taken.
  const child = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${dir}`, '--virtual-time-budget=15000', '--window-size=1100,1400', '--hide-scrollbars', ...args], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 90_000 });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ stdout, status })));
}

/** A raw GET, with the Host header and secret a test chooses. */
function get(host: string, port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The table element with this id, as markup. */
const table = (dom: string, id: string) => [...dom.matchAll(/<table id="([^"]+)"[\s\S]*?<\/table>/g)].find((m) => m[1] === id)?.[0] ?? '';

t.test('the audit view: active and revoked certificates, the chart, loopback only', { skip: needsOpenSsh.skip || needsChromium.skip }, async (t) => {
  const dev = await startDevServer(t, { devUser: 'uma' });
  const dir = t.testdir();
  const env = devLoginEnv(dev.dataDir, join(dir, 'home'));
  const cli = (args: string[]) => runCli([...args, '--server', dev.url, '--profile', 'sshca-dev'], env);
  t.equal((await cli(['login', '--reason', 'first'])).code, 0);
  t.equal((await cli(['login', '--reason', 'second'])).code, 0);
  const issued = JSON.parse((await cli(['audit', 'list', '--kind', 'issued', '--json'])).stdout) as { records: Array<{ data: { serial: string; reason: string } }> };
  const serialOf = (reason: string) => issued.records.find((r) => r.data.reason === reason)!.data.serial;
  const [revoked, active] = [serialOf('first'), serialOf('second')];
  t.equal((await cli(['revoke', '--serial', revoked, '--reason', 'laptop lost'])).code, 0);

  const ui = spawn(process.execPath, [CLI, 'audit', 'ui', '--server', dev.url, '--profile', 'sshca-dev'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => ui.on('exit', resolve));
  t.teardown(() => ui.kill('SIGKILL'));
  let printed = '';
  const url = await new Promise<string>((resolve, reject) => {
    ui.stdout.on('data', (d: Buffer) => {
      printed += d.toString();
      const m = /^sshca audit ui: (http:\/\/\S+)$/m.exec(printed);
      if (m) resolve(m[1]!);
    });
    ui.on('exit', (code) => reject(new Error(`sshca audit ui exited ${code}`)));
  });
  const { hostname, port: portText, hash } = new URL(url);
  const port = Number(portText);
  const secret = hash.slice(1);
  t.equal(hostname, '127.0.0.1', 'the URL is on loopback');
  t.ok(secret.length >= 32, 'and holds a secret');

  // What a browser shows.
  const dom = await chromium(join(dir, 'chrome-dom'), ['--dump-dom', url]);
  t.equal(dom.status, 0);
  t.match(dom.stdout, /data-loaded="active chart records verify"/, 'every part of the page loaded');
  t.match(table(dom.stdout, 'active'), new RegExp(`data-serial="${active}"`), 'the active certificate is listed as active');
  t.notMatch(table(dom.stdout, 'active'), new RegExp(revoked), 'the revoked one is not');
  t.match(table(dom.stdout, 'records'), new RegExp(`data-kind="revoked" data-serial="${revoked}"`), 'the revocation is in the records');
  t.match(table(dom.stdout, 'records'), new RegExp(`data-kind="issued" data-serial="${active}"`), 'so is the issue');
  t.match(dom.stdout, /<p id="verify" class="ok">verified 3 records/, 'the chain verifies: two issued, one revoked');
  t.match(dom.stdout, /<canvas/, 'the chart drew on a canvas');

  const shot = join(dir, 'view.png');
  t.equal((await chromium(join(dir, 'chrome-shot'), [`--screenshot=${shot}`, url])).status, 0);
  const image = decodePng(readFileSync(shot));
  // The chart is the page's first section; the issued series is blue (#2166ac), its fill a light blue.
  const near = (p: number[], q: number[]) => p.every((v, i) => Math.abs(v - q[i]!) <= 24);
  let stroke = 0;
  let fill = 0;
  let ink = 0;
  for (let y = 60; y < 340; y++) {
    for (let x = 0; x < image.width; x++) {
      const p = image.pixel(x, y);
      if (near(p, [33, 102, 172])) stroke++;
      else if (near(p, [177, 200, 223])) fill++;
      if (p.some((v) => v < 200)) ink++;
    }
  }
  t.ok(ink > 2000, `the chart area is not empty (${ink} drawn pixels)`);
  t.ok(stroke > 40, `the issued series is drawn (${stroke} pixels)`);
  t.ok(fill > 40, `with an area above zero: the hour with certificates (${fill} pixels)`);

  // Who it answers.
  const api = (headers: Record<string, string>, path = '/api/active', method = 'GET') => get('127.0.0.1', port, path, { host: `127.0.0.1:${port}`, ...headers }, method);
  const ok = await api({ 'x-sshca-ui-token': secret });
  t.equal(ok.status, 200);
  t.match(ok.headers['content-security-policy'], /default-src 'none'; script-src 'self'/, 'a strict content security policy');
  t.same((await api({})).status, 401, 'no secret: refused');
  t.same(JSON.parse((await api({ 'x-sshca-ui-token': `${secret.slice(0, -1)}x` })).body).code, 'UI_SECRET_REQUIRED', 'a wrong secret: refused');
  const rebound = await api({ host: `attacker.example:${port}`, 'x-sshca-ui-token': secret });
  t.same([rebound.status, JSON.parse(rebound.body).code], [403, 'UI_HOST_REFUSED'], 'another Host (DNS rebinding): refused');
  t.equal((await api({ 'x-sshca-ui-token': secret }, '/api/active', 'POST')).status, 405, 'read-only');
  t.equal((await api({}, '/')).status, 200, 'the page itself is served without the secret (it holds no data)');
  const others = Object.values(networkInterfaces()).flat().filter((i) => i && !i.internal && i.family === 'IPv4').map((i) => i!.address);
  for (const address of others) {
    await t.rejects(get(address, port, '/', { host: `127.0.0.1:${port}` }), { code: 'ECONNREFUSED' }, `not listening on ${address}`);
  }
  // The kernel's own list of listening sockets: this port is bound to 127.0.0.1, not to any address.
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const listening = [readFileSync('/proc/net/tcp', 'utf8'), existsSync('/proc/net/tcp6') ? readFileSync('/proc/net/tcp6', 'utf8') : '']
    .join('\n').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A').map((f) => f[1]);
  t.same(listening, [`0100007F:${hexPort}`], 'the only listener on its port is 127.0.0.1');

  ui.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C stops the view cleanly');
});

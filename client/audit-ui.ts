// `sshca audit ui`: a read-only page on 127.0.0.1 for people who would
// rather look than read. The page talks only to this local server; this
// server asks sshca with signed GETs, each token signed by the auditor's own
// AWS credentials, exactly as `sshca audit list` does — the sshca server
// gains no new way in. What stands between other local software and the
// record: the listener is loopback only, a request must name this listener
// as its Host (a web page that rebinds its own name to 127.0.0.1 cannot),
// and every /api call must carry this run's secret, which only the URL
// printed here holds (in its fragment: never sent to a server, never logged).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { AUDIT_FILTERS, auditVerify, type VerifyOutcome } from './audit.js';
import { loadUiAssets, type UiAsset } from './audit-ui-assets.js';
import { timeFlag } from './audit-time.js';
import { ClientError, EXIT } from './client-error.js';
import { requireServer, resolveSettings } from './client-settings.js';
import type { CommandIo } from './cli-ssh.js';
import { openSignedSession, type SignedSession } from './signed-session.js';

/** The header the page sends the secret in. */
export const UI_TOKEN_HEADER = 'x-sshca-ui-token';

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};

/** What each /api path asks sshca, and which of the page's parameters it passes on. */
const PROXIED: Readonly<Record<string, { path: string; params: readonly string[] }>> = {
  active: { path: '/v1/audit/active', params: ['principal', 'caller'] },
  records: { path: '/v1/audit', params: [...AUDIT_FILTERS, 'limit', 'before'] },
  stats: { path: '/v1/audit/stats', params: ['since', 'until'] },
};

export interface AuditUi {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the view's server on 127.0.0.1:`port` (0: any free port). */
export async function startAuditUi(options: { server: string; profile?: string; port: number; now: () => Date }): Promise<AuditUi> {
  // Opened once (the CA info, the signer); every request still gets a token of its own.
  const session: SignedSession = await openSignedSession(options.server, options.profile);
  const assets = await loadUiAssets();
  const secret = randomBytes(24).toString('base64url');
  let verified: Promise<VerifyOutcome> | undefined;
  let port = 0;

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
  const refuse = (res: ServerResponse, status: number, code: string, message: string) => json(res, status, { code, message });

  const hasSecret = (req: IncomingMessage): boolean => {
    const given = Buffer.from(String(req.headers[UI_TOKEN_HEADER] ?? ''));
    const expected = Buffer.from(secret);
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  async function api(name: string, query: URLSearchParams): Promise<unknown> {
    if (name === 'info') return { server: options.server };
    if (name === 'verify') {
      // Verification fetches the whole record: run once, again only on demand.
      if (query.get('refresh') === '1' || !verified) verified = auditVerify({ server: options.server, ...(options.profile ? { profile: options.profile } : {}) });
      try {
        return await verified;
      } catch (err) {
        verified = undefined;
        throw err;
      }
    }
    if (name === 'anchors') {
      try {
        return JSON.parse(await session.api.signedGet('/v1/audit/anchors?limit=10', session.signer, session.endpoint));
      } catch (err) {
        if (err instanceof ClientError && err.code === 'REQUEST_NO_ANCHOR_STORE') return { location: null, anchors: [] };
        throw err;
      }
    }
    const route = PROXIED[name];
    if (!route) throw new ClientError('CLIENT_USAGE', `no such view: ${name}`);
    const forwarded = new URLSearchParams();
    for (const p of route.params) {
      const value = query.get(p);
      if (value === null || value === '') continue;
      // The page's since/until read like the command line's: 2h, 7d, a date.
      forwarded.set(p, (p === 'since' || p === 'until') && name === 'records' ? timeFlag(value, p, options.now()) : value);
    }
    const qs = forwarded.toString();
    return JSON.parse(await session.api.signedGet(`${route.path}${qs ? `?${qs}` : ''}`, session.signer, session.endpoint));
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // DNS rebinding: a page served from evil.example that resolves to 127.0.0.1 sends Host: evil.example.
    if (req.headers.host !== `127.0.0.1:${port}` && req.headers.host !== `localhost:${port}`) return refuse(res, 403, 'UI_HOST_REFUSED', 'this view answers only to http://127.0.0.1');
    if (req.method !== 'GET') return refuse(res, 405, 'UI_READ_ONLY', 'the audit view is read-only');
    if (url.pathname.startsWith('/api/')) {
      if (!hasSecret(req)) return refuse(res, 401, 'UI_SECRET_REQUIRED', 'open the URL sshca audit ui printed');
      api(url.pathname.slice('/api/'.length), url.searchParams).then(
        (value) => json(res, 200, value),
        (err: unknown) => (err instanceof ClientError ? refuse(res, err.code === 'CLIENT_USAGE' ? 400 : 502, err.code, err.message) : refuse(res, 500, 'INTERNAL_ERROR', String((err as Error).message))),
      );
      return;
    }
    const asset: UiAsset | undefined = assets.get(url.pathname === '/' ? '/index.html' : url.pathname);
    if (!asset) return refuse(res, 404, 'UI_NOT_FOUND', 'no such page');
    send(res, 200, asset.type, asset.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: options.port }, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/#${secret}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `sshca audit ui [--server URL] [--profile P] [--port N]`: runs until interrupted. */
export async function runAuditUi(args: readonly string[], io: CommandIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: [...args], options: { server: { type: 'string' }, profile: { type: 'string' }, port: { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', (err as Error).message);
  }
  if (values.port !== undefined && (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535)) throw new ClientError('CLIENT_USAGE', '--port must be 0–65535');
  const settings = resolveSettings({ ...(values.server ? { server: values.server } : {}), ...(values.profile ? { profile: values.profile } : {}) }, io.env);
  const ui = await startAuditUi({ server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}), port: Number(values.port ?? 0), now: io.now });
  io.stdout(`sshca audit ui: ${ui.url}\n`);
  io.stderr('open that URL in a browser on this machine (it holds this run\'s secret); Ctrl-C stops the view\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await ui.close();
  return EXIT.ok;
}

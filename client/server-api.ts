// The sshca HTTP API as the client uses it.
import { randomBytes } from 'node:crypto';
import type { CertificateResponse } from '../protocol/certificate-response.js';
import { ServerUrlError, canonicalServerUrl } from '../protocol/server-url.js';
import { ClientError } from './client-error.js';
import type { IdentityTokenSigner } from './identity-token-signer.js';

/** `GET /v1/ca` */
export interface CaInfo {
  readonly userCaKeys: readonly string[];
  readonly hostCaKeys: readonly string[];
  readonly audience: string;
  readonly stsEndpoints: readonly string[];
}

/** `POST /v1/certs/user` → 201 */
export type UserCertificateResponse = CertificateResponse;

export interface UserCertificateBody {
  readonly publicKey: string;
  readonly principals?: readonly string[];
  readonly ttlSeconds?: number;
  readonly reason?: string;
}

const USER_CERT_PATH = '/v1/certs/user';

/**
 * How far the clocks may differ before a refused sign-in is put down to the
 * clock: the server's window (server/identity/sts-authenticator.ts: 1 minute
 * ahead, 5 behind) less a few seconds for the Date header's resolution and
 * the request's own travel.
 */
const MAX_AHEAD_SECONDS = 60;
const MAX_BEHIND_SECONDS = 295;

/** On a terminal, a line says what the client waits for once an answer takes this long. */
const WAITING_NOTICE_MS = 1000;

/** A busy server (503 with Retry-After) is tried again this often at most, waiting what it asks, up to the cap. */
const BUSY_RETRIES = 2;
const BUSY_WAIT_CAP_SECONDS = 10;

/** Talks to one sshca server. */
export class ServerApi {
  /**
   * The server's canonical URL: where requests go, and the audience every
   * token names. It comes from what the user chose, never from the server's
   * answer, so a look-alike URL gets a token only the look-alike accepts.
   */
  readonly audience: string;

  constructor(
    server: string,
    private readonly timeoutMs = 15_000,
    /** Where "server busy, retrying" goes (stderr, unless --quiet). */
    private readonly notice: (line: string) => void = () => undefined,
    /** Where "waiting for …" goes after a second without an answer: only a terminal's stderr, never with --quiet. */
    private readonly waiting?: (line: string) => void,
  ) {
    try {
      // A path is refused, not dropped: sshca serves at the root of its
      // address, and a path the user typed would otherwise vanish unseen.
      this.audience = canonicalServerUrl(server);
    } catch (err) {
      if (err instanceof ServerUrlError) throw new ClientError('CLIENT_USAGE', `--server: ${err.message}${/: no path$/.test(err.message) ? ' (sshca answers at the root of its address: give just scheme://host[:port])' : ''}`);
      throw err;
    }
  }

  private get base(): string {
    return this.audience;
  }

  async caInfo(): Promise<CaInfo> {
    return (await this.call('GET', '/v1/ca')) as CaInfo;
  }

  /** Requests a user certificate, signing a token bound to this exact body. */
  async userCertificate(body: UserCertificateBody, signer: IdentityTokenSigner, endpoint: string): Promise<UserCertificateResponse> {
    return (await this.signedPost(USER_CERT_PATH, body, signer, endpoint)) as UserCertificateResponse;
  }

  /** POSTs JSON with a token bound to this exact body. */
  async signedPost(path: string, body: object, signer: IdentityTokenSigner, endpoint: string): Promise<unknown> {
    return this.whenBusyRetry(async () => {
      // A fresh nonce makes every token unique, even for the same request twice in one second
      // (and each retry a new token: the server may have spent the last one).
      const json = JSON.stringify({ ...body, nonce: randomBytes(12).toString('base64url') });
      const token = await signer.sign({ endpoint, audience: this.audience, method: 'POST', pathAndQuery: path, body: json });
      return this.call('POST', path, json, token);
    });
  }

  /** Runs `attempt` again when the server answers 503 with Retry-After, a bounded number of times, saying so. */
  private async whenBusyRetry<T>(attempt: () => Promise<T>): Promise<T> {
    for (let retry = 0; ; retry++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof ClientError) || err.retryAfterSeconds === undefined || retry >= BUSY_RETRIES) throw err;
        const wait = Math.min(err.retryAfterSeconds, BUSY_WAIT_CAP_SECONDS);
        this.notice(`sshca: server busy (${err.code}), retrying in ${wait} s (${retry + 1}/${BUSY_RETRIES})\n`);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
    }
  }

  /** GET with a token bound to the path and query (auditor and admin routes); returns the body text. */
  async signedGet(path: string, signer: IdentityTokenSigner, endpoint: string): Promise<string> {
    // As for POST bodies: a nonce keeps two identical GETs in one second from sharing a token.
    const pathAndQuery = `${path}${path.includes('?') ? '&' : '?'}nonce=${randomBytes(12).toString('base64url')}`;
    const token = await signer.sign({ endpoint, audience: this.audience, method: 'GET', pathAndQuery, body: '' });
    return (await this.call('GET', pathAndQuery, undefined, token, true)) as string;
  }

  /** GET without authentication, parsed as JSON. */
  async publicGet(path: string): Promise<unknown> {
    return this.call('GET', path);
  }

  /**
   * A public GET of raw bytes with `If-None-Match`: the files `sshca login`
   * keeps fresh (host CA list, KRL) are fetched again only when they changed.
   */
  async conditionalGet(path: string, etag: string | undefined): Promise<{ notModified: true } | { notModified: false; bytes: Buffer; etag: string | undefined }> {
    const response = await this.send('GET', path, { accept: '*/*', ...(etag ? { 'if-none-match': etag } : {}) });
    if (response.status === 304) return { notModified: true };
    if (!response.ok) throw this.refusal(response, await response.text());
    return { notModified: false, bytes: Buffer.from(await response.arrayBuffer()), etag: response.headers.get('etag') ?? undefined };
  }

  private async send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> {
    const slow = this.waiting ? setTimeout(() => this.waiting?.(`sshca: waiting for ${new URL(this.base).host}…\n`), WAITING_NOTICE_MS) : undefined;
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        throw new ClientError('CLIENT_SERVER_UNREACHABLE', `the sshca server at ${this.base} did not answer ${method} ${path.split('?')[0]} within ${Math.round(this.timeoutMs / 1000)} s: is it up, and is the address right?`, { cause: err });
      }
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (err as Error).message;
      // An https URL at a port that speaks plain HTTP: OpenSSL reads the HTTP answer as a TLS record.
      if (this.base.startsWith('https:') && /wrong version number|packet length too long|http request/i.test(cause?.message ?? '')) {
        throw new ClientError('CLIENT_NOT_HTTPS', `${this.base} answers plain HTTP, not HTTPS: check the port (or, for a server on this machine, use http://)`, { cause: err });
      }
      if (/CERT|SSL|TLS|EPROTO/i.test(`${cause?.code ?? ''} ${cause?.message ?? ''}`)) {
        throw new ClientError('CLIENT_TLS_ERROR', `TLS error talking to ${this.base}: ${cause?.message ?? detail} (a private CA? point NODE_EXTRA_CA_CERTS at it)`, { cause: err });
      }
      throw new ClientError('CLIENT_SERVER_UNREACHABLE', `cannot reach the sshca server at ${this.base} (${detail})`, { cause: err });
    } finally {
      clearTimeout(slow);
    }
  }

  private async call(method: string, path: string, body?: string, token?: string, rawText = false): Promise<unknown> {
    const response = await this.send(method, path, { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `SSHCA-AWS4 ${token}` } : {}) }, body);
    const text = await response.text();
    if (rawText && response.ok) return text;
    if (!response.ok) throw this.refusal(response, text);
    try {
      return JSON.parse(text);
    } catch {
      throw new ClientError('CLIENT_BAD_RESPONSE', `the server at ${this.base} answered ${response.status} with something that is not JSON`);
    }
  }

  /** The server's refusal as a ClientError with the server's code and request id. */
  private refusal(response: Response, text: string): ClientError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return new ClientError('CLIENT_BAD_RESPONSE', `the server at ${this.base} answered ${response.status} with something that is not JSON`);
    }
    const { code, message, requestId } = (parsed ?? {}) as { code?: string; message?: string; requestId?: unknown };
    const retryAfter = response.status === 503 ? Number(response.headers.get('retry-after') ?? '') : Number.NaN;
    const id = { ...(typeof requestId === 'string' ? { requestId } : {}), ...(Number.isInteger(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}) };
    // A 401 says nothing about why; a clock far from the server's is the one
    // cause we can see from here. The server accepts a token signed from 5
    // minutes before its clock to 1 minute after (Date has 1 s resolution).
    const serverTime = Date.parse(response.headers.get('date') ?? '');
    const skewSeconds = Number.isNaN(serverTime) ? 0 : Math.round((Date.now() - serverTime) / 1000);
    if (code === 'AUTHN_FAILED' && (skewSeconds > MAX_AHEAD_SECONDS || skewSeconds < -MAX_BEHIND_SECONDS)) {
      const amount = Math.abs(skewSeconds) >= 120 ? `${Math.round(Math.abs(skewSeconds) / 60)} minutes` : `${Math.abs(skewSeconds)} seconds`;
      return new ClientError('CLIENT_CLOCK_SKEW', `your clock is ${amount} ${skewSeconds > 0 ? 'ahead of' : 'behind'} the server's; the server accepts sign-ins from 1 minute ahead to 5 minutes behind. Fix the clock (NTP: e.g. sudo timedatectl set-ntp true) and retry`, id);
    }
    if (code === 'AUTHN_FAILED') {
      // The server says no more (rule 7); what the user can check from here is whether AWS takes the credentials.
      return new ClientError(code, `${typeof message === 'string' ? message : 'authentication failed'}: the server could not verify your AWS sign-in. If \`aws sts get-caller-identity\` fails too, AWS rejects these credentials (invalid or revoked keys); if it works, ask your sshca admin with the request id`, id);
    }
    return new ClientError(typeof code === 'string' ? code : 'CLIENT_BAD_RESPONSE', typeof message === 'string' ? message : `server answered ${response.status}`, id);
  }
}

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

/** Talks to one sshca server. */
export class ServerApi {
  /**
   * The server's canonical URL: where requests go, and the audience every
   * token names. It comes from what the user chose, never from the server's
   * answer, so a look-alike URL gets a token only the look-alike accepts.
   */
  readonly audience: string;

  constructor(server: string, private readonly timeoutMs = 15_000) {
    try {
      this.audience = canonicalServerUrl(server, { allowPath: true });
    } catch (err) {
      if (err instanceof ServerUrlError) throw new ClientError('CLIENT_USAGE', `--server: ${err.message}`);
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
    // A fresh nonce makes every token unique, even for the same request twice in one second.
    const json = JSON.stringify({ ...body, nonce: randomBytes(12).toString('base64url') });
    const token = await signer.sign({ endpoint, audience: this.audience, method: 'POST', pathAndQuery: path, body: json });
    return this.call('POST', path, json, token);
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
    try {
      return await fetch(`${this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (err as Error).message;
      if (/CERT|SSL|TLS|EPROTO/i.test(`${cause?.code ?? ''} ${cause?.message ?? ''}`)) {
        throw new ClientError('CLIENT_TLS_ERROR', `TLS error talking to ${this.base}: ${cause?.message ?? detail} (a private CA? point NODE_EXTRA_CA_CERTS at it)`, { cause: err });
      }
      throw new ClientError('CLIENT_SERVER_UNREACHABLE', `cannot reach the sshca server at ${this.base} (${detail})`, { cause: err });
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

  /** The server's refusal as a ClientError with the server's code. */
  private refusal(response: Response, text: string): ClientError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return new ClientError('CLIENT_BAD_RESPONSE', `the server at ${this.base} answered ${response.status} with something that is not JSON`);
    }
    const { code, message } = (parsed ?? {}) as { code?: string; message?: string };
    // A 401 says nothing about why; a clock far from the server's is the one cause we can see from here.
    const serverTime = Date.parse(response.headers.get('date') ?? '');
    const skewMinutes = Number.isNaN(serverTime) ? 0 : Math.round((Date.now() - serverTime) / 60_000);
    if (code === 'AUTHN_FAILED' && Math.abs(skewMinutes) >= 4) {
      return new ClientError('CLIENT_CLOCK_SKEW', `your clock is ${Math.abs(skewMinutes)} minutes ${skewMinutes > 0 ? 'ahead of' : 'behind'} the server's; sign-ins are valid for 5 minutes. Fix the clock (NTP) and retry`);
    }
    return new ClientError(typeof code === 'string' ? code : 'CLIENT_BAD_RESPONSE', typeof message === 'string' ? message : `server answered ${response.status}`);
  }
}

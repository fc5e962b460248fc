// An IMDSv2-only instance metadata endpoint: a session token from `PUT
// /latest/api/token` is required for every read, as on instances that
// require IMDSv2, and it serves what host certificates need (instance id,
// region, instance identity role credentials). Shared by the embedded
// default's /dev/imds and the IMDS test fixture, so the bootstrap meets one
// IMDS in dev and tests alike.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';

export const IMDS_TOKEN_PATH = '/latest/api/token';
export const IMDS_TOKEN_HEADER = 'x-aws-ec2-metadata-token';
export const IMDS_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
/** IMDS's bounds on a token's lifetime, in seconds. */
export const IMDS_MAX_TTL_SECONDS = 21_600;
export const IDENTITY_CREDENTIALS_PATH = '/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance';

/** The instance whose metadata is served. */
export interface ImdsInstance {
  readonly instanceId: string;
  readonly region: string;
  readonly account: string;
}

/** Instance identity role credentials, as IMDS hands them out. */
export interface ImdsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly lastUpdated: Date;
}

export interface ImdsRequest {
  readonly method: string;
  /** Path (and query) as received, prefix included. */
  readonly url: string;
  /** Lower-case names, as node and Fastify hand them over. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface ImdsResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface ImdsEndpointOptions {
  readonly instance: ImdsInstance;
  /** The identity role credentials to serve now; undefined: none (404, as before the instance has them). */
  readonly credentials: () => ImdsCredentials | undefined;
  readonly clock: Clock;
  /** Where the endpoint is mounted: '' for a server of its own, '/dev/imds' on the dev server. */
  readonly prefix?: string;
}

const TOKEN_NONCE_BYTES = 16;
const TOKEN_MAC_BYTES = 16;
const TOKEN_BYTES = TOKEN_NONCE_BYTES + 8 + TOKEN_MAC_BYTES;

/** IMDS's timestamps: ISO 8601 to the second. */
const imdsTime = (d: Date) => `${d.toISOString().slice(0, 19)}Z`;

const plain = (status: number, body: string, extra: Record<string, string> = {}): ImdsResponse => ({ status, headers: { 'content-type': 'text/plain', ...extra }, body });

/** Serves IMDSv2 for one instance; tokens are MACed with a key of its own, so nothing accumulates per token. */
export class ImdsEndpoint {
  readonly #key = randomBytes(32);
  readonly #prefix: string;

  constructor(private readonly options: ImdsEndpointOptions) {
    this.#prefix = (options.prefix ?? '').replace(/\/+$/, '');
  }

  /** Answers one request. */
  handle(req: ImdsRequest): ImdsResponse {
    const mark = req.url.indexOf('?');
    const full = mark < 0 ? req.url : req.url.slice(0, mark);
    if (!full.startsWith(`${this.#prefix}/`)) return plain(404, 'Not Found');
    const path = full.slice(this.#prefix.length);
    if (path === IMDS_TOKEN_PATH) {
      if (req.method !== 'PUT') return plain(405, 'Method Not Allowed', { allow: 'PUT' });
      return this.#issueToken(req);
    }
    if (req.method !== 'GET') return plain(405, 'Method Not Allowed', { allow: 'GET' });
    // IMDSv2 only: no valid session token, no metadata (IMDSv1 is off).
    if (!this.#tokenValid(req.headers[IMDS_TOKEN_HEADER])) return plain(401, 'Unauthorized');
    const value = this.#read(path);
    if (value === undefined) return plain(404, 'Not Found');
    return plain(200, value);
  }

  #issueToken(req: ImdsRequest): ImdsResponse {
    // IMDS refuses a token PUT that passed through a proxy: a forwarded
    // request is someone else asking on the instance's behalf.
    if (req.headers['x-forwarded-for'] !== undefined) return plain(403, 'Forbidden');
    const ttlHeader = req.headers[IMDS_TTL_HEADER];
    const ttl = typeof ttlHeader === 'string' && /^[0-9]{1,5}$/.test(ttlHeader) ? Number(ttlHeader) : NaN;
    if (!(ttl >= 1 && ttl <= IMDS_MAX_TTL_SECONDS)) return plain(400, 'Bad Request');
    const expires = Buffer.alloc(8);
    expires.writeBigUInt64BE(BigInt(this.options.clock.now().getTime() + ttl * 1000));
    const payload = Buffer.concat([randomBytes(TOKEN_NONCE_BYTES), expires]);
    const token = Buffer.concat([payload, this.#mac(payload)]).toString('base64url');
    return plain(200, token, { [IMDS_TTL_HEADER]: String(ttl) });
  }

  #mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(payload).digest().subarray(0, TOKEN_MAC_BYTES);
  }

  #tokenValid(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(header)) return false;
    const raw = Buffer.from(header, 'base64url');
    if (raw.length !== TOKEN_BYTES) return false;
    const payload = raw.subarray(0, TOKEN_NONCE_BYTES + 8);
    if (!timingSafeEqual(raw.subarray(TOKEN_NONCE_BYTES + 8), this.#mac(payload))) return false;
    return Number(payload.readBigUInt64BE(TOKEN_NONCE_BYTES)) > this.options.clock.now().getTime();
  }

  /** The value at `path`: a leaf's text, or a directory's listing (sub-directories with a trailing '/'). */
  #read(path: string): string | undefined {
    const { instance } = this.options;
    const leaves: Record<string, () => string | undefined> = {
      '/latest/meta-data/instance-id': () => instance.instanceId,
      '/latest/meta-data/placement/region': () => instance.region,
      '/latest/meta-data/identity-credentials/ec2/info': () => {
        const c = this.options.credentials();
        return c && JSON.stringify({ Code: 'Success', LastUpdated: imdsTime(c.lastUpdated), AccountId: instance.account }, null, 2);
      },
      [IDENTITY_CREDENTIALS_PATH]: () => {
        const c = this.options.credentials();
        return (
          c &&
          JSON.stringify(
            { Code: 'Success', LastUpdated: imdsTime(c.lastUpdated), Type: 'AWS-HMAC', AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken, Expiration: imdsTime(c.expiration) },
            null,
            2,
          )
        );
      },
    };
    const leaf = Object.hasOwn(leaves, path) ? leaves[path]!() : undefined;
    if (leaf !== undefined) return leaf;
    // A directory lists what lies below it, as IMDS does.
    const dir = path.endsWith('/') ? path : `${path}/`;
    const below = new Set<string>();
    for (const [p, read] of Object.entries(leaves)) {
      if (!p.startsWith(dir) || read() === undefined) continue;
      const rest = p.slice(dir.length);
      const slash = rest.indexOf('/');
      below.add(slash < 0 ? rest : rest.slice(0, slash + 1));
    }
    return below.size === 0 ? undefined : [...below].sort().join('\n');
  }
}

// The SSHCA-AWS4 identity token (DESIGN.md §2): a presigned STS
// GetCallerIdentity request, reduced to the parts the server cannot rebuild
// itself. Client encodes, server decodes; both use the constants here so the
// signed request is the same bytes on both sides.
import { createHash } from 'node:crypto';
import { StrictJsonError, isPlainObject, parseJsonStrict } from './strict-json.js';

export const TOKEN_SCHEME = 'SSHCA-AWS4';
/** Largest encoded token accepted (SSO session tokens are ~1–3 KiB). */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export const STS_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
export const STS_CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';
export const STS_ACCEPT = 'application/json';
export const AUDIENCE_HEADER = 'x-sshca-audience';
export const REQUEST_HEADER = 'x-sshca-request';

/** Headers a token's signature must cover (rule 4). */
export const REQUIRED_SIGNED_HEADERS: readonly string[] = ['host', 'x-amz-date', AUDIENCE_HEADER, REQUEST_HEADER];
/** Every header a token's signature may cover; anything else is refused (rule 4). */
export const ALLOWED_SIGNED_HEADERS: readonly string[] = [
  ...REQUIRED_SIGNED_HEADERS,
  'content-type',
  'accept',
  'x-amz-content-sha256',
  'x-amz-security-token',
];

/** The decoded token. */
export interface IdentityToken {
  readonly v: 1;
  readonly endpoint: string;
  readonly amzDate: string;
  readonly authorization: string;
  readonly securityToken?: string;
}

/** Why a token could not be decoded; the server maps all of these to one 401. */
export class TokenFormatError extends Error {
  readonly code = 'TOKEN_MALFORMED';
  constructor(readonly reason: string) {
    super(`identity token malformed: ${reason}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Binds a token to one sshca HTTP request: method, path with query, and the
 * exact body bytes. A token captured for one public key cannot be spent on
 * another.
 */
export function requestBinding(method: string, pathAndQuery: string, body: Uint8Array | string): string {
  return sha256Hex(`${method.toUpperCase()}\n${pathAndQuery}\n${sha256Hex(body)}`);
}

export function encodeIdentityToken(token: IdentityToken): string {
  return Buffer.from(JSON.stringify(token), 'utf8').toString('base64url');
}

const FIELDS: Readonly<Record<string, 'string' | 'number'>> = {
  v: 'number',
  endpoint: 'string',
  amzDate: 'string',
  authorization: 'string',
  securityToken: 'string',
};

/** Strictly decodes the token from an Authorization header value. */
export function decodeIdentityToken(headerValue: string): IdentityToken {
  if (headerValue.length > MAX_TOKEN_LENGTH + TOKEN_SCHEME.length + 1) throw new TokenFormatError('too long');
  const prefix = `${TOKEN_SCHEME} `;
  if (!headerValue.startsWith(prefix)) throw new TokenFormatError('scheme');
  const encoded = headerValue.slice(prefix.length);
  // base64url without padding only: one spelling per token.
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw new TokenFormatError('encoding');
  let parsed: unknown;
  try {
    // Duplicate keys refused (rule 4): no two readings of one token.
    parsed = parseJsonStrict(Buffer.from(encoded, 'base64url').toString('utf8'));
  } catch (err) {
    if (err instanceof StrictJsonError) throw new TokenFormatError(err.message);
    throw err;
  }
  if (!isPlainObject(parsed)) throw new TokenFormatError('not an object');
  for (const [name, value] of Object.entries(parsed)) {
    const kind = FIELDS[name];
    if (kind === undefined) throw new TokenFormatError(`unknown field ${name}`);
    if (typeof value !== kind) throw new TokenFormatError(`field ${name} type`);
  }
  const get = (name: string): unknown => parsed[name];
  if (get('v') !== 1) throw new TokenFormatError('version');
  for (const name of ['endpoint', 'amzDate', 'authorization']) {
    if (typeof get(name) !== 'string' || (get(name) as string).length === 0) throw new TokenFormatError(`missing ${name}`);
  }
  const securityToken = get('securityToken') as string | undefined;
  if (securityToken !== undefined && securityToken.length === 0) throw new TokenFormatError('empty securityToken');
  return {
    v: 1,
    endpoint: get('endpoint') as string,
    amzDate: get('amzDate') as string,
    authorization: get('authorization') as string,
    ...(securityToken !== undefined ? { securityToken } : {}),
  };
}

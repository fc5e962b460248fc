// AWS Signature Version 4: strict parsing of the Authorization value, and the
// canonical request and signature computation. The authenticator uses the
// parser to check a token before any network call; the embedded STS (and test
// fixtures) use the computation to verify requests for real, so it is held to
// AWS's own test suite (test/server/dev/sigv4-test-suite.test.ts).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

/** The parts of `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`. */
export interface SigV4Authorization {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

/** The Authorization value is not exactly the SigV4 form. */
export class SigV4FormatError extends Error {
  readonly code = 'SIGV4_MALFORMED';
  constructor(readonly reason: string) {
    super(`SigV4 authorization malformed: ${reason}`);
  }
}

// One spelling only (the AWS SDK's): exact algorithm, ", " separators, lowercase
// header names, lowercase hex. Anything looser is a second parser's chance to disagree.
// The key id's length is left to the callers: AWS's own test suite signs as
// the 11-character AKIDEXAMPLE, and the authenticator holds tokens to the real
// AKIA|ASIA + 16 form itself (rule 3).
const AUTHORIZATION =
  /^([A-Za-z0-9-]+) Credential=([A-Za-z0-9]{1,128})\/([0-9]{8})\/([a-z0-9-]{1,32})\/([a-z0-9-]{1,32})\/aws4_request, SignedHeaders=([^,\s]{1,1024}), Signature=([0-9a-f]{64})$/;

export function parseSigV4Authorization(value: string): SigV4Authorization {
  if (value.length > 4096) throw new SigV4FormatError('too long');
  const m = AUTHORIZATION.exec(value);
  if (!m) throw new SigV4FormatError('shape');
  const [, algorithm, accessKeyId, date, region, service, headerList, signature] = m as unknown as string[];
  // Rule 3: exactly AWS4-HMAC-SHA256 (no SigV4A, no case variants).
  if (algorithm !== SIGV4_ALGORITHM) throw new SigV4FormatError('algorithm');
  const signedHeaders = headerList!.split(';');
  for (const h of signedHeaders) {
    if (!/^[a-z0-9-]+$/.test(h)) throw new SigV4FormatError('signed header name');
  }
  return { accessKeyId: accessKeyId!, date: date!, region: region!, service: service!, signedHeaders, signature: signature! };
}

/** Everything a SigV4 signature covers, as received (canonicalised here). */
export interface SigV4Input {
  readonly method: string;
  /** The path as received, before any decoding (text, encoded as UTF-8). */
  readonly path: string;
  /** The query as received, without the '?'; '' for none. */
  readonly query: string;
  /** Lowercase name → every value received under it, in arrival order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly signedHeaders: readonly string[];
  readonly payloadHash: string;
  readonly amzDate: string;
  readonly region: string;
  readonly service: string;
}

// SigV4's UriEncode: only the RFC 3986 unreserved bytes stay literal, every
// other byte is %XX with uppercase hex (encodeURIComponent leaves !'()* alone,
// so it would disagree with AWS on those).
function uriEncode(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /^[A-Za-z0-9\-._~]$/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The canonical URI of a non-S3 service: dot segments resolved, empty
 * segments dropped, each remaining segment UriEncoded as received. Nothing is
 * decoded first, so a path sent as `%20` signs as `%2520` — that double
 * encoding is what AWS and its SDKs do for every service but S3.
 */
export function canonicalUri(path: string): string {
  if (!path.startsWith('/')) throw new SigV4FormatError('path not absolute');
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  // The SDKs keep a trailing slash only when the path as sent ended in one.
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `/${segments.map((s) => uriEncode(Buffer.from(s, 'utf8'))).join('/')}${trailing}`;
}

// Percent-escapes to bytes, everything else as UTF-8. A stray '%' is refused
// rather than guessed at: two readings of one query are two signatures.
function percentDecode(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const [token] of text.matchAll(/%[0-9A-Fa-f]{2}|%|[^%]+/g)) {
    if (token === '%') throw new SigV4FormatError('query encoding');
    parts.push(token.startsWith('%') ? Buffer.of(parseInt(token.slice(1), 16)) : Buffer.from(token, 'utf8'));
  }
  return Buffer.concat(parts);
}

/**
 * The canonical query string: each name and value decoded once and
 * re-encoded with UriEncode, pairs sorted by name then value, a missing
 * value signed as empty. `+` is a literal plus (%2B), as the SDKs send it.
 */
export function canonicalQueryString(query: string): string {
  const pairs = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const [name, value] = eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
      return [uriEncode(percentDecode(name)), uriEncode(percentDecode(value))] as const;
    });
  // Encoded text is ASCII, so code-unit order is the byte order AWS sorts by.
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

// ASCII whitespace, as AWS's C signer counts it; Unicode spaces are data.
const SPACE_RUN = /[\t\n\v\f\r ]+/g;
const EDGE_SPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;

/**
 * One header's canonical value: each received value trimmed and its inner
 * whitespace runs (folded lines included) collapsed to one space, then the
 * values joined with ',' in arrival order — not Node's ', ', which would sign
 * different bytes than the client did.
 */
export function canonicalHeaderValue(values: readonly string[]): string {
  return values.map((v) => v.replace(EDGE_SPACE, '').replace(SPACE_RUN, ' ')).join(',');
}

/** The canonical request SigV4 hashes, exactly as AWS builds it. */
export function sigV4CanonicalRequest(input: SigV4Input): string {
  const canonicalHeaders = input.signedHeaders
    .map((name) => {
      const values = input.headers.get(name);
      if (values === undefined || values.length === 0) throw new SigV4FormatError(`signed header ${name} missing`);
      return `${name}:${canonicalHeaderValue(values)}\n`;
    })
    .join('');
  return [
    input.method,
    canonicalUri(input.path),
    canonicalQueryString(input.query),
    canonicalHeaders,
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Computes the hex SigV4 signature for `input` with `secretAccessKey`. */
export function sigV4Signature(input: SigV4Input, secretAccessKey: string): string {
  const canonicalRequest = sigV4CanonicalRequest(input);
  const date = input.amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = [SIGV4_ALGORITHM, input.amzDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, date);
  for (const part of [input.region, input.service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, stringToSign).toString('hex');
}

/** Constant-time comparison of two hex signatures. */
export function signaturesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses `YYYYMMDDTHHMMSSZ` strictly; undefined when it is not a real instant. */
export function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 20261332 over into next year; refuse instead.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== s) return undefined;
  return date;
}

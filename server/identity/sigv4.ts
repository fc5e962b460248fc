// AWS Signature Version 4: strict parsing of the Authorization value and the
// signature computation. The authenticator uses the parser to check a token
// before any network call; the embedded STS (and test fixtures) use the
// computation to verify requests for real.
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
const AUTHORIZATION =
  /^([A-Za-z0-9-]+) Credential=([A-Za-z0-9]{16,128})\/([0-9]{8})\/([a-z0-9-]{1,32})\/([a-z0-9-]{1,32})\/aws4_request, SignedHeaders=([^,\s]{1,1024}), Signature=([0-9a-f]{64})$/;

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

/** Everything a SigV4 signature covers. */
export interface SigV4Input {
  readonly method: string;
  /** The path as sent; must need no percent-encoding (STS paths never do). */
  readonly path: string;
  /** Canonical query string (already sorted and encoded); '' for none. */
  readonly query: string;
  /** Lowercase name → value, for every name in signedHeaders. */
  readonly headers: Readonly<Record<string, string>>;
  readonly signedHeaders: readonly string[];
  readonly payloadHash: string;
  readonly amzDate: string;
  readonly region: string;
  readonly service: string;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Computes the hex SigV4 signature for `input` with `secretAccessKey`. */
export function sigV4Signature(input: SigV4Input, secretAccessKey: string): string {
  if (!/^\/[A-Za-z0-9/._~-]*$/.test(input.path)) throw new SigV4FormatError('path needs encoding');
  const canonicalHeaders = input.signedHeaders
    .map((name) => {
      const value = input.headers[name];
      if (value === undefined) throw new SigV4FormatError(`signed header ${name} missing`);
      return `${name}:${value.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalRequest = [
    input.method,
    input.path,
    input.query,
    canonicalHeaders,
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
  const date = input.amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = [SIGV4_ALGORITHM, input.amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
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

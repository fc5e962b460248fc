// Verifies an incoming AWS request's SigV4 signature the way AWS does:
// over what was received, within AWS's time window, with the session token
// temporary credentials need. Shared by the embedded /dev/sts and the test
// fixtures (STS, KMS) so they all refuse exactly what AWS would.
import { sha256Hex } from '../../protocol/identity-token.js';
import { SigV4FormatError, parseAmzDate, parseSigV4Authorization, sigV4Signature, signaturesEqual } from '../identity/sigv4.js';

/** A credential the endpoint knows. */
export interface SigV4Credential {
  readonly secretAccessKey: string;
  /** Temporary credentials: the session token that must accompany them. */
  readonly sessionToken?: string;
}

/** What arrived, as received. */
export interface ReceivedRequest {
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export type SigV4Verdict =
  | { readonly ok: true; readonly accessKeyId: string }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

/** AWS accepts a signature for 15 minutes either side of its clock. */
const AWS_SIGNATURE_WINDOW_MS = 15 * 60_000;

function header(req: ReceivedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

const refuse = (status: number, code: string, message: string): SigV4Verdict => ({ ok: false, status, code, message });

export function verifySigV4Request(req: ReceivedRequest, options: { now: Date; region: string; service: string; lookup: (accessKeyId: string) => SigV4Credential | undefined }): SigV4Verdict {
  const authorization = header(req, 'authorization');
  if (!authorization) return refuse(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  let auth;
  try {
    auth = parseSigV4Authorization(authorization);
  } catch (err) {
    if (err instanceof SigV4FormatError) return refuse(400, 'IncompleteSignature', err.message);
    throw err;
  }
  const credential = options.lookup(auth.accessKeyId);
  if (!credential) return refuse(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
  if (credential.sessionToken !== undefined && header(req, 'x-amz-security-token') !== credential.sessionToken) {
    return refuse(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
  }
  const amzDate = header(req, 'x-amz-date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (!signedAt || Math.abs(signedAt.getTime() - options.now.getTime()) > AWS_SIGNATURE_WINDOW_MS) {
    return refuse(403, 'SignatureDoesNotMatch', 'Signature expired or x-amz-date invalid');
  }
  if (auth.date !== amzDate.slice(0, 8) || auth.region !== options.region || auth.service !== options.service || !auth.signedHeaders.includes('host')) {
    return refuse(403, 'SignatureDoesNotMatch', 'Credential scope or signed headers invalid');
  }
  const payloadHash = sha256Hex(req.body);
  const declared = header(req, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== payloadHash) return refuse(400, 'XAmzContentSHA256Mismatch', 'content hash mismatch');
  const [path, query] = req.url.split('?', 2) as [string, string | undefined];
  if (query !== undefined) return refuse(400, 'InvalidParameterCombination', 'query strings are not supported here');
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const v = header(req, name);
    if (v === undefined) return refuse(403, 'SignatureDoesNotMatch', `signed header ${name} missing`);
    headers[name] = v;
  }
  let expected: string;
  try {
    expected = sigV4Signature({ method: req.method, path, query: '', headers, signedHeaders: auth.signedHeaders, payloadHash, amzDate, region: auth.region, service: options.service }, credential.secretAccessKey);
  } catch (err) {
    if (err instanceof SigV4FormatError) return refuse(403, 'SignatureDoesNotMatch', err.message);
    throw err;
  }
  if (!signaturesEqual(expected, auth.signature)) return refuse(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  return { ok: true, accessKeyId: auth.accessKeyId };
}

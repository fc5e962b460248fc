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
  /**
   * Node's `rawHeaders` (name, value, name, value, …). When present it is
   * what the verifier reads: `headers` has already joined repeated names
   * with ', ' (or dropped repeats), and AWS signs them joined with ','.
   */
  readonly rawHeaders?: readonly string[];
  readonly body: Buffer;
}

export type SigV4Verdict =
  | { readonly ok: true; readonly accessKeyId: string }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

/** AWS accepts a signature for 15 minutes either side of its clock. */
const AWS_SIGNATURE_WINDOW_MS = 15 * 60_000;

/** Lowercase name → every value received under it, in arrival order. */
function receivedHeaders(req: ReceivedRequest): Map<string, string[]> {
  // A Map, not an object: signed header names are the client's, and
  // `constructor` must not find Object.prototype's.
  const map = new Map<string, string[]>();
  const add = (name: string, value: string) => {
    const key = name.toLowerCase();
    const values = map.get(key);
    if (values) values.push(value);
    else map.set(key, [value]);
  };
  if (req.rawHeaders) {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) add(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  } else {
    for (const [name, v] of Object.entries(req.headers)) {
      for (const value of v === undefined ? [] : Array.isArray(v) ? v : [v]) add(name, value);
    }
  }
  return map;
}

const refuse = (status: number, code: string, message: string): SigV4Verdict => ({ ok: false, status, code, message });

/** How `verifySigV4Request` judges a request. */
export interface SigV4VerifyOptions {
  readonly now: Date;
  readonly region: string;
  readonly service: string;
  readonly lookup: (accessKeyId: string) => SigV4Credential | undefined;
  /**
   * Sign query strings in (AWS's test suite needs them). Off for the live
   * endpoints: nothing they serve takes one, and refusing leaves no second
   * place for parameters to hide beside the body.
   */
  readonly acceptQuery?: boolean;
}

/** Checks `req`'s SigV4 signature, scope and freshness; the verdict carries AWS's error code. */
export function verifySigV4Request(req: ReceivedRequest, options: SigV4VerifyOptions): SigV4Verdict {
  const received = receivedHeaders(req);
  // A repeated name is signed as its values joined with ','; a repeated
  // Authorization or X-Amz-Date therefore fails to parse, as it should.
  const header = (name: string) => received.get(name)?.join(',');
  const authorization = header('authorization');
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
  if (credential.sessionToken !== undefined && header('x-amz-security-token') !== credential.sessionToken) {
    return refuse(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.');
  }
  const amzDate = header('x-amz-date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (!signedAt || Math.abs(signedAt.getTime() - options.now.getTime()) > AWS_SIGNATURE_WINDOW_MS) {
    return refuse(403, 'SignatureDoesNotMatch', 'Signature expired or x-amz-date invalid');
  }
  if (auth.date !== amzDate.slice(0, 8) || auth.region !== options.region || auth.service !== options.service || !auth.signedHeaders.includes('host')) {
    return refuse(403, 'SignatureDoesNotMatch', 'Credential scope or signed headers invalid');
  }
  const payloadHash = sha256Hex(req.body);
  const declared = header('x-amz-content-sha256');
  if (declared !== undefined && declared !== payloadHash) return refuse(400, 'XAmzContentSHA256Mismatch', 'content hash mismatch');
  // Everything after the first '?' is the query, further '?'s included.
  const mark = req.url.indexOf('?');
  const [path, query] = mark < 0 ? [req.url, undefined] : [req.url.slice(0, mark), req.url.slice(mark + 1)];
  if (query !== undefined && !options.acceptQuery) return refuse(400, 'InvalidParameterCombination', 'query strings are not supported here');
  for (const name of auth.signedHeaders) {
    if (!received.has(name)) return refuse(403, 'SignatureDoesNotMatch', `signed header ${name} missing`);
  }
  let expected: string;
  try {
    // The path is normalised (dot segments, repeated slashes) because AWS
    // does: a client signs the normalised form. The route was matched on the
    // path as it arrived, so normalising here widens nothing it serves.
    expected = sigV4Signature({ method: req.method, path, query: query ?? '', headers: received, signedHeaders: auth.signedHeaders, payloadHash, amzDate, region: auth.region, service: options.service }, credential.secretAccessKey);
  } catch (err) {
    if (err instanceof SigV4FormatError) return refuse(403, 'SignatureDoesNotMatch', err.message);
    throw err;
  }
  if (!signaturesEqual(expected, auth.signature)) return refuse(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  return { ok: true, accessKeyId: auth.accessKeyId };
}

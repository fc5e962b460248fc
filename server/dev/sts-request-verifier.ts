// Verifies an incoming GetCallerIdentity request the way STS does: SigV4
// signature over what was received, time window, session token, action.
// Used by the embedded default's /dev/sts and by the test STS fixture, so
// both refuse exactly what AWS would.
import { sha256Hex } from '../../protocol/identity-token.js';
import { SigV4FormatError, parseAmzDate, parseSigV4Authorization, sigV4Signature, signaturesEqual } from '../identity/sigv4.js';

/** A credential the STS endpoint knows. */
export interface StsCredential {
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

export type StsVerdict =
  | { readonly ok: true; readonly accessKeyId: string }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

/** AWS accepts a signature for 15 minutes either side of its clock. */
const AWS_SIGNATURE_WINDOW_MS = 15 * 60_000;

function header(req: ReceivedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

const refuse = (status: number, code: string, message: string): StsVerdict => ({ ok: false, status, code, message });

export function verifyStsRequest(req: ReceivedRequest, options: { now: Date; region: string; lookup: (accessKeyId: string) => StsCredential | undefined }): StsVerdict {
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
  if (auth.date !== amzDate.slice(0, 8) || auth.region !== options.region || auth.service !== 'sts' || !auth.signedHeaders.includes('host')) {
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
    expected = sigV4Signature({ method: req.method, path, query: '', headers, signedHeaders: auth.signedHeaders, payloadHash, amzDate, region: auth.region, service: 'sts' }, credential.secretAccessKey);
  } catch (err) {
    if (err instanceof SigV4FormatError) return refuse(403, 'SignatureDoesNotMatch', err.message);
    throw err;
  }
  if (!signaturesEqual(expected, auth.signature)) return refuse(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  const params = new URLSearchParams(req.body.toString('utf8'));
  if (req.method !== 'POST' || params.get('Action') !== 'GetCallerIdentity' || params.get('Version') !== '2011-06-15') {
    return refuse(400, 'InvalidAction', 'only GetCallerIdentity is served here');
  }
  return { ok: true, accessKeyId: auth.accessKeyId };
}

/** The JSON body STS sends for a successful GetCallerIdentity. */
export function callerIdentityJson(identity: { account: string; arn: string; userId: string }, requestId: string): object {
  return {
    GetCallerIdentityResponse: {
      GetCallerIdentityResult: { Account: identity.account, Arn: identity.arn, UserId: identity.userId },
      ResponseMetadata: { RequestId: requestId },
    },
  };
}

/** The JSON body STS sends for an error. */
export function stsErrorJson(code: string, message: string, requestId: string): object {
  return { Error: { Code: code, Message: message, Type: 'Sender' }, RequestId: requestId };
}

// Authenticates an sshca request from its SSHCA-AWS4 token: every check that
// needs no network first, then the STS request rebuilt by us and replayed.
import {
  ALLOWED_SIGNED_HEADERS,
  AUDIENCE_HEADER,
  REQUEST_HEADER,
  REQUIRED_SIGNED_HEADERS,
  STS_ACCEPT,
  STS_BODY,
  STS_CONTENT_TYPE,
  TokenFormatError,
  decodeIdentityToken,
  requestBinding,
  sha256Hex,
  type IdentityToken,
} from '../../protocol/identity-token.js';
import { isPlainObject, parseJsonStrict } from '../../protocol/strict-json.js';
import type { Clock } from '../clock.js';
import { AuthnError, UnavailableError } from '../errors.js';
import { parseCallerIdentity, type CallerIdentity, type IdentityRules } from './caller-identity.js';
import type { ReplayCache } from './replay-cache.js';
import { SigV4FormatError, parseAmzDate, parseSigV4Authorization, type SigV4Authorization } from './sigv4.js';
import type { StsEndpoint, StsEndpointAllowlist } from './sts-endpoints.js';
import type { StsResponse, StsTransport } from './sts-transport.js';

/** What the authenticator needs to know about the sshca request. */
export interface AuthenticationInput {
  /** Every Authorization header value received (more than one is refused). */
  readonly authorization: readonly string[];
  readonly method: string;
  readonly pathAndQuery: string;
  readonly body: Uint8Array;
}

/** Turns a request into a verified CallerIdentity or an AuthnError. */
export interface Authenticator {
  authenticate(input: AuthenticationInput): Promise<CallerIdentity>;
}

/** Rule 5: a token is fresh from 5 minutes before now to 1 minute after. */
export const MAX_TOKEN_AGE_MS = 5 * 60_000;
export const MAX_TOKEN_SKEW_MS = 60_000;

/** The production verifier (the embedded default runs the same code against /dev/sts). */
export class StsAuthenticator implements Authenticator {
  constructor(
    private readonly deps: {
      /** The server's canonical URL, read per request (dev mode learns its port after listening). */
      readonly audience: () => string;
      readonly endpoints: StsEndpointAllowlist;
      /** GetCallerIdentity succeeds for every AWS account on earth: only these count. */
      readonly accounts: { has(accountId: string): boolean };
      readonly identityRules: IdentityRules;
      readonly replayCache: ReplayCache;
      readonly transport: StsTransport;
      readonly clock: Clock;
    },
  ) {}

  async authenticate(input: AuthenticationInput): Promise<CallerIdentity> {
    if (input.authorization.length !== 1) {
      throw new AuthnError(input.authorization.length === 0 ? 'AUTHN_MISSING' : 'AUTHN_DUPLICATE_HEADER', 'exactly one Authorization header is required');
    }
    let token: IdentityToken;
    try {
      token = decodeIdentityToken(input.authorization[0]!);
    } catch (err) {
      if (err instanceof TokenFormatError) throw new AuthnError('AUTHN_TOKEN_MALFORMED', err.message, { cause: err });
      throw err;
    }
    // Rule 2: the endpoint is matched as a string against our list; the URL
    // we send to comes from that list entry, never from the token.
    const endpoint = this.deps.endpoints.find(token.endpoint);
    if (!endpoint) throw new AuthnError('AUTHN_ENDPOINT_NOT_ALLOWED', 'token names an STS endpoint that is not allowlisted');
    const auth = this.checkAuthorization(token, endpoint);
    const signedAt = this.checkFreshness(token.amzDate);
    const response = await this.replay(this.rebuild(token, endpoint, auth, input));
    const identity = this.identityFrom(response, endpoint);
    // Rule 5: claimed only once STS has vouched for the signature, so a forged
    // token never costs a durable write (rule 16). The claim is one atomic
    // insert: of two concurrent uses of one token, exactly one wins.
    const fresh = await this.claim(auth.signature, signedAt);
    if (!fresh) throw new AuthnError('AUTHN_REPLAY', 'this token was already used');
    if (!this.deps.accounts.has(identity.accountId)) throw new AuthnError('AUTHN_ACCOUNT_NOT_ALLOWED', `account ${identity.accountId} is not allowlisted`);
    return identity;
  }

  /** Rules 3 and 4: algorithm, credential scope, key id form, signed headers. */
  private checkAuthorization(token: IdentityToken, endpoint: StsEndpoint): SigV4Authorization {
    let auth: SigV4Authorization;
    try {
      auth = parseSigV4Authorization(token.authorization);
    } catch (err) {
      if (err instanceof SigV4FormatError) throw new AuthnError('AUTHN_SIGNATURE_FORMAT', err.message, { cause: err });
      throw err;
    }
    if (auth.date !== token.amzDate.slice(0, 8) || auth.region !== endpoint.region || auth.service !== 'sts') {
      throw new AuthnError('AUTHN_CREDENTIAL_SCOPE', 'credential scope does not match date, endpoint region or service');
    }
    if (!/^(AKIA|ASIA)[A-Z0-9]{16}$/.test(auth.accessKeyId)) throw new AuthnError('AUTHN_ACCESS_KEY', 'access key id has an unexpected form');
    // Temporary (ASIA) credentials are useless without their session token;
    // an ASIA key without one is a confused or forged token.
    if (auth.accessKeyId.startsWith('ASIA') && token.securityToken === undefined) {
      throw new AuthnError('AUTHN_SECURITY_TOKEN', 'temporary credentials need a security token');
    }
    // Session tokens are base64. Anything else (CR/LF above all) would become
    // a header we send to STS: refuse it here as the 401 it is.
    if (token.securityToken !== undefined && !/^[A-Za-z0-9+/=]{1,8192}$/.test(token.securityToken)) {
      throw new AuthnError('AUTHN_SECURITY_TOKEN', 'security token is not base64');
    }
    const seen = new Set<string>();
    for (const name of auth.signedHeaders) {
      const lower = name.toLowerCase();
      if (seen.has(lower)) throw new AuthnError('AUTHN_SIGNED_HEADERS', 'duplicate signed header');
      seen.add(lower);
      if (!ALLOWED_SIGNED_HEADERS.includes(lower)) throw new AuthnError('AUTHN_SIGNED_HEADERS', `header ${lower} may not be signed`);
    }
    for (const name of REQUIRED_SIGNED_HEADERS) {
      if (!seen.has(name)) throw new AuthnError('AUTHN_SIGNED_HEADERS', `header ${name} must be signed`);
    }
    if (token.securityToken !== undefined && !seen.has('x-amz-security-token')) {
      throw new AuthnError('AUTHN_SIGNED_HEADERS', 'the security token must be signed');
    }
    return auth;
  }

  /** Rule 5: now − 5 min ≤ amzDate ≤ now + 1 min. */
  private checkFreshness(amzDate: string): Date {
    const signedAt = parseAmzDate(amzDate);
    if (!signedAt) throw new AuthnError('AUTHN_DATE_FORMAT', 'x-amz-date is not YYYYMMDDTHHMMSSZ');
    const now = this.deps.clock.now().getTime();
    if (signedAt.getTime() < now - MAX_TOKEN_AGE_MS || signedAt.getTime() > now + MAX_TOKEN_SKEW_MS) {
      throw new AuthnError('AUTHN_STALE', 'token is outside the freshness window');
    }
    return signedAt;
  }

  private async claim(signature: string, signedAt: Date): Promise<boolean> {
    const expiresAt = new Date(signedAt.getTime() + MAX_TOKEN_AGE_MS + MAX_TOKEN_SKEW_MS);
    try {
      return await this.deps.replayCache.claim(signature, expiresAt, this.deps.clock.now());
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_STORE', 'the replay cache is unavailable', { cause });
    }
  }

  /**
   * Rule 1: the request to STS is built here. Host, body, content type and
   * the two sshca headers come from our config and the request we received,
   * so a signature only verifies if the client signed exactly this request
   * for exactly this server.
   */
  private rebuild(token: IdentityToken, endpoint: StsEndpoint, auth: SigV4Authorization, input: AuthenticationInput) {
    const headers: Record<string, string> = {
      host: new URL(endpoint.url).host,
      'content-type': STS_CONTENT_TYPE,
      accept: STS_ACCEPT,
      'x-amz-date': token.amzDate,
      [AUDIENCE_HEADER]: this.deps.audience(),
      [REQUEST_HEADER]: requestBinding(input.method, input.pathAndQuery, input.body),
      authorization: token.authorization,
    };
    if (token.securityToken !== undefined) headers['x-amz-security-token'] = token.securityToken;
    if (auth.signedHeaders.includes('x-amz-content-sha256')) headers['x-amz-content-sha256'] = sha256Hex(STS_BODY);
    return { url: endpoint.url, headers, body: STS_BODY };
  }

  private async replay(request: Parameters<StsTransport>[0]): Promise<StsResponse> {
    try {
      return await this.deps.transport(request);
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_STS', 'STS could not be reached', { cause, retryAfterSeconds: 5 });
    }
  }

  /** Rule 6: status 200, JSON, strict schema; throttling is ours to retry, not the caller's fault. */
  private identityFrom(response: StsResponse, endpoint: StsEndpoint): CallerIdentity {
    const json = response.contentType.split(';')[0]!.trim() === 'application/json' ? safeJson(response.body) : undefined;
    if (response.status !== 200) {
      const unavailable = stsUnavailableCode(response);
      if (unavailable === 'UNAVAILABLE_STS_THROTTLED') throw new UnavailableError(unavailable, 'STS is throttling; retry shortly', { retryAfterSeconds: 2 });
      if (unavailable) throw new UnavailableError(unavailable, `STS answered ${response.status}`, { retryAfterSeconds: 5 });
      throw new AuthnError('AUTHN_STS_REJECTED', `STS refused the signature (${response.status} ${errorCodeOf(json) ?? 'no code'})`);
    }
    const result = resultOf(json);
    if (!result) throw new AuthnError('AUTHN_STS_RESPONSE', 'STS answer does not match the expected schema');
    return parseCallerIdentity(result.Arn, result.Account, result.UserId, endpoint.partition, this.deps.identityRules);
  }
}

/**
 * Whether a non-200 STS answer is STS's trouble rather than the caller's:
 * throttling (UNAVAILABLE_STS_THROTTLED) or a 5xx (UNAVAILABLE_STS).
 * Shared with the metrics, so both count the same way.
 */
export function stsUnavailableCode(response: StsResponse): 'UNAVAILABLE_STS_THROTTLED' | 'UNAVAILABLE_STS' | undefined {
  if (response.status === 200) return undefined;
  const json = response.contentType.split(';')[0]!.trim() === 'application/json' ? safeJson(response.body) : undefined;
  const code = errorCodeOf(json);
  if (code === 'Throttling' || code === 'RequestLimitExceeded') return 'UNAVAILABLE_STS_THROTTLED';
  return response.status >= 500 ? 'UNAVAILABLE_STS' : undefined;
}

/** The answer as JSON, or undefined — duplicate keys included (a second `Arn` is a forged identity). */
function safeJson(body: Buffer): unknown {
  try {
    return parseJsonStrict(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function errorCodeOf(json: unknown): string | undefined {
  const code = isPlainObject(json) && isPlainObject(json.Error) ? json.Error.Code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** `{ GetCallerIdentityResponse: { GetCallerIdentityResult: { Account, Arn, UserId } } }`, exactly. */
function resultOf(json: unknown): { Account: string; Arn: string; UserId: string } | undefined {
  if (!isPlainObject(json) || Object.keys(json).length !== 1 || !isPlainObject(json.GetCallerIdentityResponse)) return undefined;
  const result = json.GetCallerIdentityResponse.GetCallerIdentityResult;
  if (!isPlainObject(result)) return undefined;
  const { Account, Arn, UserId } = result;
  if (Object.keys(result).length !== 3 || typeof Account !== 'string' || typeof Arn !== 'string' || typeof UserId !== 'string') return undefined;
  if (Arn.length > 2048 || UserId.length > 256) return undefined;
  return { Account, Arn, UserId };
}

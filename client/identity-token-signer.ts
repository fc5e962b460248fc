// Makes an SSHCA-AWS4 token with the AWS SDK: the real STS client builds and
// SigV4-signs GetCallerIdentity (so the whole credential chain, SSO and
// endpoint handling come from the SDK), and we capture the signed request
// instead of sending it.
import { GetCallerIdentityCommand, STSClient, type STSClientConfig } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import {
  ALLOWED_SIGNED_HEADERS,
  AUDIENCE_HEADER,
  REQUEST_HEADER,
  STS_ACCEPT,
  STS_BODY,
  STS_CONTENT_TYPE,
  encodeIdentityToken,
  requestBinding,
  type IdentityToken,
} from '../protocol/identity-token.js';
import { awsProfileNames } from './aws-profiles.js';
import { ClientError } from './client-error.js';
import { stsRegionOf } from './sts-endpoint-region.js';

/** What the token will be bound to. */
export interface TokenRequest {
  readonly endpoint: string;
  readonly audience: string;
  readonly method: string;
  readonly pathAndQuery: string;
  readonly body: string;
}

interface SignedParts {
  readonly url: string;
  readonly headers: Record<string, string>;
}

/** Thrown by our last middleware to stop the SDK from sending the request. */
class Captured extends Error {
  constructor(readonly parts: SignedParts) {
    super('captured');
  }
}

/** The region the SDK resolves for a profile (AWS_REGION, then the profile's `region`), if any. */
export async function profileRegion(profile: string | undefined): Promise<string | undefined> {
  const sts = new STSClient(profile ? { profile } : {});
  try {
    return await sts.config.region();
  } catch {
    return undefined;
  } finally {
    sts.destroy();
  }
}

/** Signs tokens with the AWS default credential chain (or given credentials). */
export class IdentityTokenSigner {
  constructor(private readonly options: { profile?: string; credentials?: STSClientConfig['credentials'] } = {}) {}

  /**
   * The credentials, resolved before anything is signed: credentials past
   * their own expiry (AWS would refuse them; the server's answer would be an
   * uninformative 401) are named here instead, with what to do.
   */
  private async freshCredentials(): Promise<NonNullable<STSClientConfig['credentials']>> {
    const source = this.options.credentials ?? fromNodeProviderChain(this.options.profile ? { profile: this.options.profile } : {});
    let resolved;
    try {
      resolved = typeof source === 'function' ? await source() : source;
    } catch (err) {
      throw credentialError(err, this.options.profile);
    }
    const expiration = (resolved as { expiration?: Date }).expiration;
    if (expiration !== undefined && expiration.getTime() <= Date.now()) {
      const p = this.options.profile ?? process.env.AWS_PROFILE;
      throw new ClientError('CLIENT_CREDENTIALS_EXPIRED', `your AWS credentials expired at ${expiration.toISOString()}: get new ones (aws sso login${p ? ` --profile ${p}` : ''}, or renew the keys you exported)`);
    }
    return resolved;
  }

  async sign(request: TokenRequest): Promise<string> {
    const credentials = await this.freshCredentials();
    const sts = new STSClient({
      region: stsRegionOf(request.endpoint),
      endpoint: request.endpoint,
      credentials,
      maxAttempts: 1,
    });
    // Before signing: exactly the header set DESIGN.md §2 names. The SDK also
    // adds user-agent, invocation-id and content-length headers, which the
    // server refuses to see signed (rule 4), so they go.
    sts.middlewareStack.addRelativeTo(
      (next: FinalizeHandler<object, MetadataBearer>) => async (args: FinalizeHandlerArguments<object>) => {
        const http = args.request as { headers: Record<string, string> };
        const host = http.headers.host;
        for (const name of Object.keys(http.headers)) delete http.headers[name];
        if (host !== undefined) http.headers.host = host;
        http.headers['content-type'] = STS_CONTENT_TYPE;
        http.headers.accept = STS_ACCEPT;
        http.headers[AUDIENCE_HEADER] = request.audience;
        http.headers[REQUEST_HEADER] = requestBinding(request.method, request.pathAndQuery, request.body);
        return next(args);
      },
      { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'sshcaTokenHeaders' },
    );
    sts.middlewareStack.addRelativeTo(
      () => async (args: FinalizeHandlerArguments<object>) => {
        const http = args.request as { protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string>; body: unknown };
        if (http.body !== STS_BODY) throw new ClientError('CLIENT_INTERNAL', 'the AWS SDK built an unexpected STS body');
        const port = http.port ? `:${http.port}` : '';
        throw new Captured({ url: `${http.protocol}//${http.hostname}${port}${http.path}`, headers: { ...http.headers } });
      },
      { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'sshcaTokenCapture' },
    );
    try {
      await sts.send(new GetCallerIdentityCommand({}));
    } catch (err) {
      if (err instanceof Captured) return encodeIdentityToken(tokenFrom(err.parts, request.endpoint));
      throw credentialError(err, this.options.profile);
    } finally {
      sts.destroy();
    }
    throw new ClientError('CLIENT_INTERNAL', 'the AWS SDK sent the request instead of letting us capture it');
  }
}

function tokenFrom(parts: SignedParts, endpoint: string): IdentityToken {
  // The server rebuilds the request for `endpoint`; if the SDK signed for a
  // different URL the token could never verify, so fail here with a clear error.
  if (parts.url !== endpoint) throw new ClientError('CLIENT_INTERNAL', `the AWS SDK signed for ${parts.url}, not ${endpoint}`);
  for (const name of Object.keys(parts.headers)) {
    if (name !== 'authorization' && !ALLOWED_SIGNED_HEADERS.includes(name)) throw new ClientError('CLIENT_INTERNAL', `unexpected signed header ${name}`);
  }
  const { authorization, 'x-amz-date': amzDate, 'x-amz-security-token': securityToken } = parts.headers;
  if (!authorization || !amzDate) throw new ClientError('CLIENT_INTERNAL', 'the AWS SDK did not sign the request');
  return { v: 1, endpoint, amzDate, authorization, ...(securityToken ? { securityToken } : {}) };
}

/** Plain words for the credential chain's failures, each with the next step. */
function credentialError(err: unknown, profile: string | undefined): ClientError {
  const e = err as { name?: string; message?: string };
  const message = e.message ?? String(err);
  const p = profile ?? process.env.AWS_PROFILE;
  if (/sso/i.test(message) && /expire|refresh|token/i.test(message)) {
    return new ClientError('CLIENT_CREDENTIALS_EXPIRED', `your AWS SSO session has expired: run aws sso login${p ? ` --profile ${p}` : ''}`, { cause: err });
  }
  if (p !== undefined) {
    const known = awsProfileNames(process.env);
    if (!known.includes(p)) {
      return new ClientError('CLIENT_PROFILE_NOT_FOUND', `there is no AWS profile named ${JSON.stringify(p)} ${known.length ? `(profiles found: ${known.join(', ')})` : '(no profiles found in ~/.aws/config or ~/.aws/credentials)'}: pass --profile with one of them, or set one up with aws configure sso`, { cause: err });
    }
  }
  if (e.name === 'CredentialsProviderError' || /credential/i.test(message)) {
    return new ClientError('CLIENT_NO_CREDENTIALS', `no usable AWS credentials${p ? ` for profile ${p}` : ''}: ${message}. Next: aws sso login${p ? ` --profile ${p}` : ' --profile NAME'} (set a profile up with aws configure sso), or export AWS_PROFILE`, { cause: err });
  }
  return new ClientError('CLIENT_SIGNING_FAILED', `could not sign the identity request: ${message}`, { cause: err });
}

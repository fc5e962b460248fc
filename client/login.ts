// `sshca login`: prove who you are with AWS credentials, get a certificate.
import { ClientError } from './client-error.js';
import { ensureKey, keyPaths, writeCertificate } from './key-files.js';
import { ServerApi, type UserCertificateResponse } from './server-api.js';

export interface LoginOptions {
  readonly server: string;
  readonly profile?: string;
  readonly principals?: readonly string[];
  readonly ttlSeconds?: number;
  readonly reason?: string;
  readonly key?: string;
  readonly home?: string;
  /** Preferred STS region (the profile's region) when the server allows several. */
  readonly region?: string;
}

export interface LoginResult extends UserCertificateResponse {
  readonly certificatePath: string;
  readonly privateKeyPath: string;
}

export async function login(options: LoginOptions): Promise<LoginResult> {
  const paths = keyPaths(options.key, options.home);
  const publicKey = await ensureKey(paths, options.key !== undefined);
  const api = new ServerApi(options.server);
  const info = await api.caInfo();
  const endpoint = chooseEndpoint(info.stsEndpoints, options.region);
  // Loaded here, not at start-up: commands that never sign stay fast.
  const { IdentityTokenSigner } = await import('./identity-token-signer.js');
  const signer = new IdentityTokenSigner(options.profile ? { profile: options.profile } : {});
  const response = await api.userCertificate(
    {
      publicKey,
      ...(options.principals?.length ? { principals: options.principals } : {}),
      ...(options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {}),
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
    },
    signer,
    info,
    endpoint,
  );
  await writeCertificate(paths, response.certificate);
  return { ...response, certificatePath: paths.certificate, privateKeyPath: paths.privateKey };
}

/** Picks the allowlisted STS endpoint in the preferred region, else the first. */
export function chooseEndpoint(endpoints: readonly string[], region: string | undefined): string {
  if (endpoints.length === 0) throw new ClientError('CLIENT_BAD_RESPONSE', 'the server allows no STS endpoint');
  const inRegion = region ? endpoints.find((e) => new URL(e).hostname.split('.').includes(region)) : undefined;
  return inRegion ?? endpoints[0]!;
}

// `sshca login`: prove who you are with AWS credentials, get a certificate.
import { ClientError } from './client-error.js';
import { ensureKey, keyPaths, writeCertificate } from './key-files.js';
import { ServerApi, type UserCertificateResponse } from './server-api.js';
import { chooseEndpoint } from './sts-endpoint-region.js';

export interface LoginOptions {
  readonly server: string;
  readonly profile?: string;
  readonly principals?: readonly string[];
  readonly ttlSeconds?: number;
  readonly reason?: string;
  readonly key?: string;
  readonly home?: string;
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
  // Loaded here, not at start-up: commands that never sign stay fast.
  const { IdentityTokenSigner, profileRegion } = await import('./identity-token-signer.js');
  // Several allowed endpoints: sign for the one in the profile's region.
  const endpoint = chooseEndpoint(info.stsEndpoints, info.stsEndpoints.length > 1 ? await profileRegion(options.profile) : undefined);
  if (!endpoint) throw new ClientError('CLIENT_BAD_RESPONSE', 'the server allows no STS endpoint');
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

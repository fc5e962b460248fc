// `sshca login`: prove who you are with AWS credentials, get a certificate.
import { ensureKey, keyPaths, writeCertificate } from './key-files.js';
import type { UserCertificateResponse } from './server-api.js';
import { openSignedSession } from './signed-session.js';

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
  const { api, info, signer, endpoint } = await openSignedSession(options.server, options.profile);
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

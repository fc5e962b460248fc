// `sshca login`: prove who you are with AWS credentials, get a certificate
// (and keep the host trust `sshca config --write` set up fresh).
import { homedir } from 'node:os';
import { refreshHostTrust, type HostTrustRefresh } from './host-trust.js';
import { ensureKey, keyPaths, writeCertificate } from './key-files.js';
import type { UserCertificateResponse } from './server-api.js';
import { ClientError } from './client-error.js';
import { openSignedSession } from './signed-session.js';
import { addToAgent } from './ssh-agent.js';

export interface LoginOptions {
  readonly server: string;
  readonly profile?: string;
  readonly principals?: readonly string[];
  readonly ttlSeconds?: number;
  readonly reason?: string;
  readonly key?: string;
  readonly home?: string;
  /** The environment (SSH_AUTH_SOCK decides whether the agent is used). */
  readonly env?: NodeJS.ProcessEnv;
  /** `--no-agent`: never touch ssh-agent. */
  readonly noAgent?: boolean;
  /** Progress the user should see (a busy server being retried); nothing with --quiet. */
  readonly notice?: (line: string) => void;
  /** "waiting for …" on a slow network: a terminal's stderr only. */
  readonly waiting?: (line: string) => void;
}

export interface LoginResult extends UserCertificateResponse {
  readonly certificatePath: string;
  readonly privateKeyPath: string;
  /** Seconds the agent keeps the key, when it was loaded. */
  readonly agentLifetimeSeconds?: number;
  /** Why the certificate is not in ssh-agent although SSH_AUTH_SOCK is set (the login still succeeded). */
  readonly agentWarning?: { readonly code: string; readonly message: string };
  /** Present once `sshca config --write` set host trust up. */
  readonly hostTrust?: HostTrustRefresh;
}

export async function login(options: LoginOptions): Promise<LoginResult> {
  const paths = keyPaths(options.key, options.home);
  const publicKey = await ensureKey(paths, options.key !== undefined);
  const { api, signer, endpoint } = await openSignedSession(options.server, options.profile, { ...(options.notice ? { notice: options.notice } : {}), ...(options.waiting ? { waiting: options.waiting } : {}) });
  const response = await api.userCertificate(
    {
      publicKey,
      ...(options.principals?.length ? { principals: options.principals } : {}),
      ...(options.ttlSeconds !== undefined ? { ttlSeconds: options.ttlSeconds } : {}),
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
    },
    signer,
    endpoint,
  );
  await writeCertificate(paths, response.certificate);
  // Never fails the login: a stale host CA list or KRL is a warning, the old files stay.
  const hostTrust = await refreshHostTrust(options.home ?? homedir());
  let agentLifetimeSeconds: number | undefined;
  let agentWarning: { code: string; message: string } | undefined;
  if (options.env?.SSH_AUTH_SOCK && !options.noAgent) {
    // The agent forgets the key when the certificate expires, not later.
    const lifetime = Math.floor((Date.parse(response.validBefore) - Date.now()) / 1000);
    try {
      await addToAgent(paths, lifetime, options.env);
      agentLifetimeSeconds = lifetime;
    } catch (err) {
      // A stale SSH_AUTH_SOCK (an agent from another session) must not fail a
      // login whose certificate is already written: ssh reads it from the file.
      if (!(err instanceof ClientError)) throw err;
      agentWarning = { code: err.code, message: `the certificate is written (${paths.certificate}) but not loaded into ssh-agent: ${err.message}` };
    }
  }
  return {
    ...response, certificatePath: paths.certificate, privateKeyPath: paths.privateKey,
    ...(agentLifetimeSeconds !== undefined ? { agentLifetimeSeconds } : {}), ...(agentWarning ? { agentWarning } : {}), ...(hostTrust ? { hostTrust } : {}),
  };
}

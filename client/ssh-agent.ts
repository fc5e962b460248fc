// Loading the key and certificate into a running ssh-agent, and out again.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ClientError } from './client-error.js';
import type { KeyPaths } from './key-files.js';

const run = promisify(execFile);

/**
 * `ssh-add -t <lifetime> <key>`: ssh-add also loads `<key>-cert.pub`, and the
 * agent forgets both when the certificate expires.
 */
export async function addToAgent(paths: KeyPaths, lifetimeSeconds: number, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run('ssh-add', ['-q', '-t', String(Math.max(1, lifetimeSeconds)), paths.privateKey], { env });
  } catch (err) {
    throw new ClientError('CLIENT_AGENT_FAILED', `could not add the key to ssh-agent (${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}); use --no-agent to skip`, { cause: err });
  }
}

/** `ssh-add -d <key>` (key and certificate); a key that is not loaded is fine. */
export async function removeFromAgent(paths: KeyPaths, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run('ssh-add', ['-q', '-d', paths.privateKey], { env });
  } catch {
    // Not in the agent (or no agent): nothing to remove.
  }
}

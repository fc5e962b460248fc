// Where the client keeps its key and certificate, and how it writes them.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile, chmod, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ClientError } from './client-error.js';

const run = promisify(execFile);

/** The private key path and the certificate path next to it. */
export interface KeyPaths {
  readonly privateKey: string;
  readonly publicKey: string;
  readonly certificate: string;
}

export function keyPaths(keyPath?: string, home = homedir()): KeyPaths {
  const privateKey = keyPath ?? join(home, '.ssh', 'sshca', 'id_ed25519');
  return { privateKey, publicKey: `${privateKey}.pub`, certificate: `${privateKey}-cert.pub` };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the public key line, generating an Ed25519 key (0600, via
 * ssh-keygen, so the private key format is OpenSSH's own) when the default
 * key is missing. A `--key` the user named must already exist.
 */
export async function ensureKey(paths: KeyPaths, userNamedKey: boolean): Promise<string> {
  if (!(await exists(paths.privateKey))) {
    if (userNamedKey) throw new ClientError('CLIENT_KEY_MISSING', `--key ${paths.privateKey} does not exist`);
    await mkdir(dirname(paths.privateKey), { recursive: true, mode: 0o700 });
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'sshca', '-f', paths.privateKey]);
    } catch (err) {
      throw new ClientError('CLIENT_KEYGEN_FAILED', `ssh-keygen could not create ${paths.privateKey}: ${(err as Error).message}`, { cause: err });
    }
    await chmod(paths.privateKey, 0o600);
  }
  if (!(await exists(paths.publicKey))) {
    try {
      const { stdout } = await run('ssh-keygen', ['-y', '-f', paths.privateKey]);
      await writeFile(paths.publicKey, stdout, { mode: 0o644 });
    } catch (err) {
      throw new ClientError('CLIENT_KEY_UNREADABLE', `cannot derive the public key of ${paths.privateKey} (is it passphrase-protected? create ${paths.publicKey})`, { cause: err });
    }
  }
  return (await readFile(paths.publicKey, 'utf8')).trim();
}

/** Replaces the certificate atomically: ssh never sees a half-written file. */
export async function writeCertificate(paths: KeyPaths, line: string): Promise<void> {
  const tmp = `${paths.certificate}.tmp-${process.pid}`;
  await writeFile(tmp, `${line}\n`, { mode: 0o644 });
  await rename(tmp, paths.certificate);
}

export async function readCertificateLine(paths: KeyPaths): Promise<string | undefined> {
  try {
    return await readFile(paths.certificate, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

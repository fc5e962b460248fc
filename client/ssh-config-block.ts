// `sshca config`: the ~/.ssh/config block that makes plain `ssh` use sshca
// (certificate, host trust), written idempotently between markers.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const BEGIN = '# >>> sshca (managed by `sshca config --write`; edits inside are replaced) >>>';
const END = '# <<< sshca <<<';

/** The host trust files the block points ssh at (see host-trust.ts). */
export interface HostTrustConfig {
  /** The user's own known_hosts first: ssh adds hosts it learns to the first file, and sshca's is rewritten. */
  readonly knownHostsFiles: readonly string[];
  /** Only once a real KRL has been saved: a RevokedHostKeys file ssh cannot read makes it refuse every host. */
  readonly revokedHostKeys?: string;
}

/** A path as an ssh_config value (quoted when it holds spaces). */
export function sshConfigPath(path: string): string {
  return /\s/.test(path) ? `"${path}"` : path;
}

/**
 * The ssh_config block: certificate-backed identity for the hosts that
 * match `hostPatterns`, logging in first when needed, and (with
 * `hostTrust`) sshca's known_hosts and revoked host keys for them.
 */
export function sshConfigBlock(options: { hostPatterns: readonly string[]; privateKey: string; certificate: string; hostTrust?: HostTrustConfig }): string {
  const hosts = options.hostPatterns.join(',');
  const lines = [
    // Silent when it cannot log in (expired SSO, no network): every ssh to
    // these hosts, git's included, runs this line. The block then does not
    // apply; the failure surfaces when the user runs `sshca login` or `sshca ssh`.
    `Match host ${hosts} exec "sshca status --quiet || sshca login --quiet 2>/dev/null"`,
    `    IdentityFile ${sshConfigPath(options.privateKey)}`,
    `    CertificateFile ${sshConfigPath(options.certificate)}`,
  ];
  if (options.hostTrust) {
    // Its own Match, without the exec: host keys are checked even when a login fails.
    lines.push(`Match host ${hosts}`, `    UserKnownHostsFile ${options.hostTrust.knownHostsFiles.map(sshConfigPath).join(' ')}`);
    if (options.hostTrust.revokedHostKeys) lines.push(`    RevokedHostKeys ${sshConfigPath(options.hostTrust.revokedHostKeys)}`);
  }
  // Back to every host: whatever follows our block in the file is not ours.
  lines.push('Match all');
  return lines.join('\n');
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return '';
  }
}

/** The file without our block (and whether it had one). */
function withoutBlock(current: string): { rest: string; had: boolean } {
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END, start);
  if (start < 0 || end < 0) return { rest: current, had: false };
  return { rest: `${current.slice(0, start)}${current.slice(end + END.length).replace(/^\n/, '')}`, had: true };
}

/** Whether `path` holds our block (a user who removed it has opted out). */
export async function hasManagedBlock(path: string): Promise<boolean> {
  return withoutBlock(await readIfExists(path)).had;
}

/**
 * Puts `content` between our markers in `path`, replacing a previous block
 * (running it twice leaves one block), or removes the block when `content`
 * is undefined. Atomic (write then rename), 0600.
 */
export async function writeManagedBlock(path: string, content: string | undefined): Promise<void> {
  const { rest, had } = withoutBlock(await readIfExists(path));
  if (content === undefined && !had) return;
  const base = rest.length > 0 && !rest.endsWith('\n') ? `${rest}\n` : rest;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.sshca-${process.pid}`;
  await writeFile(tmp, content === undefined ? base : `${base}${BEGIN}\n${content}\n${END}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

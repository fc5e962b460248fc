// `sshca config`: the ~/.ssh/config block and known_hosts lines that make
// plain `ssh` use sshca, written idempotently between markers.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const BEGIN = '# >>> sshca (managed by `sshca config --write`; edits inside are replaced) >>>';
const END = '# <<< sshca <<<';

/** The ssh_config block: certificate-backed identity for `hostPattern`, logging in first when needed. */
export function sshConfigBlock(options: { hostPattern: string; privateKey: string; certificate: string }): string {
  return [
    `Match host ${options.hostPattern} exec "sshca status --quiet || sshca login --quiet"`,
    `    IdentityFile ${options.privateKey}`,
    `    CertificateFile ${options.certificate}`,
  ].join('\n');
}

/** known_hosts lines trusting the host CA for `hostPattern`. */
export function knownHostsLines(hostPattern: string, hostCaKeys: readonly string[]): string {
  return hostCaKeys.map((k) => `@cert-authority ${hostPattern} ${k.split(/\s+/).slice(0, 2).join(' ')}`).join('\n');
}

/**
 * Puts `content` between our markers in `path`, replacing a previous block:
 * running it twice leaves one block. Atomic (write then rename), 0600.
 */
export async function writeManagedBlock(path: string, content: string): Promise<void> {
  let current = '';
  try {
    current = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END, start);
  const without = start >= 0 && end >= 0 ? `${current.slice(0, start)}${current.slice(end + END.length).replace(/^\n/, '')}` : current;
  const base = without.length > 0 && !without.endsWith('\n') ? `${without}\n` : without;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.sshca-${process.pid}`;
  await writeFile(tmp, `${base}${BEGIN}\n${content}\n${END}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

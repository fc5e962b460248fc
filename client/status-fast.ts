// `sshca status` on the fast path: synchronous, and importing nothing but
// the certificate reader and its validity rules. It runs before every ssh
// (Match exec), so it must cost little more than starting node.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../protocol/duration.js';
import { readCertificate } from './certificate-info.js';
import { remainingText, statusLine, validityAt } from './certificate-validity.js';

/**
 * Handles `status [--quiet] [--min-valid D]` with the default key; returns
 * undefined for anything else (other flags, a config file naming a key) so
 * the full CLI answers instead.
 */
export function fastStatus(argv: readonly string[], env: NodeJS.ProcessEnv, now: Date, stdout: (s: string) => void): number | undefined {
  if (argv[0] !== 'status') return undefined;
  let quiet = false;
  let minValid = 60;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--quiet') quiet = true;
    else if (argv[i] === '--min-valid' && argv[i + 1] !== undefined && parseDuration(argv[i + 1]!) !== undefined) minValid = parseDuration(argv[++i]!)!;
    else return undefined;
  }
  const home = env.HOME ?? homedir();
  const configDir = env.XDG_CONFIG_HOME ?? join(home, '.config');
  try {
    // A config file may name another key: leave that to the full CLI.
    if (readFileSync(join(configDir, 'sshca', 'config.json'), 'utf8').includes('"key"')) return undefined;
  } catch {
    // no config file
  }
  const path = join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub');
  let line: string;
  try {
    line = readFileSync(path, 'utf8');
  } catch {
    if (!quiet) stdout(`missing: ${path}\n`);
    return 1;
  }
  let info;
  try {
    info = readCertificate(line);
  } catch {
    if (!quiet) stdout(`unreadable: ${path}\n`);
    return 1;
  }
  const validity = validityAt(info, now.getTime(), minValid);
  if (!quiet) stdout(statusLine(validity.state, info, [remainingText(validity)]));
  return validity.state === 'valid' ? 0 : 1;
}

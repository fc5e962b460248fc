// The files through which ssh trusts sshca's host CA: a known_hosts file of
// `@cert-authority` lines, the server's KRL as RevokedHostKeys, and a small
// state file saying where they came from. Each is replaced atomically, so
// ssh never reads half of one.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PublicKeyError, parsePublicKeyLine, toOpenSshLine } from '../protocol/ssh-public-key.js';
import { isPlainObject, parseJsonStrict } from '../protocol/strict-json.js';
import { ClientError } from './client-error.js';
import { knownHostsPatterns } from './host-patterns.js';

const run = promisify(execFile);

/** Where the host trust files live (next to the key, under ~/.ssh/sshca/). */
export interface HostTrustPaths {
  readonly knownHosts: string;
  readonly revokedHostKeys: string;
  readonly state: string;
  /** The user's own known_hosts, kept in the list ssh reads. */
  readonly userKnownHosts: string;
  readonly sshConfig: string;
}

export function hostTrustPaths(home: string): HostTrustPaths {
  const dir = join(home, '.ssh', 'sshca');
  return {
    knownHosts: join(dir, 'known_hosts'),
    revokedHostKeys: join(dir, 'revoked_host_keys.krl'),
    state: join(dir, 'host-trust.json'),
    userKnownHosts: join(home, '.ssh', 'known_hosts'),
    sshConfig: join(home, '.ssh', 'config'),
  };
}

/** What `sshca config --write` set up, so `sshca login` can keep it fresh. */
export interface HostTrustState {
  /** The server the host CA list and KRL come from (canonical URL). */
  readonly server: string;
  readonly patterns: readonly string[];
  /** The key the ssh_config block names (rewritten when RevokedHostKeys is first added). */
  readonly privateKey: string;
  readonly certificate: string;
  readonly hostCaEtag?: string;
  readonly krlEtag?: string;
  /** Whether ~/.ssh/config names the KRL yet (only once a real one was saved). */
  readonly revokedHostKeysInConfig: boolean;
}

/** The state, or undefined when `sshca config --write` never set host trust up. */
export function readHostTrustState(paths: HostTrustPaths): HostTrustState | undefined {
  let text: string;
  try {
    text = readFileSync(paths.state, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ClientError('CLIENT_CONFIG_INVALID', `cannot read ${paths.state}: ${(err as Error).message}`);
  }
  let state: unknown;
  try {
    state = parseJsonStrict(text);
  } catch {
    state = undefined;
  }
  const s = state as Record<string, unknown>;
  const ok = isPlainObject(state) && typeof s.server === 'string' && typeof s.privateKey === 'string' && typeof s.certificate === 'string' && typeof s.revokedHostKeysInConfig === 'boolean' &&
    Array.isArray(s.patterns) && s.patterns.every((p) => typeof p === 'string') && ['hostCaEtag', 'krlEtag'].every((k) => s[k] === undefined || typeof s[k] === 'string');
  if (!ok) throw new ClientError('CLIENT_CONFIG_INVALID', `${paths.state} is damaged; run sshca config --write again`);
  return state as HostTrustState;
}

export async function writeHostTrustState(paths: HostTrustPaths, state: HostTrustState): Promise<void> {
  await replaceFile(paths.state, Buffer.from(`${JSON.stringify(state, null, 2)}\n`), 0o600);
}

/**
 * Writes `bytes` to `path` through a temporary file and a rename, unless the
 * file already holds exactly them; `check` may refuse the temporary file.
 * Returns whether the file changed.
 */
export async function replaceFile(path: string, bytes: Buffer, mode: number, check?: (tmp: string) => Promise<void>): Promise<boolean> {
  const current = await readFile(path).catch(() => undefined);
  if (current?.equals(bytes)) return false;
  const tmp = `${path}.sshca-${process.pid}`;
  await writeFile(tmp, bytes, { mode });
  try {
    await check?.(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return true;
}

/** A comment safe in a known_hosts line, or our own. */
function safeComment(comment: string | undefined): string {
  return comment && /^[A-Za-z0-9._@-]{1,64}$/.test(comment) ? comment : 'sshca-host-ca';
}

/**
 * The host CA keys in `GET /v1/ca/host.pub` (one key per line; empty when the
 * server has no host CA), each parsed and written back in canonical form so
 * nothing from the wire but a key reaches known_hosts.
 */
export function parseHostCaList(text: string, server: string): string[] {
  const keys: string[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    try {
      keys.push(toOpenSshLine(parsePublicKeyLine(line), safeComment(line.split(/[ \t]+/)[2])));
    } catch (err) {
      if (err instanceof PublicKeyError) throw new ClientError('CLIENT_BAD_RESPONSE', `the host CA list of ${server} holds something that is not a public key (${err.message})`, { cause: err });
      throw err;
    }
  }
  return keys;
}

/** The known_hosts file sshca owns: one `@cert-authority` line per host CA key. */
export function knownHostsFile(server: string, patterns: readonly string[], hostCaKeys: readonly string[]): string {
  const header = [
    '# Managed by sshca: written by `sshca config --write`, refreshed by `sshca login`; edits are replaced.',
    hostCaKeys.length ? `# The host CA keys of ${server} (active, next and retired), trusted for: ${patterns.join(', ')}` : `# ${server} has no host CA: nothing is trusted from here.`,
  ];
  const pattern = knownHostsPatterns(patterns);
  return `${[...header, ...hostCaKeys.map((k) => `@cert-authority ${pattern} ${k}`)].join('\n')}\n`;
}

/** The KRL magic and format version (PROTOCOL.krl). */
const KRL_HEADER = Buffer.concat([Buffer.from('SSHKRL\n\0', 'latin1'), Buffer.from([0, 0, 0, 1])]);

/**
 * Refuses anything OpenSSH could not read as a KRL (an error page, a cut-off
 * download): ssh refuses every host key when its RevokedHostKeys file does
 * not parse. ssh-keygen itself is the judge.
 */
export async function checkKrlFile(path: string): Promise<void> {
  const bytes = await readFile(path);
  if (bytes.length < KRL_HEADER.length || !bytes.subarray(0, KRL_HEADER.length).equals(KRL_HEADER)) throw new ClientError('CLIENT_BAD_RESPONSE', 'the server\'s KRL is not an OpenSSH KRL');
  try {
    await run('ssh-keygen', ['-Q', '-l', '-f', path]);
  } catch (err) {
    throw new ClientError('CLIENT_BAD_RESPONSE', `ssh-keygen cannot read the server's KRL: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
  }
}

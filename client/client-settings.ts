// Where the client's settings come from: flags > environment
// (SSHCA_SERVER, AWS_PROFILE) > ~/.config/sshca/config.json, and how a
// command remembers one there.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { isPlainObject, parseJsonStrict } from '../protocol/strict-json.js';
import { ClientError } from './client-error.js';
import { hostPatternProblem } from './host-patterns.js';

/** The settings every command may use. */
export interface ClientSettings {
  readonly server?: string;
  readonly profile?: string;
  readonly key?: string;
  /** The hosts sshca is for: only from the file (`sshca config --host` writes it; the flag itself goes to runConfig). */
  readonly hostPatterns?: readonly string[];
}

const FILE_FIELDS = ['server', 'profile', 'key', 'hostPatterns'] as const;

export function configFilePath(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'sshca', 'config.json');
}

/** The file's JSON object as written (empty when there is no file). */
function readConfigObject(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ClientError('CLIENT_CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseJsonStrict(text);
  } catch (err) {
    throw new ClientError('CLIENT_CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new ClientError('CLIENT_CONFIG_INVALID', `${path} must hold a JSON object`);
  return parsed;
}

function readConfigFile(path: string): ClientSettings {
  const parsed = readConfigObject(path);
  for (const [k, v] of Object.entries(parsed)) {
    if (!(FILE_FIELDS as readonly string[]).includes(k)) throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: unknown setting ${k} (known: ${FILE_FIELDS.join(', ')})`);
    if (k === 'hostPatterns') {
      if (!Array.isArray(v) || v.length === 0 || !v.every((p) => typeof p === 'string')) throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: hostPatterns must be a non-empty list of ssh host patterns`);
      // A "*" in the file was put there on purpose (by --all-hosts, or by hand).
      const problem = v.map((p: string) => hostPatternProblem(p, true)).find((x) => x !== undefined);
      if (problem) throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: hostPatterns: ${problem}`);
    } else if (typeof v !== 'string' || v === '') throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: ${k} must be a non-empty string`);
  }
  return parsed as ClientSettings;
}

/**
 * Remembers settings in the file, keeping the others as they are. Atomic
 * (write, then rename): the ssh_config hook may read it at any moment.
 */
export function saveSettings(env: NodeJS.ProcessEnv, changes: Pick<ClientSettings, 'server' | 'profile' | 'hostPatterns'>): string {
  const path = configFilePath(env);
  readConfigFile(path); // refuse to rewrite a file we would not read
  const next = { ...readConfigObject(path), ...changes };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.sshca-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return path;
}

/**
 * After a successful login: the --server and --profile flags it was given
 * that the file does not hold yet, saved (the first login sets the client
 * up; a later one never overwrites what is there). Returns what was saved.
 */
export function rememberLoginFlags(env: NodeJS.ProcessEnv, flags: Pick<ClientSettings, 'server' | 'profile'>): { path: string; saved: Pick<ClientSettings, 'server' | 'profile'> } | undefined {
  const file = readConfigFile(configFilePath(env));
  const saved = {
    ...(flags.server !== undefined && file.server === undefined ? { server: flags.server } : {}),
    ...(flags.profile !== undefined && file.profile === undefined ? { profile: flags.profile } : {}),
  };
  if (Object.keys(saved).length === 0) return undefined;
  return { path: saveSettings(env, saved), saved };
}

/** Resolves settings by precedence. */
export function resolveSettings(flags: ClientSettings, env: NodeJS.ProcessEnv): ClientSettings {
  const file = readConfigFile(configFilePath(env));
  const server = flags.server ?? env.SSHCA_SERVER ?? file.server;
  const profile = flags.profile ?? env.AWS_PROFILE ?? file.profile;
  const key = flags.key ?? file.key;
  const hostPatterns = file.hostPatterns;
  return { ...(server ? { server } : {}), ...(profile ? { profile } : {}), ...(key ? { key } : {}), ...(hostPatterns ? { hostPatterns } : {}) };
}

export function requireServer(settings: ClientSettings): string {
  if (!settings.server) throw new ClientError('CLIENT_USAGE', 'no server: pass --server URL, set SSHCA_SERVER, or put "server" in ~/.config/sshca/config.json');
  return settings.server;
}

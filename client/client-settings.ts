// Where the client's settings come from: flags > environment
// (SSHCA_SERVER, AWS_PROFILE) > ~/.config/sshca/config.json.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isPlainObject, parseJsonStrict } from '../protocol/strict-json.js';
import { ClientError } from './client-error.js';

/** The settings every command may use. */
export interface ClientSettings {
  readonly server?: string;
  readonly profile?: string;
  readonly key?: string;
}

const FILE_FIELDS = ['server', 'profile', 'key'] as const;

export function configFilePath(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'sshca', 'config.json');
}

function readConfigFile(path: string): ClientSettings {
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
  for (const [k, v] of Object.entries(parsed)) {
    if (!(FILE_FIELDS as readonly string[]).includes(k)) throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: unknown setting ${k} (known: ${FILE_FIELDS.join(', ')})`);
    if (typeof v !== 'string' || v === '') throw new ClientError('CLIENT_CONFIG_INVALID', `${path}: ${k} must be a non-empty string`);
  }
  return parsed as ClientSettings;
}

/** Resolves settings by precedence. */
export function resolveSettings(flags: ClientSettings, env: NodeJS.ProcessEnv): ClientSettings {
  const file = readConfigFile(configFilePath(env));
  const server = flags.server ?? env.SSHCA_SERVER ?? file.server;
  const profile = flags.profile ?? env.AWS_PROFILE ?? file.profile;
  const key = flags.key ?? file.key;
  return { ...(server ? { server } : {}), ...(profile ? { profile } : {}), ...(key ? { key } : {}) };
}

export function requireServer(settings: ClientSettings): string {
  if (!settings.server) throw new ClientError('CLIENT_USAGE', 'no server: pass --server URL, set SSHCA_SERVER, or put "server" in ~/.config/sshca/config.json');
  return settings.server;
}

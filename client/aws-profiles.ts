// The AWS profile names this machine has, read the way the AWS SDK and CLI
// find them: `[profile NAME]` / `[default]` in the config file, `[NAME]` in
// the credentials file. Only for plain words when a profile is missing.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function sections(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*\[([^\]\r\n]+)\]\s*$/gm)].map((m) => m[1]!.trim());
}

/** Every profile name in the shared config and credentials files, sorted, once each. */
export function awsProfileNames(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME ?? homedir();
  const config = sections(env.AWS_CONFIG_FILE ?? join(home, '.aws', 'config')).flatMap((s) => (s === 'default' ? ['default'] : s.startsWith('profile ') ? [s.slice('profile '.length).trim()] : []));
  const credentials = sections(env.AWS_SHARED_CREDENTIALS_FILE ?? join(home, '.aws', 'credentials'));
  return [...new Set([...config, ...credentials])].sort();
}

// The commands around plain OpenSSH use: `ssh`, `config`, `logout`, `ca`.
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientError, EXIT } from './client-error.js';
import { requireServer, type ClientSettings } from './client-settings.js';
import { keyPaths } from './key-files.js';
import { login } from './login.js';
import { ServerApi, type CaInfo } from './server-api.js';
import { removeFromAgent } from './ssh-agent.js';
import { knownHostsLines, sshConfigBlock, writeManagedBlock } from './ssh-config-block.js';
import { status } from './status.js';

/** What the command runners need from the CLI. */
export interface CommandIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
}

/** Logs in unless the certificate stays valid for `minValidSeconds`, then runs ssh with it. */
export async function runSsh(settings: ClientSettings, sshArgs: readonly string[], io: CommandIo, minValidSeconds = 300): Promise<number> {
  const home = io.env.HOME;
  const current = await status({ ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), now: io.now(), minValidSeconds });
  if (current.state !== 'valid') {
    io.stderr(`sshca: certificate ${current.state}; logging in\n`);
    await login({ server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}), ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), env: io.env });
  }
  const paths = keyPaths(settings.key, home);
  const child = spawn('ssh', ['-i', paths.privateKey, '-o', `CertificateFile=${paths.certificate}`, ...sshArgs], { stdio: 'inherit', env: io.env });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new ClientError('CLIENT_SSH_FAILED', `cannot run ssh: ${err.message}`, { cause: err })));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 255)));
  });
}

export async function caInfo(settings: ClientSettings): Promise<CaInfo> {
  return new ServerApi(requireServer(settings)).caInfo();
}

/** Prints (or writes) the ssh_config block and, when the server has a host CA, the known_hosts lines. */
export async function runConfig(settings: ClientSettings, options: { write: boolean; hostPattern: string; json: boolean }, io: CommandIo): Promise<number> {
  const home = io.env.HOME ?? '';
  const paths = keyPaths(settings.key, home || undefined);
  const block = sshConfigBlock({ hostPattern: options.hostPattern, privateKey: paths.privateKey, certificate: paths.certificate });
  const hostCaKeys = settings.server ? (await caInfo(settings)).hostCaKeys : [];
  const knownHosts = knownHostsLines(options.hostPattern, hostCaKeys);
  if (options.write) {
    await writeManagedBlock(join(home, '.ssh', 'config'), block);
    if (knownHosts) await writeManagedBlock(join(home, '.ssh', 'known_hosts'), knownHosts);
  }
  if (options.json) io.stdout(`${JSON.stringify({ sshConfig: block, knownHosts, written: options.write })}\n`);
  else if (options.write) io.stdout(`updated ${join(home, '.ssh', 'config')}${knownHosts ? ` and ${join(home, '.ssh', 'known_hosts')}` : ''}\n`);
  else io.stdout(`# ~/.ssh/config\n${block}\n${knownHosts ? `# ~/.ssh/known_hosts\n${knownHosts}\n` : ''}`);
  return EXIT.ok;
}

/** Removes the key and certificate from the agent and from disk. */
export async function runLogout(settings: ClientSettings, io: CommandIo, json: boolean): Promise<number> {
  const paths = keyPaths(settings.key, io.env.HOME);
  if (io.env.SSH_AUTH_SOCK) await removeFromAgent(paths, io.env);
  // A key the user brought (--key) is theirs: only the certificate goes.
  const files = settings.key ? [paths.certificate] : [paths.privateKey, paths.publicKey, paths.certificate];
  for (const f of files) await rm(f, { force: true });
  if (json) io.stdout(`${JSON.stringify({ removed: files })}\n`);
  else io.stdout(`logged out: removed ${files.join(', ')}\n`);
  return EXIT.ok;
}

// The commands around plain OpenSSH use: `ssh`, `config`, `logout`, `ca`.
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { ClientError, EXIT, warningLine } from './client-error.js';
import { requireServer, saveSettings, type ClientSettings } from './client-settings.js';
import { removeHostTrust, setUpHostTrust, sshHostTrustOptions, type HostTrustSetup } from './host-trust.js';
import { keyPaths } from './key-files.js';
import { login } from './login.js';
import { ServerApi, type CaInfo } from './server-api.js';
import { removeFromAgent } from './ssh-agent.js';
import { sshConfigBlock } from './ssh-config-block.js';
import { status } from './status.js';

/** What the command runners need from the CLI. */
export interface CommandIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
}

/**
 * Logs in unless the certificate stays valid for `minValidSeconds`, then runs
 * ssh with it and, once `sshca config --write` set host trust up, with
 * sshca's known_hosts, RevokedHostKeys and strict host key checking.
 */
export async function runSsh(settings: ClientSettings, sshArgs: readonly string[], io: CommandIo, minValidSeconds = 300): Promise<number> {
  const home = io.env.HOME;
  const current = await status({ ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), now: io.now(), minValidSeconds });
  if (current.state !== 'valid') {
    io.stderr(`sshca: certificate ${current.state}; logging in\n`);
    const result = await login({ server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}), ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), env: io.env });
    if (result.hostTrust?.warning) io.stderr(warningLine(result.hostTrust.warning));
  }
  const paths = keyPaths(settings.key, home);
  const trust = sshHostTrustOptions(home ?? homedir(), sshArgs);
  const child = spawn('ssh', ['-i', paths.privateKey, '-o', `CertificateFile=${paths.certificate}`, ...trust, ...sshArgs], { stdio: 'inherit', env: io.env });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new ClientError('CLIENT_SSH_FAILED', `cannot run ssh: ${err.message}`, { cause: err })));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 1 : 255)));
  });
}

export async function caInfo(settings: ClientSettings): Promise<CaInfo> {
  return new ServerApi(requireServer(settings)).caInfo();
}

/** What `sshca config` was asked for. */
export interface ConfigOptions {
  readonly write: boolean;
  readonly remove: boolean;
  /** From --host/--all-hosts (validated, remembered); else the settings file's. */
  readonly hostPatterns?: readonly string[];
  readonly json: boolean;
}

/**
 * Prints (or writes) the ssh_config block and sshca's known_hosts file for
 * the team's host patterns, and installs the KRL as RevokedHostKeys.
 */
export async function runConfig(settings: ClientSettings, options: ConfigOptions, io: CommandIo): Promise<number> {
  const home = io.env.HOME ?? homedir();
  if (options.remove) {
    const removed = await removeHostTrust(home);
    io.stdout(options.json ? `${JSON.stringify({ removed })}\n` : `removed the sshca block from ${removed[0]} and ${removed.slice(1).join(', ')}\n`);
    return EXIT.ok;
  }
  const patterns = options.hostPatterns ?? settings.hostPatterns;
  if (!patterns) throw new ClientError('CLIENT_USAGE', "no host patterns: name the hosts sshca is for, e.g. --host '*.internal,10.*' (remembered), or --all-hosts");
  const paths = keyPaths(settings.key, home);
  // Host trust comes from the server; a preview without one shows the login part only.
  const server = options.write ? requireServer(settings) : settings.server;
  const setup = server
    ? await setUpHostTrust({ server, patterns, home, privateKey: paths.privateKey, certificate: paths.certificate, write: options.write })
    : { sshConfig: sshConfigBlock({ hostPatterns: patterns, privateKey: paths.privateKey, certificate: paths.certificate }), knownHosts: '', knownHostsPath: '', hostCaKeys: 0 } satisfies HostTrustSetup;
  const saved = options.hostPatterns ? saveSettings(io.env, { hostPatterns: options.hostPatterns }) : undefined;
  if (setup.warning) io.stderr(warningLine(setup.warning));
  if (options.json) {
    io.stdout(`${JSON.stringify({
      sshConfig: setup.sshConfig, knownHosts: setup.knownHosts, knownHostsPath: setup.knownHostsPath, hostPatterns: patterns, hostCaKeys: setup.hostCaKeys,
      revokedHostKeys: setup.revokedHostKeys ?? null, written: options.write, ...(saved ? { settingsFile: saved } : {}), ...(setup.warning ? { warning: setup.warning } : {}),
    })}\n`);
    return EXIT.ok;
  }
  if (!options.write) {
    io.stdout(`# ~/.ssh/config\n${setup.sshConfig}\n${server ? `# ${setup.knownHostsPath}\n${setup.knownHosts}` : ''}`);
    if (saved) io.stderr(`sshca: host patterns remembered in ${saved}\n`);
    return EXIT.ok;
  }
  io.stdout(`updated ${home}/.ssh/config for ${patterns.join(', ')}\n`);
  io.stdout(setup.hostCaKeys
    ? `  trusting ${setup.hostCaKeys} host CA key(s) of ${server} for those hosts: ${setup.knownHostsPath}\n`
    : `  ${server} has no host CA: no @cert-authority line written; host keys are checked against ~/.ssh/known_hosts as before\n`);
  if (setup.revokedHostKeys) io.stdout(`  revoked host keys: ${setup.revokedHostKeys} (refreshed by sshca login)\n`);
  if (saved) io.stdout(`  host patterns remembered in ${saved}\n`);
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

// The commands around plain OpenSSH use: `ssh`, `config`, `logout`, `ca`.
import { readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { readCertificate } from './certificate-info.js';
import { ClientError, EXIT, warningLine } from './client-error.js';
import { requireServer, saveSettings, type ClientSettings } from './client-settings.js';
import { removeHostTrust, setUpHostTrust, sshHostTrustOptions, type HostTrustSetup } from './host-trust.js';
import { keyPaths } from './key-files.js';
import { login } from './login.js';
import { ServerApi, type CaInfo } from './server-api.js';
import { removeFromAgent } from './ssh-agent.js';
import { sshConfigBlock } from './ssh-config-block.js';
import { runSshProcess } from './ssh-process.js';
import { status } from './status.js';

/** What the command runners need from the CLI. */
export interface CommandIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
}

/** The login `sshca ssh` runs by itself: with the settings' server, profile and key. */
async function loginForSsh(settings: ClientSettings, io: CommandIo): Promise<void> {
  const home = io.env.HOME;
  const result = await login({ server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}), ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), env: io.env });
  if (result.hostTrust?.warning) io.stderr(warningLine(result.hostTrust.warning));
}

/**
 * After sshd refused every key: asks the server's KRL whether our
 * certificate is revoked and, only if it is, logs in again. Returns whether
 * ssh should be tried once more. Other refusals (a principal the host does
 * not accept, a host that does not trust the CA) are left to ssh's own
 * message; a KRL that cannot be read is reported, never taken as an answer.
 */
async function renewIfRevoked(settings: ClientSettings, certificatePath: string, privateKeyPath: string, io: CommandIo): Promise<boolean> {
  if (!settings.server) return false;
  let info;
  try {
    info = readCertificate(await readFile(certificatePath, 'utf8'));
  } catch {
    return false;
  }
  const { checkRevocation } = await import('./revocation-check.js');
  const check = await checkRevocation({ server: settings.server, home: io.env.HOME ?? homedir(), subject: info });
  if (check.problem) io.stderr(warningLine(check.problem));
  if (check.state !== 'revoked') return false;
  if (check.match === 'key') {
    // The server certifies a revoked key again, but every sshd reading the KRL refuses it: only a new key helps.
    io.stderr(`sshca: the key ${privateKeyPath} itself is revoked (KRL version ${check.krlVersion ?? '?'}), so no new certificate for it gets in: use a new key (for sshca's own key: sshca logout, then sshca login) [CLIENT_KEY_REVOKED]\n`);
    return false;
  }
  io.stderr(`sshca: certificate serial ${info.serial} is revoked (KRL version ${check.krlVersion ?? '?'}); logging in again\n`);
  await loginForSsh(settings, io);
  return true;
}

/**
 * Logs in unless the certificate stays valid for `minValidSeconds`, then runs
 * ssh with it and, once `sshca config --write` set host trust up, with
 * sshca's known_hosts, RevokedHostKeys and strict host key checking. When
 * sshd refuses the key and the KRL says the certificate was revoked, logs in
 * again and runs ssh once more (once: a second refusal is ssh's answer).
 */
export async function runSsh(settings: ClientSettings, sshArgs: readonly string[], io: CommandIo, minValidSeconds = 300): Promise<number> {
  const home = io.env.HOME;
  const current = await status({ ...(settings.key ? { key: settings.key } : {}), ...(home ? { home } : {}), now: io.now(), minValidSeconds });
  if (current.state !== 'valid') {
    io.stderr(`sshca: certificate ${current.state}; logging in\n`);
    await loginForSsh(settings, io);
  }
  const paths = keyPaths(settings.key, home);
  const args = ['-i', paths.privateKey, '-o', `CertificateFile=${paths.certificate}`, ...sshHostTrustOptions(home ?? homedir(), sshArgs), ...sshArgs];
  // ssh's stdin and stdout are the process's own (inherited), so its stderr goes to the process's stderr too, not through io.
  const first = await runSshProcess(args, io.env, process.stderr);
  // A refusal ran no remote command, so trying again repeats nothing.
  if (!first.publicKeyDenied || !(await renewIfRevoked(settings, paths.certificate, paths.privateKey, io))) return first.code;
  return (await runSshProcess(args, io.env, process.stderr)).code;
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

// A real OpenSSH sshd on a loopback port that trusts a given CA — used by
// `npm run demo` and the login tests, so what "sshd accepts the certificate"
// means is decided by OpenSSH itself. Its security settings are the instance
// bootstrap's own drop-in (`sshca-bootstrap --print-dropin`), not a copy.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** infra/bootstrap/sshca-bootstrap, from scripts/ (tsx, tap) or dist/scripts/ (built). */
export const BOOTSTRAP_SCRIPT = [join(import.meta.dirname, '..', 'infra', 'bootstrap', 'sshca-bootstrap'), join(import.meta.dirname, '..', '..', 'infra', 'bootstrap', 'sshca-bootstrap')].find((p) => existsSync(p)) ?? 'infra/bootstrap/sshca-bootstrap';

export function openSshServerInstalled(): boolean {
  return existsSync(SSHD) && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');
}

/** A free loopback port (closed again before sshd binds it: a small, accepted race). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The local account certificate logins go to. As root, a dedicated account
 * is created (sshd refuses root here, as production instances should); as a
 * normal user, sshd can only log in as that same user.
 */
export function ensureLoginAccount(name: string): string {
  if (process.getuid?.() !== 0) return userInfo().username;
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--no-create-home', '--home-dir', '/tmp', '--shell', '/bin/sh', name], { stdio: 'ignore' });
  }
  // A locked password field ('!') makes sshd refuse every login, keys included.
  execFileSync('usermod', ['-p', '*', name], { stdio: 'ignore' });
  return name;
}

/** A running throwaway sshd. */
export interface ThrowawaySshd {
  readonly port: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Runs `command` over ssh with a key and certificate; never prompts. */
  ssh(options: { user: string; key: string; certificate: string; command: string }): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/** Resolves once something listens on the loopback `port`; rejects when `child` exits first or time runs out. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on ${port} within ${timeoutMs} ms`);
}

/**
 * Starts sshd in `dir` trusting `trustedCaKeys` (TrustedUserCAKeys content);
 * with `revokedKeys`, sshd reads that file (a KRL) at every login. The
 * configuration is the bootstrap's drop-in for an instance rooted at `dir`
 * (00-sshca.conf: certificates only, LogLevel VERBOSE, the hardened
 * defaults) plus what a loopback sshd needs. An account accepts
 * certificates for its own name (sshd's rule without an allow map): the
 * drop-in's principals directory stays empty and an AuthorizedPrincipalsCommand
 * answers with the account name.
 */
export async function startThrowawaySshd(dir: string, trustedCaKeys: string, options: { revokedKeys?: string } = {}): Promise<ThrowawaySshd> {
  mkdirSync(dir, { recursive: true });
  // sshd's privilege separation directory; Debian creates it only at service start.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'host_ed25519');
  if (!existsSync(hostKey)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const sshca = join(dir, 'etc', 'ssh', 'sshca');
  const principalsDir = join(sshca, 'principals');
  mkdirSync(principalsDir, { recursive: true });
  writeFileSync(join(sshca, 'trusted_user_ca_keys'), trustedCaKeys);
  const krl = join(sshca, 'revoked.krl');
  rmSync(krl, { force: true });
  // An unreadable RevokedKeys file blocks every login: an empty KRL when none is given.
  if (options.revokedKeys) symlinkSync(options.revokedKeys, krl);
  else execFileSync('ssh-keygen', ['-q', '-k', '-f', krl]);
  const dropin = join(dir, 'etc', 'ssh', 'sshd_config.d', '00-sshca.conf');
  mkdirSync(join(dropin, '..'), { recursive: true });
  writeFileSync(dropin, execFileSync('sh', [BOOTSTRAP_SCRIPT, '--print-dropin', '--root', dir]));
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      // First: sshd keeps the first value it reads.
      `Include ${dropin}`,
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'StrictModes no',
      // sshd consults this when no principals file names the certificate's principal.
      'AuthorizedPrincipalsCommand /bin/echo %u',
      `AuthorizedPrincipalsCommandUser ${process.getuid?.() === 0 ? 'nobody' : userInfo().username}`,
      '',
    ].join('\n'),
  );
  execFileSync(SSHD, ['-t', '-f', config]);
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitForPort(port, child, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  return {
    port,
    dir,
    process: child,
    ssh({ user, key, certificate, command }) {
      const args = ['-F', '/dev/null', '-p', String(port), '-i', key, '-o', `CertificateFile=${certificate}`, '-o', 'IdentitiesOnly=yes',
        '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'PasswordAuthentication=no',
        '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, command];
      try {
        const stdout = execFileSync('ssh', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SSH_AUTH_SOCK: '' }, timeout: 30_000 });
        return { status: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { status: number | null; stdout?: string; stderr?: string };
        return { status: e.status ?? -1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}\n--- sshd log ---\n${log}` };
      }
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

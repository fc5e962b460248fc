// `npm run demo`: the whole sshca story on the embedded default, no AWS
// account needed. Everything lives in a temp dir that is removed at the end.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BOOTSTRAP_SCRIPT, SSHD, ensureLoginAccount, freePort, openSshServerInstalled, waitForPort } from './throwaway-sshd.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');
const SERVER = join(dist, 'server', 'bin', 'sshca-server.js');
const CLI = join(dist, 'cli', 'sshca.cjs');
let step = 0;
const say = (s: string) => process.stdout.write(`${s}\n`);
const heading = (s: string) => say(`\n==> ${++step}. ${s}`);
const indent = (s: string) => s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

/** Starts `sshca-server --dev` and resolves with its URL once it listens. */
async function startServer(dataDir: string, devUser: string, logFile: string): Promise<{ child: ChildProcess; url: string; banner: string }> {
  const child = spawn(process.execPath, [SERVER, '--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', devUser], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SSHCA_LOG_LEVEL: 'info' },
  });
  const { createWriteStream } = await import('node:fs');
  child.stdout?.pipe(createWriteStream(logFile));
  let banner = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${banner}`)), 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      banner += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(banner);
      if (m && /--profile \S+\n/.test(banner)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${banner}`)));
  });
  return { child, url, banner };
}

/** A root for the bootstrap: an sshd_config that reads the drop-ins first, one host key, a loopback port. */
async function prepareInstanceRoot(root: string): Promise<{ root: string; sshdConfig: string; hostKey: string; port: number }> {
  const etc = join(root, 'etc', 'ssh');
  mkdirSync(join(etc, 'sshd_config.d'), { recursive: true });
  // sshd reads the principals file as the logging-in user: the path must be traversable (the work dir is 0700).
  chmodSync(join(root, '..'), 0o711);
  chmodSync(root, 0o755);
  const hostKey = join(etc, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const port = await freePort();
  const sshdConfig = join(etc, 'sshd_config');
  // The distribution's part; the bootstrap adds its own drop-in (read first) and checks what sshd -T enforces.
  writeFileSync(sshdConfig, [`Include ${join(etc, 'sshd_config.d')}/*.conf`, `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `PidFile ${join(root, 'sshd.pid')}`, 'UsePAM no', 'StrictModes no', ''].join('\n'));
  return { root, sshdConfig, hostKey, port };
}

/** sshd on the instance root's configuration, logging to a file (the demo's ssh calls block this process). */
async function startInstanceSshd(instance: { root: string; sshdConfig: string; port: number }): Promise<{ child: ChildProcess; log: () => string }> {
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const logFile = join(instance.root, 'sshd.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const child = spawn(SSHD, ['-D', '-E', logFile, '-f', instance.sshdConfig], { stdio: 'ignore' });
  try {
    await waitForPort(instance.port, child, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${log()}`);
  }
  return { child, log };
}

function sshca(args: string[], env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'sshca-demo-'));
  const dataDir = join(work, 'data');
  const home = join(work, 'home');
  let server: ChildProcess | undefined;
  let sshd: ChildProcess | undefined;
  let ok = true;
  try {
    const haveSshd = openSshServerInstalled();
    const account = haveSshd ? ensureLoginAccount('sshca-demo') : process.env.USER ?? 'developer';
    heading('start the sshca server on the embedded default (no AWS account needed)');
    say(`    sshca-server --dev --port 0 --data-dir ${dataDir} --dev-user ${account}`);
    const started = await startServer(dataDir, account, join(work, 'server.log'));
    server = started.child;
    say(indent(started.banner));

    heading('sshca login: a presigned STS GetCallerIdentity proves who we are; the server returns a certificate');
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      AWS_SHARED_CREDENTIALS_FILE: join(dataDir, 'aws-credentials'),
      AWS_CONFIG_FILE: join(home, '.aws', 'config'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    say(`    AWS_SHARED_CREDENTIALS_FILE=${env.AWS_SHARED_CREDENTIALS_FILE} sshca login --server ${started.url} --profile sshca-dev`);
    const login = sshca(['login', '--server', started.url, '--profile', 'sshca-dev'], env);
    say(indent(login.out));
    if (login.status !== 0) throw new Error('login failed');
    const cert = join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub');

    heading('what OpenSSH sees in the certificate (ssh-keygen -L)');
    say(indent(execFileSync('ssh-keygen', ['-L', '-f', cert], { encoding: 'utf8' })));
    say(indent(sshca(['status'], env).out));

    heading('an instance: sshca-bootstrap configures sshd and gets a host certificate');
    if (!haveSshd) {
      say('    sshd is not installed, so this step is skipped. Install it with:\n      sudo apt-get install openssh-server');
    } else {
      // This machine plays the dev instance (docs/deploy.md); its sshd lives under a root in the work dir.
      const instance = await prepareInstanceRoot(join(work, 'instance'));
      const pin = execFileSync('ssh-keygen', ['-l', '-f', '-'], { input: await (await fetch(`${started.url}/v1/ca/user.pub`)).text(), encoding: 'utf8' }).split(' ')[1]!;
      const bootstrapArgs = ['--server', started.url, '--ca-fingerprint', pin, '--allow', `${account}=${account}`, '--host-certificates', '--imds', `${started.url}/dev/imds`, '--root', instance.root];
      say(`    sshca-bootstrap ${bootstrapArgs.join(' ')}`);
      say('    (trusted user CA pinned by fingerprint, principals per account, the KRL, no passwords or root; then IMDSv2 → the');
      say('     instance identity role → POST /v1/certs/host: the server asks EC2 which instance this is and signs its host key)');
      const installed = spawnSync('sh', [BOOTSTRAP_SCRIPT, ...bootstrapArgs], { encoding: 'utf8' });
      say(indent(installed.stderr.split('\n').filter((l) => /host certificate|done:/.test(l)).join('\n')));
      if (installed.status !== 0) throw new Error(`the bootstrap failed (${installed.status}):\n${installed.stderr}`);
      say(indent(execFileSync('ssh-keygen', ['-L', '-f', `${instance.hostKey}-cert.pub`], { encoding: 'utf8' }).split('\n').filter((l) => /Type|Signing CA|Principals|^\s{16}|Valid/.test(l)).join('\n')));
      const started_ = await startInstanceSshd(instance);
      sshd = started_.child;
      say(`    sshd -f ${instance.sshdConfig}  (port ${instance.port})`);

      heading('sshca config: trust the host CA with one @cert-authority line, and its revocation list');
      say('    sshca config --host 127.0.0.1 --write');
      const config = sshca(['config', '--server', started.url, '--host', '127.0.0.1', '--write'], env);
      say(indent(config.out));
      say(indent(readFileSync(join(home, '.ssh', 'sshca', 'known_hosts'), 'utf8').split('\n').filter((l) => l.startsWith('@cert-authority')).map((l) => `${l.slice(0, 90)}…`).join('\n')));
      ok &&= config.status === 0;
      const ssh = (command: string) =>
        sshca(['ssh', '--server', started.url, '--profile', 'sshca-dev', '--', '-F', '/dev/null', '-p', String(instance.port), '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${account}@127.0.0.1`, command], { ...env, SSH_AUTH_SOCK: '' });

      heading(`sshca ssh ${account}@127.0.0.1: StrictHostKeyChecking yes, nothing in known_hosts, no "are you sure?"`);
      const first = ssh('echo "hello from $(id -un), logged in with an sshca certificate to a host with an sshca host certificate"');
      say(indent(first.status === 0 ? first.out : `ssh failed (${first.status}):\n${first.out}\n--- sshd log ---\n${started_.log()}`));
      ok &&= first.status === 0;

      heading('revoke the user certificate; after the instance refreshes its KRL, sshd refuses it');
      const cert = join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub');
      const serial = /Serial: (\d+)/.exec(execFileSync('ssh-keygen', ['-L', '-f', cert], { encoding: 'utf8' }))?.[1] ?? '';
      say(`    sshca revoke --serial ${serial} --reason "demo: laptop stolen"`);
      const revoke = sshca(['revoke', '--serial', serial, '--reason', 'demo: laptop stolen', '--server', started.url, '--profile', 'sshca-dev'], env);
      say(indent(revoke.out));
      say(`    sshca-bootstrap --refresh --root ${instance.root}   (what the instance's timer runs)`);
      const refreshed = spawnSync('sh', [BOOTSTRAP_SCRIPT, '--refresh', '--root', instance.root], { encoding: 'utf8' });
      // sshca ssh would log in again by itself (a new certificate); plain ssh with the revoked one is refused.
      const again = spawnSync('ssh', ['-F', '/dev/null', '-p', String(instance.port), '-i', join(home, '.ssh', 'sshca', 'id_ed25519'), '-o', `CertificateFile=${cert}`, '-o', 'IdentitiesOnly=yes',
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(home, '.ssh', 'sshca', 'known_hosts')}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${account}@127.0.0.1`, 'echo should-not-run'],
        { encoding: 'utf8', env: { ...process.env, SSH_AUTH_SOCK: '' } });
      say(indent(again.status === 0 ? 'ssh still succeeded (unexpected)' : `ssh refused (exit ${again.status}): the certificate is revoked`));
      ok &&= revoke.status === 0 && refreshed.status === 0 && again.status !== 0;
      say('    sshca login   (a fresh certificate has a new serial and works again)');
      const relogin = sshca(['login', '--server', started.url, '--profile', 'sshca-dev'], env);
      const back = ssh('echo "logged in again with a new certificate"');
      say(indent(back.status === 0 ? back.out : `ssh failed (${back.status})`));
      ok &&= relogin.status === 0 && back.status === 0;

      heading('revoke the host key; after sshca login refreshes RevokedHostKeys, ssh refuses the host');
      say(`    sshca revoke --public-key ${instance.hostKey}.pub --reason "demo: host key leaked"`);
      const revokeHost = sshca(['revoke', '--public-key', `${instance.hostKey}.pub`, '--reason', 'demo: host key leaked', '--server', started.url, '--profile', 'sshca-dev'], env);
      say(indent(revokeHost.out));
      sshca(['login', '--server', started.url, '--profile', 'sshca-dev'], env);
      const refused = ssh('echo should-not-run');
      say(indent(refused.status === 0 ? 'ssh still succeeded (unexpected)' : `ssh refused the host (exit ${refused.status}): its key is revoked`));
      ok &&= revokeHost.status === 0 && refused.status !== 0;
    }

    heading('asking for principal root is refused by policy');
    say('    sshca login --principal root');
    const root = sshca(['login', '--server', started.url, '--profile', 'sshca-dev', '--principal', 'root'], env);
    say(indent(`${root.out}exit code ${root.status}`));
    ok &&= root.status === 3;

    heading('the audit record: every certificate and every refusal, chained and signed');
    say('    sshca audit list            (the dev user holds the auditor role in the generated dev policy)');
    const list = sshca(['audit', 'list', '--server', started.url, '--profile', 'sshca-dev'], env);
    say(indent(list.out));
    ok &&= list.status === 0;
    say('    sshca audit anchor          (the signed chain head, published outside the database: here <data dir>/anchors)');
    const anchor = sshca(['audit', 'anchor', '--server', started.url, '--profile', 'sshca-dev'], env);
    say(indent(anchor.out));
    ok &&= anchor.status === 0;
    say('    sshca audit verify          (hash chain, checkpoint signatures and anchors, checked by the client)');
    const verify = sshca(['audit', 'verify', '--server', started.url, '--profile', 'sshca-dev'], env);
    say(indent(verify.out));
    ok &&= verify.status === 0;
  } catch (err) {
    ok = false;
    say(`\ndemo failed: ${(err as Error).message}`);
  } finally {
    heading('clean up');
    if (sshd && sshd.exitCode === null) {
      const exited = new Promise((r) => sshd!.once('exit', r));
      sshd.kill('SIGTERM');
      await exited;
    }
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
    say(`    stopped sshd and the server, removed ${work}`);
  }
  say(ok ? '\ndemo finished: certificate issued, the host known by its host certificate (strict checking, empty known_hosts), ssh login accepted, revoked certificate and revoked host key refused, root refused, all on the verified record.' : '\ndemo did not finish cleanly (see above).');
  return ok ? 0 : 1;
}

process.exitCode = await main();

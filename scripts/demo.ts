// `npm run demo`: the whole sshca story on the embedded default, no AWS
// account needed. Everything lives in a temp dir that is removed at the end.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLoginAccount, openSshServerInstalled, startThrowawaySshd, type ThrowawaySshd } from './throwaway-sshd.js';

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

function sshca(args: string[], env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'sshca-demo-'));
  const dataDir = join(work, 'data');
  const home = join(work, 'home');
  let server: ChildProcess | undefined;
  let sshd: ThrowawaySshd | undefined;
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

    heading('a throwaway sshd on 127.0.0.1 that trusts only the CA (no authorized_keys, no passwords, no root)');
    if (!haveSshd) {
      say('    sshd is not installed, so this step is skipped. Install it with:\n      sudo apt-get install openssh-server');
    } else {
      const trusted = await (await fetch(`${started.url}/v1/ca/user.pub`)).text();
      const krlPath = join(work, 'revoked.krl');
      const refreshKrl = async () => writeFileSync(krlPath, Buffer.from(await (await fetch(`${started.url}/v1/krl`)).arrayBuffer()));
      await refreshKrl();
      sshd = await startThrowawaySshd(join(work, 'sshd'), trusted, { revokedKeys: krlPath });
      say(`    sshd -f ${join(work, 'sshd', 'sshd_config')}  (port ${sshd.port}, TrustedUserCAKeys from GET /v1/ca/user.pub, RevokedKeys from GET /v1/krl)`);
      heading(`ssh ${account}@127.0.0.1 with the certificate`);
      const r = sshd.ssh({ user: account, key: join(home, '.ssh', 'sshca', 'id_ed25519'), certificate: cert, command: 'echo "hello from $(id -un) on $(hostname), logged in with an sshca certificate"' });
      say(indent(r.status === 0 ? r.stdout : `ssh failed (${r.status}):\n${r.stderr}`));
      ok &&= r.status === 0;

      heading('revoke that certificate; after one KRL refresh sshd refuses it');
      const serial = /Serial: (\d+)/.exec(execFileSync('ssh-keygen', ['-L', '-f', cert], { encoding: 'utf8' }))?.[1] ?? '';
      say(`    sshca revoke --serial ${serial} --reason "demo: laptop stolen"`);
      const revoke = sshca(['revoke', '--serial', serial, '--reason', 'demo: laptop stolen', '--server', started.url, '--profile', 'sshca-dev'], env);
      say(indent(revoke.out));
      await refreshKrl();
      say('    (instance refresh: GET /v1/krl → RevokedKeys)');
      const again = sshd.ssh({ user: account, key: join(home, '.ssh', 'sshca', 'id_ed25519'), certificate: cert, command: 'echo should-not-run' });
      say(indent(again.status === 0 ? 'ssh still succeeded (unexpected)' : `ssh refused (exit ${again.status}): the certificate is revoked`));
      ok &&= revoke.status === 0 && again.status !== 0;
      say('    sshca login   (a fresh certificate has a new serial and works again)');
      const relogin = sshca(['login', '--server', started.url, '--profile', 'sshca-dev'], env);
      const back = sshd.ssh({ user: account, key: join(home, '.ssh', 'sshca', 'id_ed25519'), certificate: cert, command: 'echo "logged in again with a new certificate"' });
      say(indent(back.status === 0 ? back.stdout : `ssh failed (${back.status})`));
      ok &&= relogin.status === 0 && back.status === 0;
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
    say('    sshca audit verify          (hash chain and checkpoint signatures, checked by the client)');
    const verify = sshca(['audit', 'verify', '--server', started.url, '--profile', 'sshca-dev'], env);
    say(indent(verify.out));
    ok &&= verify.status === 0;
  } catch (err) {
    ok = false;
    say(`\ndemo failed: ${(err as Error).message}`);
  } finally {
    heading('clean up');
    await sshd?.stop();
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
    say(`    stopped sshd and the server, removed ${work}`);
  }
  say(ok ? '\ndemo finished: certificate issued, ssh login accepted, root refused, revoked certificate refused, all on the verified record.' : '\ndemo did not finish cleanly (see above).');
  return ok ? 0 : 1;
}

process.exitCode = await main();

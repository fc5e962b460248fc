// The client package (client/package.json) as an engineer gets it: `npm pack`
// in client/, then `npm install -g` of the tarball into an empty prefix with
// no registry to reach and an empty npm cache, so anything it needed beyond
// the tarball would fail the install. The install holds the bundle alone (no
// dependencies, no native code, under 5 MB), and the `sshca` it puts on PATH
// logs in against the dev server, reports status and gets into a real sshd.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ensureLoginAccount, startThrowawaySshd } from '../../scripts/throwaway-sshd.js';
import { devLoginEnv, runInstalled } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLIENT = join(ROOT, 'client');
const MAX_UNPACKED_BYTES = 5 * 1024 * 1024;

interface PackageJson {
  name: string;
  version: string;
  bin?: Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  bundleDependencies?: unknown;
  bundledDependencies?: unknown;
}
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as PackageJson;

/** Every file under `dir` (symlinks not followed), relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => lstatSync(join(dir, f)).isFile());
}

/**
 * npm with nothing to fetch from: a registry address where nothing listens,
 * an empty cache, empty user and global config files (no machine's .npmrc
 * can add a mirror), offline. The npm_* variables of the `npm test` that
 * runs this file are dropped so its settings do not leak in.
 */
function isolatedNpmEnv(dir: string): NodeJS.ProcessEnv {
  for (const file of ['user-npmrc', 'global-npmrc']) writeFileSync(join(dir, file), '');
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return {
    ...inherited,
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_offline: 'true',
    npm_config_cache: join(dir, 'npm-cache'),
    npm_config_userconfig: join(dir, 'user-npmrc'),
    npm_config_globalconfig: join(dir, 'global-npmrc'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
}

t.test('the packed client installs offline into an empty prefix: no dependencies, no native code, under 5 MB', async (t) => {
  const rootVersion = readJson(join(ROOT, 'package.json')).version;
  const manifest = readJson(join(CLIENT, 'package.json'));
  t.equal(manifest.version, rootVersion, 'client/package.json has the repository version');
  const bin = manifest.bin?.sshca;
  if (!bin || !existsSync(join(CLIENT, bin))) {
    t.fail(`client/${bin ?? '(no bin.sshca)'} is missing: \`npm run build\` bundles the client before the tests`);
    return;
  }

  // Outside the repository, and with no node_modules above it: the installed
  // sshca can only load what the tarball brought.
  const tmp = mkdtempSync(join(tmpdir(), 'sshca-client-package-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  for (let d = tmp; d !== dirname(d); d = dirname(d)) t.notOk(existsSync(join(dirname(d), 'node_modules')), `no node_modules above the install (${dirname(d)})`);
  const npmEnv = isolatedNpmEnv(tmp);

  // --ignore-scripts: prepack would bundle again, rewriting dist/cli/ while
  // other test files run it; the build before the tests made client/dist/.
  const packed = await execFileAsync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: CLIENT, env: npmEnv, encoding: 'utf8' });
  const [pack] = JSON.parse(packed.stdout) as Array<{ name: string; filename: string; unpackedSize: number; files: Array<{ path: string }> }>;
  t.ok(pack, 'npm pack made one tarball');
  if (!pack) return;
  t.equal(pack.name, manifest.name, `the package is ${manifest.name}`);
  const packedPaths = pack.files.map((f) => f.path);
  t.same(packedPaths.filter((p) => p !== 'package.json' && !p.startsWith('dist/')), [], 'the tarball holds package.json and the bundle (dist/) only');
  t.ok(packedPaths.includes(bin.replace(/^\.\//, '')), `with the bin entry (${bin})`);
  t.same(packedPaths.filter((p) => /\.(ts|map|node)$/.test(p)), [], 'no sources, source maps or native modules');
  t.ok(pack.unpackedSize < MAX_UNPACKED_BYTES, `npm counts ${pack.unpackedSize} bytes unpacked`);
  // The one install command the docs give names this tarball (a version bump renames it).
  for (const doc of ['README.md', join('docs', 'client.md')]) t.ok(readFileSync(join(ROOT, doc), 'utf8').includes(`npm install -g ${pack.filename}`), `${doc} installs ${pack.filename}`);

  const prefix = join(tmp, 'prefix');
  mkdirSync(prefix);
  const started = Date.now();
  await execFileAsync('npm', ['install', '--global', '--prefix', prefix, '--offline', join(tmp, pack.filename)], { cwd: tmp, env: npmEnv, encoding: 'utf8' });
  const seconds = (Date.now() - started) / 1000;
  t.comment(`npm install -g of ${pack.filename}: ${seconds.toFixed(1)} s`);
  // Seconds, not the minutes the server's dependency tree takes; loose, for a machine busy with the other test files.
  t.ok(seconds < 30, `installed in ${seconds.toFixed(1)} s`);

  const modules = join(prefix, 'lib', 'node_modules');
  const [scope, name] = manifest.name.startsWith('@') ? manifest.name.split('/') : [undefined, manifest.name];
  t.same(readdirSync(modules), [scope ?? name], 'the prefix holds the one package');
  const installed = join(modules, manifest.name);
  const pkg = readJson(join(installed, 'package.json'));
  t.equal(pkg.version, rootVersion, 'the installed version');
  for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies', 'bundledDependencies'] as const) {
    t.notOk(pkg[field] && Object.keys(pkg[field]).length > 0, `no ${field}`);
  }
  t.same(Object.keys(pkg.scripts ?? {}).filter((s) => /^(pre|post)?install$/.test(s)), [], 'no install scripts');
  t.same(existsSync(join(installed, 'node_modules')) ? readdirSync(join(installed, 'node_modules')) : [], [], 'no node_modules inside the package');
  t.same(filesUnder(prefix).filter((f) => f.endsWith('.node')), [], 'no native module anywhere in the prefix');
  const bytes = filesUnder(installed).reduce((n, f) => n + statSync(join(installed, f)).size, 0);
  t.ok(bytes < MAX_UNPACKED_BYTES, `${bytes} bytes installed (at most ${MAX_UNPACKED_BYTES})`);

  // A PATH as an engineer's shell has it: the prefix's bin, node, the system.
  const PATH = [join(prefix, 'bin'), dirname(process.execPath), '/usr/bin', '/bin'].join(':');
  t.equal(execFileSync('sh', ['-c', 'command -v sshca'], { env: { PATH }, encoding: 'utf8' }).trim(), join(prefix, 'bin', 'sshca'), 'sshca on PATH is the installed one');
  const version = await runInstalled('sshca', ['--version'], { PATH, HOME: join(tmp, 'home') });
  t.equal(version.code, 0, `sshca --version exits 0: ${version.stderr}`);
  t.equal(version.stdout.trim(), `sshca ${rootVersion}`, 'sshca --version names the package version');

  await t.test('login, status and ssh with the installed sshca: dev server, real sshd', needsOpenSsh, async (t) => {
    const user = ensureLoginAccount('sshcatest');
    const dev = await startDevServer(t, { devUser: user });
    const home = join(tmp, 'home');
    const env = { ...devLoginEnv(dev.dataDir, home), PATH, SSH_AUTH_SOCK: '' };
    const sshca = (...args: string[]) => runInstalled('sshca', args, env);
    const withServer = ['--server', dev.url, '--profile', 'sshca-dev'];

    const login = await sshca('login', ...withServer, '--json');
    t.equal(login.code, 0, `login exits 0: ${login.stderr}`);
    const issued = JSON.parse(login.stdout) as { serial: string };

    // Both entry paths: plain status is answered by the CommonJS entry alone, --json by the full CLI.
    const status = await sshca('status');
    t.equal(status.code, 0, `status exits 0 (valid): ${status.stderr}`);
    const statusJson = await sshca('status', '--json');
    t.equal(statusJson.code, 0, `status --json exits 0: ${statusJson.stderr}`);
    t.match(JSON.parse(statusJson.stdout), { state: 'valid', serial: issued.serial }, 'status reads the certificate login wrote');

    const sshd = await startThrowawaySshd(join(tmp, 'sshd'), await (await fetch(`${dev.url}/v1/ca/user.pub`)).text());
    t.teardown(() => sshd.stop());
    const sshOptions = ['-F', '/dev/null', '-p', String(sshd.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'LogLevel=ERROR'];
    const ssh = await sshca('ssh', ...withServer, '--', ...sshOptions, `${user}@127.0.0.1`, 'echo via-installed-sshca; id -un');
    t.equal(ssh.code, 0, `sshca ssh exits with ssh's 0: ${ssh.stderr}`);
    t.same(ssh.stdout.trim().split('\n'), ['via-installed-sshca', user], 'the remote command ran as the principal');
  });
});

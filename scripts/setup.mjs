// Installs what `npm test` and `npm run demo` need on a fresh Debian
// machine: npm packages, and (as root, via apt-get) openssh-server. Plain
// Node with no dependencies, because it runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'test';
const strict = purpose === 'test' && process.env.CI === 'true';
const log = (s) => process.stderr.write(`setup: ${s}\n`);

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

// npm packages: (re)install when node_modules is missing or older than the lockfile.
const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  log('installing npm packages (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

// OpenSSH: tests and the demo check certificates with the real ssh-keygen, ssh and sshd.
const have = (bin) => existsSync(bin);
if (!have('/usr/sbin/sshd') || !have('/usr/bin/ssh-keygen') || !have('/usr/bin/ssh')) {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && have('/usr/bin/apt-get')) {
    log('installing openssh-server and openssh-client (apt-get)');
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-qq', 'openssh-server', 'openssh-client'], { stdio: 'inherit', env });
    } catch (err) {
      log(`apt-get failed: ${err.message}`);
    }
  }
  if (!have('/usr/sbin/sshd') || !have('/usr/bin/ssh-keygen')) {
    const hint = 'install it with: sudo apt-get install openssh-server openssh-client';
    if (strict) {
      log(`OpenSSH is missing and CI=true: the real-sshd tests cannot be skipped; ${hint}`);
      process.exit(1);
    }
    log(`OpenSSH (sshd/ssh-keygen) is missing; tests and the demo that need it will say so. ${hint}`);
  }
}

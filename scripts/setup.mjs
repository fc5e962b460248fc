// Installs what `npm test` and `npm run demo` need on a fresh Debian
// machine: npm packages, and (as root, via apt-get) openssh-server,
// ssh-audit, chromium and postgresql. Plain
// Node with no dependencies, because it runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

const isRoot = process.getuid?.() === 0;
const aptInstall = (packages) => {
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  } catch (err) {
    log(`apt-get failed: ${err.message}`);
  }
};

// OpenSSH: tests and the demo check certificates with the real ssh-keygen, ssh and sshd.
const have = (bin) => existsSync(bin);
if (!have('/usr/sbin/sshd') || !have('/usr/bin/ssh-keygen') || !have('/usr/bin/ssh')) {
  if (isRoot && have('/usr/bin/apt-get')) {
    log('installing openssh-server and openssh-client (apt-get)');
    aptInstall(['openssh-server', 'openssh-client']);
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

/**
 * A Debian package one test needs (`bin` is what it runs): installed as root;
 * missing, the test skips, except under CI=true, where setup fails instead.
 */
function testTool(bin, pkg, what) {
  if (purpose !== 'test' || have(bin)) return;
  if (isRoot && have('/usr/bin/apt-get')) {
    log(`installing ${pkg} (apt-get)`);
    aptInstall([pkg]);
  }
  if (have(bin)) return;
  const hint = `install it with: sudo apt-get install ${pkg}`;
  if (strict) {
    log(`${pkg} is missing and CI=true: ${what} cannot be skipped; ${hint}`);
    process.exit(1);
  }
  log(`${pkg} is missing; ${what} will be skipped. ${hint}`);
}

// ssh-audit: the instance bootstrap's sshd configuration is checked by an outside audit.
testTool('/usr/bin/ssh-audit', 'ssh-audit', 'the hardening audit test');
// Chromium: the audit view (sshca audit ui) is tested in a real headless browser.
testTool('/usr/bin/chromium', 'chromium', "the audit view's browser test");

// PostgreSQL: the shared audit store is tested against a real server (tests start their own cluster).
const havePostgres = () => existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(join('/usr/lib/postgresql', v, 'bin', 'initdb')));
if (purpose === 'test' && !havePostgres()) {
  if (isRoot && have('/usr/bin/apt-get')) {
    log('installing postgresql (apt-get)');
    aptInstall(['postgresql']);
  }
  if (!havePostgres()) {
    if (strict) {
      log('PostgreSQL is missing and CI=true: the PostgreSQL store tests cannot be skipped; install it with: sudo apt-get install postgresql');
      process.exit(1);
    }
    log('PostgreSQL is missing; its store tests will be skipped. Install it with: sudo apt-get install postgresql');
  }
}

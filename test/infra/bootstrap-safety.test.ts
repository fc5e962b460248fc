// The bootstrap's refusals and its slow paths: URLs it will not talk to,
// redirects, a configuration it cannot override (previous state kept byte
// for byte), a first boot before the server is up, the allow map changed
// after boot, and an outside audit (ssh-audit) of the sshd it configures.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createConnection, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount, freePort } from '../../scripts/throwaway-sshd.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { bootstrap, effectiveConfig, fakeTools, prepareDistroRoot, prepareInstanceRoot, sshLogin, startInstanceSshd, startLoggingSshd } from '../fixtures/instance.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { startRelay } from '../fixtures/relay.js';

/** Every file under dir (recursively) with its bytes and mode. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${p}/`, String(statSync(p).mode));
        walk(p);
      } else out.set(p, `${statSync(p).mode} ${readFileSync(p).toString('base64')}`);
    }
  };
  walk(dir);
  return out;
}

async function pinOf(url: string): Promise<string> {
  return fingerprintOf(parsePublicKeyLine((await (await fetch(`${url}/v1/ca/user.pub`)).text()).trim()).blob);
}

t.test('URL tricks and redirects are refused; nothing is written', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = await pinOf(dev.url);
  const { root, etc } = await prepareInstanceRoot(t);
  const before = snapshot(root);
  const port = new URL(dev.url).port;
  for (const server of [`http://127.0.0.1:1@127.0.0.1:${port}`, 'http://127.0.0.1:1@elsewhere', 'https://user@sshca.example.com', 'http://sshca.example.com',
    `http://127.0.0.1.nip.io:${port}`, 'https://sshca.example.com/v1/', 'https://sshca.example.com/?x=1', 'https://sshca.example.com#frag', 'ftp://sshca.example.com',
    'https://sshca.example.com.', 'https://sshca.example.com:', 'https://sshca.example.com:99999']) {
    const r = await bootstrap(['--server', server, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', root]);
    t.equal(r.code, 2, `${server} refused as usage (${r.stderr.trim().split('\n')[0]})`);
  }
  t.same(snapshot(root), before, 'nothing written');

  // A server that redirects to the real one: never followed.
  const redirector = createServer((req, res) => {
    res.writeHead(302, { location: `${dev.url}${req.url ?? '/'}` });
    res.end();
  });
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  t.teardown(() => redirector.close());
  const via = `http://127.0.0.1:${(redirector.address() as { port: number }).port}`;
  const r = await bootstrap(['--server', via, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', root]);
  t.equal(r.code, 1, 'a redirect is a refusal');
  t.match(r.stderr, /answered with a redirect \(HTTP 302\); redirects are never followed/);
  t.same(snapshot(root), before, 'nothing written');
  t.notOk(existsSync(join(etc, 'sshca')));
});

t.test('a directive above the Include, a Match block, quoting sshd reads differently, a principals command: refused, previous state byte for byte', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = await pinOf(dev.url);
  for (const [name, edit, where] of [
    ['above the Include', (c: string) => `PasswordAuthentication yes\n${c}`, /sshd enforces passwordauthentication yes \(not no\): set at .*\/etc\/ssh\/sshd_config:1: passwordauthentication yes/],
    ['a Match block', (c: string) => `${c}\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes\n`, /a Match block changes passwordauthentication to yes at .*\/etc\/ssh\/sshd_config:\d+/],
    // sshd reads quoted keywords and quoted Include paths too; the bootstrap cannot follow them the same way, so it fails closed.
    ['a quoted Match', (c: string) => `${c}\n"Match" Address 10.0.0.0/8\n  PasswordAuthentication yes\n`, /cannot read .*\/etc\/ssh\/sshd_config:\d+ the way sshd does/],
    ['a quoted keyword in a Match block', (c: string) => `${c}\nMatch Address 10.0.0.0/8\n  "PermitRootLogin" yes\n`, /cannot read .*\/etc\/ssh\/sshd_config:\d+ the way sshd does/],
    ['a quoted Include', (c: string) => `${c}\nInclude "/nonexistent dir/*.conf"\n`, /cannot read .*\/etc\/ssh\/sshd_config:\d+ the way sshd does/],
    // A principals command is checked as well as the principals file: any certificate could log in as anyone.
    ['an AuthorizedPrincipalsCommand', (c: string) => `AuthorizedPrincipalsCommand /bin/echo ops\nAuthorizedPrincipalsCommandUser nobody\n${c}`, /sshd enforces authorizedprincipalscommand \/bin\/echo ops \(not none\): set at .*\/etc\/ssh\/sshd_config:1/],
  ] as const) {
    const instance = await prepareDistroRoot(t, 'debian-cloud-init');
    writeFileSync(instance.sshdConfig, edit(readFileSync(instance.sshdConfig, 'utf8')));
    const before = snapshot(instance.root);
    const r = await bootstrap(['--server', dev.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', instance.root]);
    t.equal(r.code, 1, name);
    t.match(r.stderr, where, `${name}: names the file and line`);
    t.match(r.stderr, /restored the previous state \(nothing changed\)/);
    t.same(snapshot(instance.root), before, `${name}: every file under the root as it was`);
  }
});

t.test('first boot with the server down, then up; the allow map changes on refresh', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: 'alice' });
  const pin = await pinOf(dev.url);
  const instance = await prepareInstanceRoot(t);
  const { root, etc } = instance;
  const port = await freePort(); // nothing listens here yet
  const url = `http://127.0.0.1:${port}`;
  const sshBefore = snapshot(etc);
  const first = await bootstrap(['--server', url, '--ca-fingerprint', pin, '--allow', `${user}=alice`, '--root', root]);
  t.equal(first.code, 3, 'exit 3: pending');
  t.match(first.stderr, /cannot reach the sshca server/);
  t.same(snapshot(etc), sshBefore, 'sshd is exactly as it was (nothing under etc/ssh changed)');
  const settings = join(root, 'etc', 'sshca', 'bootstrap.conf');
  t.match(readFileSync(settings, 'utf8'), new RegExp(`^ca-fingerprint=${pin.replace(/[+/]/g, '\\$&')}$`, 'm'), 'the pin is kept in the settings');
  t.ok(existsSync(join(root, 'etc', 'systemd', 'system', 'sshca-refresh.timer')), 'and the timer is installed');
  t.match(readFileSync(join(root, 'etc', 'systemd', 'system', 'sshca-refresh.service'), 'utf8'), /ExecStart=\/usr\/local\/sbin\/sshca-bootstrap --refresh --root /);
  t.equal((await bootstrap(['--refresh', '--root', root])).code, 3, 'a refresh while still down: still pending');

  // The server comes up at that address (a TCP relay to the dev server).
  const devPort = Number(new URL(dev.url).port);
  const relay = createTcpServer((s) => {
    const up = createConnection({ host: '127.0.0.1', port: devPort });
    s.pipe(up).pipe(s);
    s.on('error', () => up.destroy());
    up.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => relay.listen(port, '127.0.0.1', r));
  t.teardown(() => relay.close());
  const later = await bootstrap(['--refresh', '--root', root]);
  t.equal(later.code, 0, later.stderr);
  const eff = await effectiveConfig(join(etc, 'sshd_config'), user);
  t.equal(eff.get('passwordauthentication'), 'no');
  t.equal(eff.get('trustedusercakeys'), join(etc, 'sshca', 'trusted_user_ca_keys'), 'the timer run completed the bootstrap');

  await startInstanceSshd(t, instance);
  const home = t.testdir();
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], devLoginEnv(dev.dataDir, home))).code, 0);
  const key = join(home, '.ssh', 'sshca', 'id_ed25519');
  t.equal(await sshLogin(instance.port, user, key, `${key}-cert.pub`), 0, 'alice logs in');
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(dev.dataDir, 'ca', 'user-ed25519.pem'), 'ed25519') });
  const serial = randomSerial();
  const now = Math.floor(Date.now() / 1000);
  const deploy = await ca.issue({ kind: 'user', publicKey: parsePublicKeyLine(readFileSync(`${key}.pub`, 'utf8')), serial, keyId: keyIdFor('deploy', serial), principals: ['deploy'], validAfter: now - 60, validBefore: now + 600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  const deployCert = join(home, 'deploy-cert.pub');
  writeFileSync(deployCert, `${deploy.line}\n`);
  t.not(await sshLogin(instance.port, user, key, deployCert), 0, 'the deploy team principal is not allowed yet');

  // Edit the allow map in the settings file: the next refresh applies it.
  writeFileSync(settings, readFileSync(settings, 'utf8').replace(`allow=${user}=alice`, `allow=${user}=deploy`));
  t.equal(readFileSync(join(etc, 'sshca', 'principals', user), 'utf8'), 'alice\n', 'nothing changes before the refresh');
  const refreshed = await bootstrap(['--refresh', '--root', root]);
  t.equal(refreshed.code, 0, refreshed.stderr);
  t.equal(readFileSync(join(etc, 'sshca', 'principals', user), 'utf8'), 'deploy\n');
  t.equal(await sshLogin(instance.port, user, key, deployCert), 0, 'deploy logs in after the refresh');
  t.not(await sshLogin(instance.port, user, key, `${key}-cert.pub`), 0, 'alice no longer does');

  // The allow map is part of the all-or-nothing sshd configuration: a
  // refresh whose effective check fails does not apply an edit to it either.
  const config = join(etc, 'sshd_config');
  const goodConfig = readFileSync(config, 'utf8');
  writeFileSync(config, `PasswordAuthentication yes\n${goodConfig}`);
  writeFileSync(settings, readFileSync(settings, 'utf8').replace(`allow=${user}=deploy`, `allow=${user}=alice`));
  const refused = await bootstrap(['--refresh', '--root', root]);
  t.equal(refused.code, 1, 'the check fails');
  t.equal(readFileSync(join(etc, 'sshca', 'principals', user), 'utf8'), 'deploy\n', 'and the allow map edit is undone with the rest');
  writeFileSync(config, goodConfig);
  t.equal((await bootstrap(['--refresh', '--root', root])).code, 0);
  t.equal(readFileSync(join(etc, 'sshca', 'principals', user), 'utf8'), 'alice\n', 'the next good refresh applies it');
});

t.test('first boot: a CA list but no trust state (HTTP 5xx) is pending, not a failure; a later refresh completes it', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = await pinOf(dev.url);
  for (const status of [503, 500]) {
    const { root, etc } = await prepareInstanceRoot(t);
    const relay = await startRelay(t, dev.url);
    relay.fault = (path) => (path === '/v1/trust-state' ? status : undefined);
    const sshBefore = snapshot(etc);
    const first = await bootstrap(['--server', relay.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', root]);
    t.equal(first.code, 3, `trust state HTTP ${status}: exit 3, pending`);
    t.match(first.stderr, /\[STATE_UNAVAILABLE\]/);
    t.ok(relay.recorded.has('/v1/ca/user.pub'), 'the CA list itself was served');
    t.same(snapshot(etc), sshBefore, 'sshd is exactly as it was: no CA list, no KRL, no drop-in');
    t.ok(existsSync(join(root, 'etc', 'systemd', 'system', 'sshca-refresh.timer')), 'the timer is installed');
    t.match(readFileSync(join(root, 'etc', 'sshca', 'bootstrap.conf'), 'utf8'), /^ca-fingerprint=SHA256:/m, 'with the pin');
    t.equal((await bootstrap(['--refresh', '--root', root])).code, 3, 'still pending while the statement is missing');
    delete relay.fault;
    const later = await bootstrap(['--refresh', '--root', root]);
    t.equal(later.code, 0, later.stderr);
    t.ok(existsSync(join(etc, 'sshca', 'trust-state')), 'completed, with the trust state recorded');
  }
});

t.test('every hardening flag changes what sshd -T enforces, and a refresh keeps it', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = await pinOf(dev.url);
  // Each flag with a value other than its default, and what sshd -T then shows.
  const flags: readonly [flag: string, value: string, keyword: string, effective: string][] = [
    ['--max-auth-tries', '6', 'maxauthtries', '6'],
    ['--login-grace-time', '1m', 'logingracetime', '60'],
    ['--x11-forwarding', 'yes', 'x11forwarding', 'yes'],
    ['--client-alive-interval', '2m', 'clientaliveinterval', '120'],
    ['--client-alive-count-max', '5', 'clientalivecountmax', '5'],
    ['--kex', 'curve25519-sha256,diffie-hellman-group16-sha512', 'kexalgorithms', 'curve25519-sha256,diffie-hellman-group16-sha512'],
    ['--ciphers', 'aes256-gcm@openssh.com,aes256-ctr', 'ciphers', 'aes256-gcm@openssh.com,aes256-ctr'],
    ['--macs', 'hmac-sha2-256-etm@openssh.com', 'macs', 'hmac-sha2-256-etm@openssh.com'],
    ['--host-key-algorithms', 'ssh-ed25519,rsa-sha2-512', 'hostkeyalgorithms', 'ssh-ed25519,rsa-sha2-512'],
  ];
  // Debian's stock file (cloud-init's drop-in after ours) and AL2023's (Red Hat's crypto policy after ours).
  for (const kind of ['debian-cloud-init', 'al2023'] as const) {
    const instance = await prepareDistroRoot(t, kind);
    const install = ['--server', dev.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', instance.root];
    const plain = await bootstrap(install);
    t.equal(plain.code, 0, plain.stderr);
    const defaults = await effectiveConfig(instance.sshdConfig, 'nobody');
    const r = await bootstrap([...install, ...flags.flatMap(([flag, value]) => [flag, value])]);
    t.equal(r.code, 0, r.stderr);
    const check = async (when: string) => {
      const eff = await effectiveConfig(instance.sshdConfig, 'nobody');
      for (const [flag, , keyword, effective] of flags) t.equal(eff.get(keyword), effective, `${kind} ${when}: ${flag} → sshd -T ${keyword} ${effective}`);
    };
    for (const [flag, , keyword, effective] of flags) t.not(defaults.get(keyword), effective, `${kind}: without ${flag}, sshd -T ${keyword} is another value`);
    await check('after the install');
    const refreshed = await bootstrap(['--refresh', '--root', instance.root]);
    t.equal(refreshed.code, 0, refreshed.stderr);
    t.match(refreshed.stderr, /no changes/, 'the refresh reads them back from the settings file');
    await check('after a refresh');
  }
});

t.test("the default algorithm lists follow the installed OpenSSH's version", needsOpenSsh, async (t) => {
  const dropinOf = async (binDir?: string) => {
    const r = await bootstrap(['--print-dropin'], binDir ? { binDir } : {});
    t.equal(r.code, 0, r.stderr);
    return new Map(r.stdout.split('\n').filter((l) => /^(KexAlgorithms|Ciphers|MACs|HostKeyAlgorithms) /.test(l)).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1).split(',')]));
  };
  const newest = await dropinOf();
  t.ok(newest.get('KexAlgorithms')?.includes('sntrup761x25519-sha512@openssh.com'), 'this OpenSSH (8.5 or later) gets the post-quantum key exchange');
  const without = (list: string[] | undefined, ...drop: string[]) => (list ?? []).filter((a) => !drop.includes(a));
  for (const [release, version, dropped] of [
    // Debian 11, Ubuntu 20.04: sshd -t would refuse sntrup761x25519 (added in 8.5).
    ['Debian 11', 'OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023', { KexAlgorithms: ['sntrup761x25519-sha512@openssh.com'] }],
    ['Ubuntu 20.04', 'OpenSSH_8.2p1 Ubuntu-4ubuntu0.13, OpenSSL 1.1.1f  31 Mar 2020', { KexAlgorithms: ['sntrup761x25519-sha512@openssh.com'] }],
    // Amazon Linux 2: nor RSA/SHA-2 certificate algorithms (added in 7.8).
    ['Amazon Linux 2', 'OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017', { KexAlgorithms: ['sntrup761x25519-sha512@openssh.com'], HostKeyAlgorithms: ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'] }],
  ] as const) {
    const { binDir } = fakeTools(t, { sshdVersion: version });
    const lists = await dropinOf(binDir);
    for (const name of ['KexAlgorithms', 'Ciphers', 'MACs', 'HostKeyAlgorithms'] as const) {
      t.same(lists.get(name), without(newest.get(name), ...((dropped as Record<string, readonly string[]>)[name] ?? [])), `${release}: ${name}`);
    }
  }

  // A whole install as on Debian 11 (its version; this machine's sshd judges
  // the lists): sshd -t accepts them, sshd -T enforces them, and the settings
  // file records no list (a later OpenSSH upgrade gets its own defaults).
  const dev = await startDevServer(t);
  const instance = await prepareDistroRoot(t, 'debian-cloud-init');
  const { binDir, calls } = fakeTools(t, { sshdVersion: 'OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023' });
  const r = await bootstrap(['--server', dev.url, '--ca-fingerprint', await pinOf(dev.url), '--allow', 'nobody=alice', '--root', instance.root], { binDir });
  t.equal(r.code, 0, r.stderr);
  t.ok(calls().includes('sshd -V [exit 1]'), 'the version came from sshd -V (as an unknown option, like 8.4 has it)');
  const eff = await effectiveConfig(instance.sshdConfig, 'nobody');
  t.equal(eff.get('kexalgorithms'), without(newest.get('KexAlgorithms'), 'sntrup761x25519-sha512@openssh.com').join(','));
  t.notMatch(readFileSync(join(instance.root, 'etc', 'sshca', 'bootstrap.conf'), 'utf8'), /^(kex|ciphers|macs|host-key-algorithms)=/m);
});

const haveSshAudit = existsSync('/usr/bin/ssh-audit');
t.test('ssh-audit reports no failures for the generated configuration', {
  skip: needsOpenSsh.skip || (process.env.CI !== 'true' && !haveSshAudit ? 'ssh-audit not installed (apt-get install ssh-audit)' : false),
}, async (t) => {
  t.ok(haveSshAudit, 'ssh-audit is installed (npm test installs it with apt-get)');
  const dev = await startDevServer(t);
  const instance = await prepareDistroRoot(t, 'debian-cloud-init');
  const audit = () => new Promise<{ code: number; out: string }>((resolve) => {
    execFile('ssh-audit', ['-n', '-p', String(instance.port), '127.0.0.1'], (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, out: stdout }));
  });
  // Control: the stock configuration fails the audit (ssh-audit exits 3 on a failure).
  let stop = await startLoggingSshd(t, instance);
  const stock = await audit();
  t.equal(stock.code, 3, 'the stock configuration has failures');
  t.match(stock.out, /\[fail\]/);
  await stop();

  const r = await bootstrap(['--server', dev.url, '--ca-fingerprint', await pinOf(dev.url), '--allow', 'nobody=alice', '--root', instance.root]);
  t.equal(r.code, 0, r.stderr);
  stop = await startLoggingSshd(t, instance);
  const hardened = await audit();
  t.not(hardened.code, 3, 'no failure level');
  t.ok([0, 2].includes(hardened.code), `ssh-audit exit ${hardened.code} (0 good, 2 warnings only)`);
  t.notMatch(hardened.out, /\[fail\]/, hardened.out);
  await stop();
});

t.test("options on sshd's command line that touch a promise are refused; an account named . or .. is a usage error", needsOpenSsh, async (t) => {
  const dev = await startDevServer(t);
  const pin = await pinOf(dev.url);
  const instance = await prepareDistroRoot(t, 'debian-cloud-init');
  mkdirSync(join(instance.root, 'etc', 'default'), { recursive: true });
  // Debian's ssh.service runs `sshd -D $SSHD_OPTS`: sshd -T -f never sees these.
  writeFileSync(join(instance.root, 'etc', 'default', 'ssh'), '# Default settings for openssh-server.\nSSHD_OPTS="-o PasswordAuthentication=yes"\n');
  const before = snapshot(instance.root);
  const r = await bootstrap(['--server', dev.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', instance.root]);
  t.equal(r.code, 1);
  t.match(r.stderr, /etc\/default\/ssh:2 starts sshd with -o passwordauthentication/);
  t.same(snapshot(instance.root), before, 'every file as it was');
  // EC2 Instance Connect's unit drop-in passes an AuthorizedKeysCommand: reported, not refused.
  writeFileSync(join(instance.root, 'etc', 'default', 'ssh'), 'SSHD_OPTS=\n');
  mkdirSync(join(instance.root, 'etc', 'systemd', 'system', 'ssh.service.d'), { recursive: true });
  writeFileSync(join(instance.root, 'etc', 'systemd', 'system', 'ssh.service.d', 'ec2-instance-connect.conf'), '[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -o "AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %%u %%f" -o "AuthorizedKeysCommandUser ec2-instance-connect" $SSHD_OPTS\n');
  const eic = await bootstrap(['--server', dev.url, '--ca-fingerprint', pin, '--allow', 'nobody=alice', '--root', instance.root]);
  t.equal(eic.code, 0, eic.stderr);
  t.match(eic.stderr, /ec2-instance-connect\.conf starts sshd with an AuthorizedKeysCommand/);
  const bad = await bootstrap(['--server', dev.url, '--ca-fingerprint', pin, '--allow', '..=alice', '--root', instance.root]);
  t.equal(bad.code, 2);
});

// Host trust end to end on the embedded default (issue 12), every part the
// shipped one: the bootstrap gets host certificates through the dev server's
// IMDSv2 and its shell SigV4 signer, the server asks its EC2 endpoint through
// the AWS SDK, a real sshd presents them, and a real ssh — strict host key
// checking, an empty known_hosts, only what `sshca config` wrote — accepts the
// host, then refuses it once its key is revoked and `sshca login` has
// refreshed RevokedHostKeys.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { ensureLoginAccount } from '../../scripts/throwaway-sshd.js';
import { DEV_INSTANCE_ID } from '../../server/dev/dev-instance.js';
import { devLoginEnv, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { bootstrap, prepareDistroRoot, startLoggingSshd } from '../fixtures/instance.js';
import { keygenList, needsOpenSsh } from '../fixtures/openssh.js';

const execFileAsync = promisify(execFile);

t.test('bootstrap → host certificate → sshca config → strict ssh accepts the host; revoked → refused', needsOpenSsh, async (t) => {
  const user = ensureLoginAccount('sshcatest');
  const dev = await startDevServer(t, { devUser: 'alice' });
  const instance = await prepareDistroRoot(t, 'debian-cloud-init');
  const userCa = (await (await fetch(`${dev.url}/v1/ca/user.pub`)).text()).trim();
  const pin = fingerprintOf(parsePublicKeyLine(userCa).blob);
  const installed = await bootstrap(['--server', dev.url, '--ca-fingerprint', pin, '--allow', `${user}=alice`, '--host-certificates', '--imds', `${dev.url}/dev/imds`, '--root', instance.root]);
  t.equal(installed.code, 0, installed.stderr);
  const hostKey = join(instance.etc, 'ssh_host_ed25519_key');
  const listing = keygenList(`${hostKey}-cert.pub`);
  t.match(listing.type, /host certificate/);
  t.same(listing.principals, [DEV_INSTANCE_ID, 'localhost', '127.0.0.1', '::1'], 'exactly what the dev EC2 says the instance is');
  await startLoggingSshd(t, instance);

  const home = join(instance.root, 'home-alice');
  const env = { ...devLoginEnv(dev.dataDir, home), SSH_AUTH_SOCK: '' };
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], env)).code, 0);
  const config = await runCli(['config', '--server', dev.url, '--host', '127.0.0.1', '--write'], env);
  t.equal(config.code, 0, config.stderr);
  const knownHosts = readFileSync(join(home, '.ssh', 'sshca', 'known_hosts'), 'utf8');
  t.match(knownHosts, /^@cert-authority /m, 'the host CA, as @cert-authority');
  const key = join(home, '.ssh', 'sshca', 'id_ed25519');
  // Plain ssh with only the files sshca config wrote: no prior known_hosts entry, strict checking.
  const ssh = async () => {
    try {
      await execFileAsync('ssh', ['-F', join(home, '.ssh', 'config'), '-p', String(instance.port), '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes',
        '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, 'true'], { env: { ...process.env, ...env } });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  };
  t.equal(await ssh(), 0, 'the host is known by its certificate alone');
  t.equal(readFileSync(join(home, '.ssh', 'sshca', 'known_hosts'), 'utf8'), knownHosts, 'nothing was learned on first use');

  // The host key leaks: an admin revokes it; after the next login the client refuses the host.
  const revoke = await runCli(['revoke', '--public-key', `${hostKey}.pub`, '--reason', 'host key leaked', '--server', dev.url, '--profile', 'sshca-dev'], env);
  t.equal(revoke.code, 0, revoke.stderr);
  t.equal(await ssh(), 0, 'still trusted until the client refreshes');
  t.equal((await runCli(['login', '--server', dev.url, '--profile', 'sshca-dev'], env)).code, 0);
  t.equal(await ssh(), 255, 'RevokedHostKeys from sshca config refuses the revoked host key');
  // And the server issues no new certificate for it: the instance's next renewal is refused.
  const renewal = await bootstrap(['--refresh', '--root', instance.root], { nowMs: Date.now() + 2 * 86400_000 });
  t.match(renewal.stderr, /POLICY_HOST_KEY_REVOKED/, 'the server refuses to certify a revoked host key');
});

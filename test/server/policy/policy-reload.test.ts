// SIGHUP reloads the policy of a running server; a broken file is refused
// and the previous policy stays in force.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { devLoginEnv, runCli } from '../../fixtures/cli.js';
import { needsOpenSsh } from '../../fixtures/openssh.js';
import { spawnServer } from '../../fixtures/server-process.js';

t.test('SIGHUP', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const dataDir = join(dir, 'data');
  const server = await spawnServer(t, ['--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'gina'], { SSHCA_LOG_LEVEL: 'info' });
  const url = server.url!;
  const env = devLoginEnv(dataDir, join(dir, 'home'));
  const login = (principal: string) => runCli(['login', '--server', url, '--profile', 'sshca-dev', '--principal', principal], env);

  t.equal((await login('gina')).code, 0, 'the generated dev policy grants the dev user its name');
  t.equal((await login('shared')).code, 3, 'but not a shared account');

  const policyPath = join(dataDir, 'policy.yaml');
  writeFileSync(policyPath, readFileSync(policyPath, 'utf8').replace("principals: ['{{user}}']", "principals: ['{{user}}', shared]"));
  server.child.kill('SIGHUP');
  await server.logged('policy reloaded');
  const afterReload = await login('shared');
  t.equal(afterReload.code, 0, `after SIGHUP the new rule applies: ${afterReload.stderr}`);

  writeFileSync(policyPath, 'rules: [\n');
  server.child.kill('SIGHUP');
  await server.logged('policy reload refused');
  t.match(server.stdout(), /CONFIG_POLICY_INVALID/, 'the refusal is logged with its code');
  t.equal((await login('shared')).code, 0, 'a broken file leaves the previous policy in force');

  // An alias bomb makes yaml throw rather than report: the handler must still log and carry on.
  const levels = ['    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i <= 9; i++) levels.push(`    - &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(', ')}]`);
  writeFileSync(policyPath, `accounts: ['000000000000']\nrules:\n  - name: bomb\n    match: { account: '000000000000' }\n    principals:\n${levels.join('\n')}\n`);
  server.child.kill('SIGHUP');
  await refusedTimes(2);
  t.equal(server.child.exitCode, null, 'the server is still running');
  t.equal((await login('shared')).code, 0, 'an alias bomb leaves the previous policy in force');

  function refusedTimes(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (server.stdout().split('policy reload refused').length > n ? resolve() : setTimeout(check, 20));
      check();
    });
  }
});

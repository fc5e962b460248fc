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
});

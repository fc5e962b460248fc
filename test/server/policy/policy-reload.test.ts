// SIGHUP reloads the policy of a running server; a broken file is refused
// and the previous policy stays in force.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { devLoginEnv, runCli } from '../../fixtures/cli.js';
import { needsOpenSsh } from '../../fixtures/openssh.js';

const SERVER = join(import.meta.dirname, '..', '..', '..', 'dist', 'server', 'bin', 'sshca-server.js');

t.test('SIGHUP', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const dataDir = join(dir, 'data');
  const child = spawn(process.execPath, [SERVER, '--dev', '--port', '0', '--data-dir', dataDir, '--dev-user', 'gina'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SSHCA_LOG_LEVEL: 'info' } });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const url = await new Promise<string>((resolve) => child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const m = /listening on (http:\/\/\S+)/.exec(stderr);
    if (m) resolve(m[1]!);
  }));
  const env = devLoginEnv(dataDir, join(dir, 'home'));
  const login = (principal: string) => runCli(['login', '--server', url, '--profile', 'sshca-dev', '--principal', principal], env);
  const logged = (line: string) => new Promise<void>((resolve) => {
    const check = () => (stdout.includes(line) ? resolve() : setTimeout(check, 20));
    check();
  });

  t.equal((await login('gina')).code, 0, 'the generated dev policy grants the dev user its name');
  t.equal((await login('shared')).code, 3, 'but not a shared account');

  const policyPath = join(dataDir, 'policy.yaml');
  writeFileSync(policyPath, readFileSync(policyPath, 'utf8').replace("principals: ['{{user}}']", "principals: ['{{user}}', shared]"));
  child.kill('SIGHUP');
  await logged('policy reloaded');
  const afterReload = await login('shared');
  t.equal(afterReload.code, 0, `after SIGHUP the new rule applies: ${afterReload.stderr}`);

  writeFileSync(policyPath, 'rules: [\n');
  child.kill('SIGHUP');
  await logged('policy reload refused');
  t.match(stdout, /CONFIG_POLICY_INVALID/, 'the refusal is logged with its code');
  t.equal((await login('shared')).code, 0, 'a broken file leaves the previous policy in force');
});

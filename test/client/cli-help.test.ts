// `sshca --version`, `sshca --help`, `sshca <command> --help` (issue 15):
// through the built bundle, as engineers run it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { USAGE } from '../../client/cli.js';
import { runCli } from '../fixtures/cli.js';

const version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
const home = { HOME: '/nonexistent' };

t.test('--version prints the package version', async (t) => {
  for (const arg of ['--version', 'version']) {
    const r = await runCli([arg], home);
    t.equal(r.code, 0);
    t.equal(r.stdout, `sshca ${version}\n`);
  }
});

t.test('every command has --help: exit 0, every flag its usage line names, and where settings come from', async (t) => {
  const commands = ['login', 'status', 'ssh', 'config', 'logout', 'ca', 'revoke', 'audit'];
  for (const command of commands) {
    const line = USAGE.split('\n').find((l) => l.trimStart().startsWith(`sshca ${command} `))!;
    t.ok(line, `${command} is in the usage`);
    for (const asked of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const r = await runCli(asked, home);
      t.equal(r.code, 0, `${asked.join(' ')} exits 0`);
      for (const flag of line.match(/--[a-z][a-z-]*/g) ?? []) t.match(r.stdout, flag, `${asked.join(' ')} lists ${flag}`);
      t.match(r.stdout, /~\/\.config\/sshca\/config\.json/, `${asked.join(' ')} names the settings file`);
    }
  }
  const general = await runCli(['--help'], home);
  t.equal(general.code, 0);
  t.match(general.stdout, /sshca --version/);
  t.equal((await runCli([], home)).code, 2, 'no command at all is a usage error');
});

t.test("sshca ssh: a --help meant for the remote command is not sshca's", async (t) => {
  // No server is configured, so reaching the login step fails with a usage code instead of printing help.
  const r = await runCli(['ssh', 'db.internal', 'ls', '--help'], home);
  t.notMatch(r.stdout, /sshca ssh \[FLAGS\]/, 'no sshca help');
  t.not(r.code, 0);
});

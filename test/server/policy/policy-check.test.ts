// `sshca-server policy check FILE`: the policy validated exactly as the
// server loads it, the error at its line, exit codes CI can rely on.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runCommand } from '../../fixtures/cli.js';
import { SERVER_BIN } from '../../fixtures/server-process.js';

const dir = t.testdir();
const VALID = `accounts: ['111111111111']
rules:
  - name: engineers
    match: { role: 'arn:aws:iam::111111111111:role/Engineer' }
    principals: ['{{session}}']
  - name: alice
    match: { iamUser: 'arn:aws:iam::111111111111:user/alice' }
    principals: ['{{user}}']
    roles: [auditor]
`;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const check = (path: string, json = false) => runCommand(SERVER_BIN, ['policy', 'check', path, ...(json ? ['--json'] : [])], {});

t.test('a valid policy: exit 0, a summary, the rules and their lines', async (t) => {
  const path = file('valid.yaml', VALID);
  const text = await check(path);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /valid: 2 rules, 1 account/);
  const json = await check(path, true);
  t.equal(json.code, 0);
  t.same(JSON.parse(json.stdout), { valid: true, file: path, rules: [{ name: 'engineers', line: 3 }, { name: 'alice', line: 6 }], accounts: ['111111111111'], hosts: false });
});

t.test('an invalid policy: exit 1, FILE:LINE and the code, for each kind of mistake', async (t) => {
  const lines = VALID.split('\n');
  const cases: Array<[string, string[], number]> = [
    // [what, the file's lines, the line at fault]
    ['an unknown key', [...lines.slice(0, 8), '    ttll: 8h', ...lines.slice(8)], 9],
    ['a principal that is not one', [...lines.slice(0, 7), "    principals: ['{{user}}', 'ops team']", ...lines.slice(8)], 8],
    ['a duration that is not one', [...lines.slice(0, 5), '    ttl: forever', ...lines.slice(5)], 6],
    ['broken YAML', [...lines.slice(0, 4), "    principals: ['{{session}}']]", ...lines.slice(5)], 5],
  ];
  for (const [what, content, line] of cases) {
    const path = file(`${what.replace(/\W+/g, '-')}.yaml`, content.join('\n'));
    const text = await check(path);
    t.equal(text.code, 1, `${what}: exit 1`);
    t.match(text.stderr, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}: .*\\[CONFIG_POLICY_INVALID\\]$`, 'm'), `${what}: FILE:${line}: … [CONFIG_POLICY_INVALID]`);
    const json = JSON.parse((await check(path, true)).stdout) as { valid: boolean; code: string; line: number | null };
    t.same([json.valid, json.code, json.line], [false, 'CONFIG_POLICY_INVALID', line], `${what}: --json says line ${line}`);
  }
  const missing = await check(join(dir, 'no-such-file.yaml'));
  t.equal(missing.code, 1, 'a file that is not there');
  t.match(missing.stderr, /\[CONFIG_POLICY_INVALID\]$/m);
  const usage = await runCommand(SERVER_BIN, ['policy', 'check'], {});
  t.equal(usage.code, 2, 'no FILE: usage, exit 2');
});

// A policy file that is hostile or just broken — alias bombs, a directory,
// bytes that are not UTF-8, an enormous file, a FIFO — is refused with a
// PolicyFileError at start-up, and on reload leaves the old policy deciding
// and the server answering.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { parseCallerIdentity } from '../../../server/identity/caller-identity.js';
import { MAX_POLICY_BYTES, PolicyFileError, parsePolicyFile } from '../../../server/policy/policy-file.js';
import { PolicyStore } from '../../../server/policy/policy-store.js';
import { requestCertificate, startDevServer } from '../../fixtures/dev-server.js';

const A = '111111111111';
const bob = parseCallerIdentity(`arn:aws:iam::${A}:user/bob`, A, 'AIDAEXAMPLEEXAMPLE12', 'aws', { trustedSessionRoles: new Set(), allowFederatedUsers: false });
const GOOD = `accounts: ['${A}']\nrules:\n  - name: users\n    match: { account: '${A}' }\n    principals: ['{{user}}']\n`;

/** Nine levels of nine aliases each: 9^9 strings if expanded. */
function billionLaughs(account = A): string {
  const levels = ['    - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i <= 9; i++) levels.push(`    - &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(', ')}]`);
  return `accounts: ['${account}']\nrules:\n  - name: users\n    match: { account: '${account}' }\n    principals:\n${levels.join('\n')}\n`;
}

const hasMkfifo = existsSync('/usr/bin/mkfifo');

/** Ways to replace the policy file at `path` with something that must not load. */
const hostile: Array<[string, (path: string) => void]> = [
  ['billion laughs', (p) => writeFileSync(p, billionLaughs())],
  ['aliases reused past the limit', (p) => writeFileSync(p, `${GOOD}x: &p [a]\ny: [${Array.from({ length: 50 }, () => '*p').join(', ')}]\n`)],
  ['a directory', (p) => mkdirSync(p)],
  ['invalid UTF-8', (p) => writeFileSync(p, Buffer.concat([Buffer.from(GOOD), Buffer.from([0xc3, 0x28, 0xff, 0xfe])]))],
  ['a file over the size cap (otherwise valid)', (p) => writeFileSync(p, `${GOOD}#${'x'.repeat(MAX_POLICY_BYTES)}\n`)],
  ['brackets nested deep', (p) => writeFileSync(p, `${GOOD}x: ${'['.repeat(200_000)}\n`)],
  ['mappings nested deep', (p) => writeFileSync(p, `${GOOD}x: ${'- '.repeat(100_000)}\n`)],
  ['many top-level errors', (p) => writeFileSync(p, `${'['.repeat(10)}${']'.repeat(10)}\n`.repeat(12_000))],
  ['binary noise', (p) => writeFileSync(p, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 128)))],
  ['an empty file', (p) => writeFileSync(p, '')],
  ['a missing file', () => undefined],
  ['a symlink loop', (p) => symlinkSync(p, p)],
  ...(hasMkfifo ? ([['a FIFO (would block a plain read)', (p: string) => execFileSync('mkfifo', [p])]] as Array<[string, (path: string) => void]>) : []),
];

t.test('parsePolicyFile bounds aliases and still allows modest sharing', async (t) => {
  t.throws(() => parsePolicyFile(billionLaughs(), 'p.yaml'), { code: 'CONFIG_POLICY_INVALID' });
  const shared = `accounts: ['${A}']\nrules:\n  - name: a\n    match: { iamUser: 'arn:aws:iam::${A}:user/a' }\n    principals: &common [ops, deploy]\n  - name: b\n    match: { iamUser: 'arn:aws:iam::${A}:user/b' }\n    principals: *common\n  - name: c\n    match: { account: '${A}' }\n    principals: *common\n`;
  t.same(parsePolicyFile(shared, 'p.yaml').rules.map((r) => r.principals), [['ops', 'deploy'], ['ops', 'deploy'], ['ops', 'deploy']], 'an anchor shared by a few rules loads');
  const exactlyAtCap = `${GOOD}#${'x'.repeat(MAX_POLICY_BYTES - GOOD.length - 2)}\n`;
  t.equal(Buffer.byteLength(exactlyAtCap), MAX_POLICY_BYTES);
  t.equal(parsePolicyFile(exactlyAtCap, 'p.yaml').rules.length, 1, 'a file of exactly the cap loads');
});

t.test('start-up: a hostile file is a clear PolicyFileError', async (t) => {
  for (const [name, make] of hostile) {
    const path = join(mkdtempSync(join(tmpdir(), 'sshca-policy-')), 'policy.yaml');
    t.teardown(() => rmSync(join(path, '..'), { recursive: true, force: true }));
    make(path);
    let err: unknown;
    try {
      PolicyStore.load(path);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof PolicyFileError, `${name}: a PolicyFileError`);
    t.equal((err as { code?: string } | undefined)?.code, 'CONFIG_POLICY_INVALID', `${name}: code`);
  }
});

t.test('reload: a hostile file is refused and the old policy still decides', async (t) => {
  for (const [name, make] of hostile) {
    const path = join(mkdtempSync(join(tmpdir(), 'sshca-policy-')), 'policy.yaml');
    t.teardown(() => rmSync(join(path, '..'), { recursive: true, force: true }));
    writeFileSync(path, GOOD);
    const store = PolicyStore.load(path);
    rmSync(path);
    make(path);
    let result: ReturnType<PolicyStore['reload']> | undefined;
    t.doesNotThrow(() => (result = store.reload()), `${name}: reload does not throw`);
    t.equal(result?.ok, false, `${name}: refused`);
    t.equal(result && !result.ok ? result.error.code : undefined, 'CONFIG_POLICY_INVALID', `${name}: code`);
    t.same(store.decide(bob, {}).principals, ['bob'], `${name}: the old policy still decides`);
    t.equal(store.accounts.has(A), true, `${name}: and still admits its accounts`);
  }
});

t.test('through a running server: reloads of hostile files leave it answering', async (t) => {
  const dev = await startDevServer(t, { devUser: 'kim' });
  const path = join(dev.dataDir, 'policy.yaml');
  const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
  for (const [name, make] of hostile) {
    rmSync(path, { recursive: true, force: true });
    make(path);
    const result = dev.server.reloadPolicy();
    t.equal(result.ok ? undefined : result.error.code, 'CONFIG_POLICY_INVALID', `${name}: reload refused`);
    // A nonce per request: SigV4 is deterministic within a second, and a repeated token is a replay.
    const res = await requestCertificate(dev, { publicKey, nonce: randomBytes(8).toString('hex') });
    t.equal(res.status, 201, `${name}: the server still issues under the old policy`);
    t.same(res.json.principals, ['kim'], `${name}: as the old policy says`);
  }
  rmSync(path, { recursive: true, force: true });
  writeFileSync(path, "accounts: ['000000000000']\nrules:\n  - name: users\n    match: { account: '000000000000' }\n    principals: ['{{user}}', shared]\n");
  t.equal(dev.server.reloadPolicy().ok, true, 'a good file afterwards loads');
  t.same((await requestCertificate(dev, { publicKey, nonce: randomBytes(8).toString('hex') })).json.principals, ['kim', 'shared']);
});

t.test('through a running server: a hostile file at start-up stops it with a PolicyFileError', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sshca-dev-hostile-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  writeFileSync(join(dataDir, 'policy.yaml'), billionLaughs('000000000000'));
  await t.rejects(startDevServer(t, { dataDir }), { code: 'CONFIG_POLICY_INVALID' });
});

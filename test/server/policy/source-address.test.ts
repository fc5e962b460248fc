// Rule 21: `source-address` is exactly the caller — {{sourceIp}} renders /32
// for IPv4 and /128 for IPv6, IPv4-mapped IPv6 counts as IPv4, and a prefix
// written after the template is refused when the policy loads.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { parseCallerIdentity } from '../../../server/identity/caller-identity.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';
import { callerCidr, renderSourceAddress, sourceAddressProblem } from '../../../server/policy/source-address.js';
import { signToken, startDevServer } from '../../fixtures/dev-server.js';
import { keygenList } from '../../fixtures/openssh.js';

const A = '111111111111';
const identityRules = { trustedSessionRoles: new Set<string>(), allowFederatedUsers: false };
const deployer = parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/Deploy-prod/run-1`, A, 'AROAEXAMPLEEXAMPLE12:run-1', 'aws', identityRules);

t.test('the caller address becomes a single-address CIDR', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['203.0.113.7', '203.0.113.7/32'],
    ['127.0.0.1', '127.0.0.1/32'],
    ['::1', '::1/128'],
    ['2001:DB8::0:1', '2001:db8::1/128'],
    ['0:0:0:0:0:0:0:1', '::1/128'],
    // What a dual-stack socket reports for an IPv4 caller, in every spelling.
    ['::ffff:198.51.100.2', '198.51.100.2/32'],
    ['::FFFF:198.51.100.2', '198.51.100.2/32'],
    ['0:0:0:0:0:ffff:198.51.100.2', '198.51.100.2/32'],
    ['::ffff:c633:6402', '198.51.100.2/32'],
    ['::ffff:127.0.0.1', '127.0.0.1/32'],
    // Not mapped: IPv4-compatible (deprecated) and other ::ffff-looking addresses stay IPv6.
    ['::198.51.100.2', '::c633:6402/128'],
    ['::ffff:0:198.51.100.2', '::ffff:0:c633:6402/128'],
    ['fe80::1%eth0', undefined],
    ['', undefined],
    ['localhost', undefined],
    ['203.0.113.7/32', undefined],
  ];
  for (const [ip, want] of cases) t.equal(callerCidr(ip), want, JSON.stringify(ip));
  t.equal(renderSourceAddress('{{sourceIp}}, 10.0.0.0/8', '::1'), '::1/128,10.0.0.0/8');
  t.equal(renderSourceAddress('10.0.0.0/8', 'garbage'), '10.0.0.0/8', 'no template: the caller does not matter');
  t.equal(renderSourceAddress('{{sourceIp}}', 'garbage'), undefined);
});

t.test('load time: {{sourceIp}} stands alone', async (t) => {
  const policy = (value: string) =>
    `accounts: ['${A}']\nrules:\n  - name: ci\n    match: { role: 'arn:aws:iam::${A}:role/Deploy-*' }\n    principals: [deploy]\n    criticalOptions:\n      source-address: '${value}'\n`;
  const refused = ['{{sourceIp}}/32', '{{sourceIp}}/24', '{{sourceIp}}/128', '10.0.0.0/8,{{sourceIp}}/0', '{{ sourceIp }}', '{{sourceIp}}x', '{{user}}/32', '10.0.0.1', '10.0.0.0/33', '::/129', 'fe80::%eth0/64', '10.0.0.0/8,,', ''];
  for (const value of refused) {
    t.ok(sourceAddressProblem(value), `${JSON.stringify(value)}: a problem`);
    let err: { code?: string; message: string } | undefined;
    try {
      parsePolicyFile(policy(value), 'p.yaml');
    } catch (e) {
      err = e as { code?: string; message: string };
    }
    t.equal(err?.code, 'CONFIG_POLICY_INVALID', `${JSON.stringify(value)}: refused`);
    t.equal(/^p\.yaml:(\d+): ([^:]+):/.exec(err?.message ?? '')?.slice(1).join(' '), '7 rules[0].criticalOptions.source-address', `${JSON.stringify(value)}: names line and field`);
  }
  for (const value of ['{{sourceIp}}', '{{sourceIp}},10.0.0.0/8', ' 10.0.0.0/8 , {{sourceIp}} ', '2001:db8::/32', '192.0.2.1/32']) {
    t.equal(sourceAddressProblem(value), undefined, `${JSON.stringify(value)}: accepted`);
    t.doesNotThrow(() => parsePolicyFile(policy(value), 'p.yaml'), `${JSON.stringify(value)}: loads`);
  }
});

t.test('decide: the rendered option for each address family', async (t) => {
  const policy = new FilePolicy(
    parsePolicyFile(`accounts: ['${A}']\nrules:\n  - name: ci\n    match: { role: 'arn:aws:iam::${A}:role/Deploy-*' }\n    principals: [deploy]\n    criticalOptions: { source-address: '{{sourceIp}}, 10.0.0.0/8' }\n`, 'p.yaml'),
  );
  const sourceAddress = (ip: string) => policy.decide(deployer, { sourceIp: ip }).criticalOptions['source-address'];
  t.equal(sourceAddress('203.0.113.7'), '203.0.113.7/32,10.0.0.0/8');
  t.equal(sourceAddress('2001:db8::7'), '2001:db8::7/128,10.0.0.0/8');
  t.equal(sourceAddress('::ffff:203.0.113.7'), '203.0.113.7/32,10.0.0.0/8', 'IPv4-mapped: IPv4');
  t.throws(() => policy.decide(deployer, { sourceIp: 'fe80::1%eth0' }), { code: 'POLICY_SOURCE_ADDRESS' });
  t.throws(() => policy.decide(deployer, {}), { code: 'POLICY_SOURCE_ADDRESS' }, 'no caller address: no certificate');
  // A document built past the loader is still checked after filling in.
  const rule = policy.document.rules[0]!;
  const unchecked = new FilePolicy({ accounts: [A], rules: [{ ...rule, criticalOptions: { 'source-address': '{{sourceIp}}/24' } }] });
  t.throws(() => unchecked.decide(deployer, { sourceIp: '203.0.113.7' }), { code: 'POLICY_SOURCE_ADDRESS' }, 'an unvalidated prefix after {{sourceIp}} is refused');
});

/** The caller address the audit record of the one issued certificate holds. */
function issuedSourceIp(dataDir: string): string | undefined {
  const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
  try {
    const row = db.prepare("SELECT data FROM audit_records WHERE kind = 'issued'").get() as { data: string } | undefined;
    return row ? (JSON.parse(row.data) as { sourceIp?: string }).sourceIp : undefined;
  } finally {
    db.close();
  }
}

const keygen = existsSync('/usr/bin/ssh-keygen');

t.test('attack: through a running server, the certificate carries the exact caller', { skip: process.env.CI !== 'true' && !keygen ? 'ssh-keygen not installed' : false }, async (t) => {
  // Listening on ::1 serves IPv6 callers; on ::ffff:127.0.0.1 (written
  // canonically, ::ffff:7f00:1, as the URL the server builds from it must be)
  // an IPv6 socket serves IPv4 callers and Node reports them as
  // ::ffff:127.0.0.1, like any dual-stack socket — while staying on loopback.
  // 127.0.0.1 is plain IPv4.
  const cases: Array<[string, string, string, string]> = [
    ['IPv6 from ::1', '::1', '::1', '::1/128'],
    ['IPv4 through a dual-stack socket', '::ffff:7f00:1', '::ffff:127.0.0.1', '127.0.0.1/32'],
    ['IPv4', '127.0.0.1', '127.0.0.1', '127.0.0.1/32'],
  ];
  for (const [name, host, reported, want] of cases) {
    const dataDir = mkdtempSync(join(tmpdir(), 'sshca-dev-srcaddr-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    writeFileSync(
      join(dataDir, 'policy.yaml'),
      "accounts: ['000000000000']\nrules:\n  - name: pinned\n    match: { account: '000000000000' }\n    principals: ['{{user}}']\n    criticalOptions:\n      source-address: '{{sourceIp}}'\n",
    );
    const dev = await startDevServer(t, { dataDir, host, devUser: 'lee' });
    // Over IPv4 where the server listens dual-stack: the client connects to the plain IPv4 address.
    const target = host === '::ffff:7f00:1' ? { ...dev, url: dev.url.replace('[::ffff:7f00:1]', '127.0.0.1') } : dev;
    const publicKey = toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
    const body = JSON.stringify({ publicKey });
    // fetch, not the fixture's raw-header client: it takes a bracketed IPv6 URL as it is.
    const res = await fetch(`${target.url}/v1/certs/user`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${await signToken(dev, body)}` } });
    const json = (await res.json()) as { code?: string; certificate?: string };
    t.equal(res.status, 201, `${name}: issued${json.code ? ` (refused: ${json.code})` : ''}`);
    const certPath = join(dataDir, `${host.replace(/\W/g, '_')}-cert.pub`);
    writeFileSync(certPath, `${String(json.certificate)}\n`);
    t.same(keygenList(certPath).criticalOptions, [`source-address ${want}`], `${name}: source-address ${want}`);
    t.equal(issuedSourceIp(dataDir), reported, `${name}: the server saw the caller as ${reported}`);
  }
});

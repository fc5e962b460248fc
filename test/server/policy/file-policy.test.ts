// The policy file, table-driven: who gets which principals, for how long,
// with which options — and every denial's code.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseCallerIdentity, type CallerIdentity } from '../../../server/identity/caller-identity.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';
import { PolicyStore } from '../../../server/policy/policy-store.js';
import type { CertificateRequest } from '../../../server/policy/policy.js';

const A = '111111111111';
const B = '222222222222';
const POLICY = `
accounts: ['${A}', '${B}']
rules:
  - name: break-glass
    match: { role: 'arn:aws:iam::${A}:role/BreakGlass' }
    principals: [root, ec2-user]
    ttl: 15m
    maxTtl: 1h
    requireReason: true
    roles: [admin]
  - name: ci-deploy
    match: { role: 'arn:aws:iam::${A}:role/Deploy-*' }
    principals: [deploy]
    ttl: 10m
    maxTtl: 30m
    extensions: []
    criticalOptions:
      force-command: /usr/local/bin/deploy
      source-address: '{{sourceIp}},10.0.0.0/8'
  - name: sso-admins
    match: { ssoPermissionSet: Admin }
    principals: ['{{sessionLocalPart}}', ops]
    roles: [auditor]
  - name: sso-devs
    match: { ssoPermissionSet: Developer, account: '${B}' }
    principals: ['{{sessionLocalPart}}']
  - name: pinned
    match: { role: ['arn:aws:iam::${A}:role/Pinned', 'arn:aws:iam::${A}:role/Unpinned'] }
    principals: ['{{session}}']
  - name: users
    match: { account: '${A}' }
    principals: ['{{user}}']
`;

const rules = { trustedSessionRoles: new Set([`arn:aws:iam::${A}:role/Pinned`]), allowFederatedUsers: false };
const user = (name: string, account = A) => parseCallerIdentity(`arn:aws:iam::${account}:user/${name}`, account, 'AIDAEXAMPLEEXAMPLE12', 'aws', rules);
const role = (name: string, session: string, account = A) => parseCallerIdentity(`arn:aws:sts::${account}:assumed-role/${name}/${session}`, account, `AROAEXAMPLEEXAMPLE12:${session}`, 'aws', rules);
const sso = (set: string, session = 'alice@corp.com', account = A) => role(`AWSReservedSSO_${set}_0123456789abcdef`, session, account);

t.test('decisions', async (t) => {
  const policy = new FilePolicy(parsePolicyFile(POLICY, 'policy.yaml'));
  type Want = { principals: string[]; ttl?: number; options?: Record<string, string>; extensions?: string[]; rule?: string } | { code: string };
  const cases: Array<[string, CallerIdentity, CertificateRequest, Want]> = [
    ['SSO admin: local part of the session, plus a literal', sso('Admin'), {}, { principals: ['alice', 'ops'], ttl: 8 * 3600, rule: 'sso-admins' }],
    ['SSO look-alike set Admin_Prod is not Admin', sso('Admin_Prod'), {}, { code: 'POLICY_NO_PRINCIPALS' }],
    ['SSO developer in the right account', sso('Developer', 'bo@corp.com', B), {}, { principals: ['bo'], rule: 'sso-devs' }],
    ['SSO developer in another account falls through', sso('Developer'), {}, { code: 'POLICY_NO_PRINCIPALS' }],
    ['pinned role: trusted session name', role('Pinned', 'carol'), {}, { principals: ['carol'] }],
    ['unpinned role: the session name cannot fill {{session}}', role('Unpinned', 'root'), {}, { code: 'POLICY_NO_PRINCIPALS' }],
    ['IAM user gets its name', user('bob'), {}, { principals: ['bob'], rule: 'users' }],
    ['subset: asking for what is granted', user('bob'), { principals: ['bob'] }, { principals: ['bob'] }],
    ['subset: asking for someone else', user('bob'), { principals: ['alice'] }, { code: 'POLICY_PRINCIPAL_DENIED' }],
    ['root is never rendered from a template', user('root'), {}, { code: 'POLICY_NO_PRINCIPALS' }],
    ['root asked by a user', user('bob'), { principals: ['root'] }, { code: 'POLICY_PRINCIPAL_DENIED' }],
    ['invalid principal asked', user('bob'), { principals: ['bob,root'] }, { code: 'POLICY_PRINCIPAL_INVALID' }],
    ['ttl above the cap is refused, not cut', user('bob'), { ttlSeconds: 13 * 3600 }, { code: 'POLICY_TTL_EXCEEDED' }],
    ['ttl within the cap', user('bob'), { ttlSeconds: 3600 }, { principals: ['bob'], ttl: 3600 }],
    ['break-glass without a reason', role('BreakGlass', 'x1'), {}, { code: 'POLICY_REASON_REQUIRED' }],
    ['break-glass with a blank reason', role('BreakGlass', 'x1'), { reason: '   ' }, { code: 'POLICY_REASON_REQUIRED' }],
    ['break-glass: root only because the rule names it', role('BreakGlass', 'x1'), { reason: 'INC-1' }, { principals: ['root', 'ec2-user'], ttl: 900 }],
    ['break-glass: capped at 1h', role('BreakGlass', 'x1'), { reason: 'INC-1', ttlSeconds: 7200 }, { code: 'POLICY_TTL_EXCEEDED' }],
    ['CI deploy: force-command and source-address from the caller', role('Deploy-prod', 'run-1'), { sourceIp: '203.0.113.7' },
      { principals: ['deploy'], ttl: 600, extensions: [], options: { 'force-command': '/usr/local/bin/deploy', 'source-address': '203.0.113.7/32,10.0.0.0/8' } }],
    ['CI deploy: IPv4-mapped caller address', role('Deploy-staging', 'run-2'), { sourceIp: '::ffff:198.51.100.2' },
      { principals: ['deploy'], options: { 'force-command': '/usr/local/bin/deploy', 'source-address': '198.51.100.2/32,10.0.0.0/8' } }],
    ['CI deploy: an IPv6 caller is /128', role('Deploy-staging', 'run-2'), { sourceIp: '2001:db8::7' },
      { principals: ['deploy'], options: { 'force-command': '/usr/local/bin/deploy', 'source-address': '2001:db8::7/128,10.0.0.0/8' } }],
    ['role glob matches the name only', role('Deploy', 'run-3'), {}, { code: 'POLICY_NO_PRINCIPALS' }],
    ['no rule for another account', user('eve', '333333333333'), {}, { code: 'POLICY_NO_RULE' }],
  ];
  for (const [name, identity, request, want] of cases) {
    if ('code' in want) {
      t.throws(() => policy.decide(identity, request), { code: want.code }, name);
      continue;
    }
    const d = policy.decide(identity, request);
    t.same(d.principals, want.principals, `${name}: principals`);
    if (want.ttl !== undefined) t.equal(d.ttlSeconds, want.ttl, `${name}: ttl`);
    if (want.rule !== undefined) t.equal(d.ruleName, want.rule, `${name}: rule`);
    if (want.options !== undefined) t.same(d.criticalOptions, want.options, `${name}: critical options`);
    if (want.extensions !== undefined) t.same(Object.keys(d.extensions), want.extensions, `${name}: extensions`);
  }
  t.same(policy.rolesFor(sso('Admin')), ['auditor']);
  t.same(policy.rolesFor(role('BreakGlass', 'x1')), ['admin']);
  t.same(policy.rolesFor(user('bob')), []);
  t.equal(policy.accountAllowed(B), true);
  t.equal(policy.accountAllowed('333333333333'), false);
});

t.test('invalid files are refused naming line and field', async (t) => {
  const base = `accounts: ['${A}']\nrules:\n  - name: r\n    match: { account: '${A}' }\n    principals: ['{{user}}']\n`;
  const cases: Array<[string, string, number, string]> = [
    ['unknown rule field', `${base}    principal: [x]\n`, 6, 'rules[0].principal'],
    ['bad duration', `${base}    ttl: soon\n`, 6, 'rules[0].ttl'],
    ['ttl above maxTtl', `${base}    ttl: 2h\n    maxTtl: 1h\n`, 6, 'rules[0].ttl'],
    ['unknown placeholder', base.replace('{{user}}', '{{email}}'), 5, 'rules[0].principals[0]'],
    ['bad source-address', `${base}    criticalOptions: { source-address: 'anywhere' }\n`, 6, 'rules[0].criticalOptions.source-address'],
    ['{{sourceIp}} with a prefix', `${base}    criticalOptions:\n      source-address: '{{sourceIp}}/32'\n`, 7, 'rules[0].criticalOptions.source-address'],
    ['{{sourceIp}} widened to a network', `${base}    criticalOptions:\n      source-address: '10.0.0.0/8,{{sourceIp}}/24'\n`, 7, 'rules[0].criticalOptions.source-address'],
    ['roles on an account-only match', `${base}    roles: [auditor]\n`, 6, 'rules[0].roles'],
    ['bad session domain', `${base}    sessionDomains: ['@corp.com']\n`, 6, 'rules[0].sessionDomains[0]'],
    ['role ARN with a path', base.replace(`{ account: '${A}' }`, `{ role: 'arn:aws:iam::${A}:role/path/R' }`), 4, 'rules[0].match.role[0]'],
    ['bad account', base.replace(`accounts: ['${A}']`, "accounts: ['12']"), 1, 'accounts[0]'],
    ['empty match', base.replace(`{ account: '${A}' }`, '{}'), 4, 'rules[0].match'],
    ['unknown role', `${base}    roles: [root]\n`, 6, 'rules[0].roles[0]'],
    ['duplicate key', `${base}    ttl: 1h\n    ttl: 2h\n`, 7, ''],
  ];
  for (const [name, text, line, field] of cases) {
    const err = (() => {
      try {
        parsePolicyFile(text, 'p.yaml');
        return undefined;
      } catch (e) {
        return e as { code?: string; message: string };
      }
    })();
    t.equal(err?.code, 'CONFIG_POLICY_INVALID', `${name}: refused`);
    t.equal(Number(/^p\.yaml:(\d+):/.exec(err?.message ?? '')?.[1]), line, `${name}: line ${line}`);
    if (field) t.equal(/^p\.yaml:\d+: ([^:]+):/.exec(err?.message ?? '')?.[1], field, `${name}: field ${field}`);
  }
});

t.test('reload keeps the old policy when the new file is broken', async (t) => {
  const path = join(t.testdir(), 'policy.yaml');
  writeFileSync(path, `accounts: ['${A}']\nrules:\n  - name: users\n    match: { account: '${A}' }\n    principals: ['{{user}}']\n`);
  const store = PolicyStore.load(path);
  t.same(store.decide(user('bob'), {}).principals, ['bob']);
  writeFileSync(path, 'accounts: [\n');
  const broken = store.reload();
  t.equal(broken.ok, false);
  t.equal(broken.ok ? undefined : broken.error.code, 'CONFIG_POLICY_INVALID');
  t.same(store.decide(user('bob'), {}).principals, ['bob'], 'the old policy is still in force');
  writeFileSync(path, `accounts: ['${A}']\nrules:\n  - name: users\n    match: { account: '${A}' }\n    principals: ['{{user}}', shared]\n`);
  t.equal(store.reload().ok, true);
  t.same(store.decide(user('bob'), {}).principals, ['bob', 'shared'], 'the new policy applies');
  t.equal(store.accounts.has(A), true);
});

// Templates do not merge people from different namespaces: with
// `sessionDomains`, {{session}} and {{sessionLocalPart}} render only for
// local@domain with the domain listed exactly (case aside).
import t from 'tap';
import { parseCallerIdentity } from '../../../server/identity/caller-identity.js';
import { FilePolicy } from '../../../server/policy/file-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';

const A = '111111111111';
const B = '222222222222';
const rules = { trustedSessionRoles: new Set([`arn:aws:iam::${A}:role/Pinned`]), allowFederatedUsers: false };
const role = (name: string, session: string, account = A) => parseCallerIdentity(`arn:aws:sts::${account}:assumed-role/${name}/${session}`, account, `AROAEXAMPLEEXAMPLE12:${session}`, 'aws', rules);
const sso = (set: string, session: string, account = A) => role(`AWSReservedSSO_${set}_0123456789abcdef`, session, account);
const user = (name: string, account: string) => parseCallerIdentity(`arn:aws:iam::${account}:user/${name}`, account, 'AIDAEXAMPLEEXAMPLE12', 'aws', rules);

const POLICY = `
accounts: ['${A}', '${B}']
rules:
  - name: developers
    match: { ssoPermissionSet: Developer }
    principals: ['{{sessionLocalPart}}', '{{session}}']
    sessionDomains: [corp.example.com, Partner.Example.ORG]
  - name: operators
    match: { ssoPermissionSet: Ops }
    principals: ['{{sessionLocalPart}}', ops]
    sessionDomains: corp.example.com
  - name: pinned
    match: { role: 'arn:aws:iam::${A}:role/Pinned' }
    principals: ['{{sessionLocalPart}}']
    sessionDomains: [corp.example.com]
  - name: untrusted
    match: { role: 'arn:aws:iam::${A}:role/Unpinned' }
    principals: ['{{sessionLocalPart}}']
    sessionDomains: [corp.example.com]
  - name: anyone
    match: { ssoPermissionSet: Anyone }
    principals: ['{{sessionLocalPart}}']
  - name: users
    match: { account: ['${A}', '${B}'] }
    principals: ['{{user}}']
`;

t.test('sessionDomains decides whether session templates render', async (t) => {
  const policy = new FilePolicy(parsePolicyFile(POLICY, 'p.yaml'));
  const cases: Array<[string, ReturnType<typeof sso>, string[] | string]> = [
    ['in the domain', sso('Developer', 'alice@corp.example.com'), ['alice', 'alice@corp.example.com']],
    ['domain in another case', sso('Developer', 'alice@CORP.Example.com'), ['alice', 'alice@CORP.Example.com']],
    ['listed in another case', sso('Developer', 'bo@partner.example.org'), ['bo', 'bo@partner.example.org']],
    ['look-alike suffix', sso('Developer', 'alice@corp.example.com.evil.org'), 'POLICY_NO_PRINCIPALS'],
    ['look-alike prefix', sso('Developer', 'alice@evil-corp.example.com'), 'POLICY_NO_PRINCIPALS'],
    ['look-alike without the dot', sso('Developer', 'alice@evilcorp.example.com'), 'POLICY_NO_PRINCIPALS'],
    ['subdomain', sso('Developer', 'alice@eu.corp.example.com'), 'POLICY_NO_PRINCIPALS'],
    ['parent domain', sso('Developer', 'alice@example.com'), 'POLICY_NO_PRINCIPALS'],
    ['trailing dot', sso('Developer', 'alice@corp.example.com.'), 'POLICY_NO_PRINCIPALS'],
    ['two @', sso('Developer', 'alice@evil.org@corp.example.com'), 'POLICY_NO_PRINCIPALS'],
    ['no local part', sso('Developer', '@corp.example.com'), 'POLICY_NO_PRINCIPALS'],
    ['no domain at all', sso('Developer', 'alice'), 'POLICY_NO_PRINCIPALS'],
    ['out of domain: the literal is still granted', sso('Ops', 'alice@other.example.net'), ['ops']],
    ['in domain with a literal', sso('Ops', 'alice@corp.example.com'), ['alice', 'ops']],
    ['trusted role session in the domain', role('Pinned', 'carol@corp.example.com'), ['carol']],
    ['trusted role session out of the domain', role('Pinned', 'carol@other.example.net'), 'POLICY_NO_PRINCIPALS'],
    ['untrusted session in the domain: still untrusted', role('Unpinned', 'carol@corp.example.com'), 'POLICY_NO_PRINCIPALS'],
  ];
  for (const [name, identity, want] of cases) {
    if (typeof want === 'string') t.throws(() => policy.decide(identity, {}), { code: want }, name);
    else t.same(policy.decide(identity, {}).principals, want, name);
  }
});

t.test('without sessionDomains, templates merge namespaces (what the docs warn about)', async (t) => {
  const policy = new FilePolicy(parsePolicyFile(POLICY, 'p.yaml'));
  t.same(policy.decide(sso('Anyone', 'alice@a.example.com'), {}).principals, ['alice']);
  t.same(policy.decide(sso('Anyone', 'alice@b.example.com'), {}).principals, ['alice'], 'two people, one principal');
  t.same(policy.decide(user('alice', A), {}).principals, ['alice']);
  t.same(policy.decide(user('alice', B), {}).principals, ['alice'], 'two accounts, one principal');
});

t.test('sessionDomains entries are bare domain names', async (t) => {
  const withDomains = (value: string) => `accounts: ['${A}']\nrules:\n  - name: r\n    match: { ssoPermissionSet: Dev }\n    principals: ['{{sessionLocalPart}}']\n    sessionDomains: ${value}\n`;
  const refused: Array<[string, string]> = [
    ['with @', "['@corp.example.com']"],
    ['wildcard', "['*.corp.example.com']"],
    ['single label', '[corp]'],
    ['trailing dot', "['corp.example.com.']"],
    ['space', "['corp example.com']"],
    ['empty string', "['']"],
    ['empty list', '[]'],
    ['not a string', '[42]'],
    ['a mapping', '{ a: b }'],
    ['label starting with -', "['-corp.example.com']"],
  ];
  for (const [name, value] of refused) {
    let err: { code?: string; message: string } | undefined;
    try {
      parsePolicyFile(withDomains(value), 'p.yaml');
    } catch (e) {
      err = e as { code?: string; message: string };
    }
    t.equal(err?.code, 'CONFIG_POLICY_INVALID', `${name}: refused`);
    t.equal(Number(/^p\.yaml:(\d+):/.exec(err?.message ?? '')?.[1]), 6, `${name}: names line 6`);
    t.match(/^p\.yaml:\d+: ([^:]+):/.exec(err?.message ?? '')?.[1] ?? '', /^rules\[0\]\.sessionDomains/, `${name}: names the field`);
  }
  t.same(parsePolicyFile(withDomains('[Corp.Example.COM, corp.example.com, xn--bcher-kva.example]'), 'p.yaml').rules[0]!.sessionDomains, ['corp.example.com', 'xn--bcher-kva.example'], 'lower-cased, without duplicates');
});

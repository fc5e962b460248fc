// The policy's hosts section (issue 12): validated at load with file:line
// errors; decisions from EC2's answer only, with a code for each refusal.
import t from 'tap';
import type { Ec2Instance } from '../../../server/hosts/instance-directory.js';
import { checkHostCaller, decideHost } from '../../../server/policy/host-policy.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';

const A = '111111111111';
const B = '222222222222';
const base = `accounts: ['${A}', '${B}']\nrules:\n  - name: users\n    match: { account: '${A}' }\n    principals: ['{{user}}']\n`;
const hostsOf = (hosts: string) => parsePolicyFile(`${base}hosts:\n${hosts}`, 'p.yaml').hosts!;

const instance = (over: Partial<Ec2Instance> = {}): Ec2Instance => ({
  instanceId: 'i-0123456789abcdef0',
  accountId: A,
  region: 'us-east-1',
  state: 'running',
  vpcId: 'vpc-0a1b2c3d',
  privateDnsName: 'ip-10-0-0-5.ec2.internal',
  privateIpAddresses: ['10.0.0.5', '10.0.1.7'],
  ipv6Addresses: ['2600:1F18::5'],
  publicDnsName: 'ec2-3-4-5-6.compute-1.amazonaws.com',
  publicIpAddress: '3.4.5.6',
  tags: new Map([['Environment', 'prod'], ['sshca:hostnames', 'web-1.corp.example.com, web.internal *.corp.example.com evil.example.org']]),
  imds: { httpTokens: 'required', hopLimit: 1 },
  ...over,
});

t.test('hosts: defaults, and every field validated with its line', async (t) => {
  t.equal(parsePolicyFile(base, 'p.yaml').hosts, undefined, 'no section: no host certificates');
  const defaults = parsePolicyFile(`${base}hosts: {}\n`, 'p.yaml').hosts!;
  t.same(defaults.accounts, [A, B], 'every top-level account by default');
  t.equal(defaults.ttlSeconds, 3 * 86400);
  const full = hostsOf(`  accounts: ['${B}']\n  regions: [eu-west-1]\n  vpcs: [vpc-0a1b2c3d]\n  tags: { Environment: [prod, staging], Team: 7 }\n  nameTag: 'sshca:hostnames'\n  nameDomains: [corp.example.com]\n  ttl: 5d\n`);
  t.same(full.tags, [{ key: 'Environment', values: ['prod', 'staging'] }, { key: 'Team', values: ['7'] }]);
  t.equal(full.ttlSeconds, 5 * 86400);
  const bad: Array<[string, RegExp]> = [
    [`  accounts: ['333333333333']\n`, /^p\.yaml:\d+: hosts\.accounts\[0\]: /],
    [`  regions: [Europe]\n`, /hosts\.regions\[0\]/],
    [`  vpcs: [vpc-xyz]\n`, /hosts\.vpcs\[0\]/],
    [`  tags: {}\n`, /hosts\.tags/],
    [`  ttl: 31d\n`, /hosts\.ttl: at most 30 days/],
    [`  nameDomains: [corp.example.com]\n`, /hosts\.nameDomains/],
    [`  nameDomains: ['*.corp.example.com']\n  nameTag: n\n`, /hosts\.nameDomains\[0\]/],
    [`  principals: [x]\n`, /hosts\.principals: unknown field/],
  ];
  for (const [text, message] of bad) {
    t.throws(() => parsePolicyFile(`${base}hosts:\n${text}`, 'p.yaml'), { code: 'CONFIG_POLICY_INVALID', message }, text.trim());
  }
  t.throws(() => parsePolicyFile(`${base}hosts:\n  ttl: 31d\n`, 'p.yaml'), { message: /^p\.yaml:7: / }, 'names the line');
});

t.test('who is served before EC2 is asked: section, account, region', async (t) => {
  const hosts = hostsOf(`  accounts: ['${A}']\n  regions: [us-east-1]\n`);
  t.throws(() => checkHostCaller(undefined, A, 'us-east-1'), { code: 'POLICY_HOSTS_DISABLED' });
  t.throws(() => checkHostCaller(hosts, B, 'us-east-1'), { code: 'POLICY_HOST_ACCOUNT' });
  t.throws(() => checkHostCaller(hosts, A, 'eu-west-1'), { code: 'POLICY_HOST_REGION' });
  t.equal(checkHostCaller(hosts, A, 'us-east-1'), hosts);
});

t.test('principals come from EC2 only; state, VPC and tags refuse with their codes', async (t) => {
  const open = hostsOf('  ttl: 2d\n');
  const d = decideHost(open, instance());
  t.same(d.principals, ['i-0123456789abcdef0', 'ip-10-0-0-5.ec2.internal', 'ec2-3-4-5-6.compute-1.amazonaws.com', '10.0.0.5', '10.0.1.7', '3.4.5.6', '2600:1f18::5']);
  t.equal(d.ttlSeconds, 2 * 86400);
  t.same(decideHost(open, instance({ publicDnsName: undefined, publicIpAddress: undefined, ipv6Addresses: [] })).principals, ['i-0123456789abcdef0', 'ip-10-0-0-5.ec2.internal', '10.0.0.5', '10.0.1.7']);
  // The name tag: valid names in the allowed domains; wildcards and outsiders are left out (and reported).
  const named = decideHost(hostsOf(`  nameTag: 'sshca:hostnames'\n  nameDomains: [corp.example.com]\n`), instance());
  t.ok(named.principals.includes('web-1.corp.example.com'));
  t.notOk(named.principals.some((p) => p.includes('*') || p === 'evil.example.org' || p === 'web.internal'), 'never a wildcard, never another domain');
  t.same(named.ignoredNames, ['web.internal', '*.corp.example.com', 'evil.example.org']);
  const anyDomain = decideHost(hostsOf(`  nameTag: 'sshca:hostnames'\n`), instance());
  t.ok(anyDomain.principals.includes('web.internal') && anyDomain.principals.includes('evil.example.org'), 'without nameDomains any valid name counts');
  t.same(anyDomain.ignoredNames, ['*.corp.example.com'], 'but never a wildcard');
  // Names that are not unmistakably DNS names: an address, another instance's id, a single label.
  const claims = decideHost(hostsOf(`  nameTag: 'sshca:hostnames'\n`), instance({ tags: new Map([['sshca:hostnames', '10.0.0.9 i-0aaaaaaaaaaaaaaaa localhost 127.0.0.1 169.254.169.254 db.10 ok.example.com']]) }));
  t.same(claims.ignoredNames, ['10.0.0.9', 'i-0aaaaaaaaaaaaaaaa', 'localhost', '127.0.0.1', '169.254.169.254', 'db.10']);
  t.ok(claims.principals.includes('ok.example.com'));
  t.notOk(decideHost(open, instance()).principals.includes('web.internal'), 'no name tag configured: tags add no names');
  for (const state of ['stopped', 'stopping', 'terminated', 'shutting-down']) {
    t.throws(() => decideHost(open, instance({ state })), { code: 'POLICY_HOST_INSTANCE_STATE' }, state);
  }
  t.ok(decideHost(open, instance({ state: 'pending' })).principals.length > 0, 'pending is allowed (cloud-init runs then)');
  t.throws(() => decideHost(hostsOf('  vpcs: [vpc-11111111]\n'), instance()), { code: 'POLICY_HOST_VPC' });
  t.throws(() => decideHost(hostsOf('  vpcs: [vpc-11111111]\n'), instance({ vpcId: undefined })), { code: 'POLICY_HOST_VPC' }, 'EC2-Classic / no VPC');
  t.throws(() => decideHost(hostsOf('  tags: { Environment: dev }\n'), instance()), { code: 'POLICY_HOST_TAG' });
  t.throws(() => decideHost(hostsOf('  tags: { Owner: ops }\n'), instance()), { code: 'POLICY_HOST_TAG' }, 'missing tag');
  t.ok(decideHost(hostsOf('  tags: { Environment: [dev, prod] }\n'), instance()));
  // IMDS: v2 only, hop limit at most the policy's (default 1).
  t.throws(() => decideHost(open, instance({ imds: { httpTokens: 'optional', hopLimit: 1 } })), { code: 'POLICY_HOST_IMDS' }, 'IMDSv1 allowed');
  t.throws(() => decideHost(open, instance({ imds: {} })), { code: 'POLICY_HOST_IMDS' }, 'EC2 said nothing about IMDS');
  t.throws(() => decideHost(open, instance({ imds: { httpTokens: 'required', hopLimit: 2 } })), { code: 'POLICY_HOST_IMDS' }, 'hop limit 2 (containers reach IMDS)');
  t.ok(decideHost(hostsOf('  maxImdsHopLimit: 2\n'), instance({ imds: { httpTokens: 'required', hopLimit: 2 } })), 'allowed when the policy says so');
  t.throws(() => parsePolicyFile(`${base}hosts:\n  maxImdsHopLimit: 0\n`, 'p.yaml'), { code: 'CONFIG_POLICY_INVALID' });
});

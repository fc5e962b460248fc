// Parsing STS's answer into a CallerIdentity (rule 7): look-alikes and
// mismatched halves are refused or classified conservatively.
import t from 'tap';
import { parseCallerIdentity, type IdentityRules } from '../../../server/identity/caller-identity.js';

const A = '123456789012';
const rules: IdentityRules = { trustedSessionRoles: new Set([`arn:aws:iam::${A}:role/Pinned`]), allowFederatedUsers: false };
const role = (name: string, session = 'alice', roleId = 'AROAEXAMPLEEXAMPLE12') =>
  parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/${name}/${session}`, A, `${roleId}:${session}`, 'aws', rules);

t.test('Identity Center permission sets: anchored, hex-delimited', async (t) => {
  t.equal(role('AWSReservedSSO_Admin_0123456789abcdef').ssoPermissionSet, 'Admin');
  t.equal(role('AWSReservedSSO_Admin_Prod_0123456789abcdef').ssoPermissionSet, 'Admin_Prod');
  t.equal(role('AWSReservedSSO_Admin.Prod-1_0123456789abcdef').ssoPermissionSet, 'Admin.Prod-1');
  const notSso = ['AWSReservedSSO_Admin', 'AWSReservedSSO_Admin_0123456789ABCDEF', 'AWSReservedSSO_Admin_0123456789abcde', 'xAWSReservedSSO_Admin_0123456789abcdef',
    'AWSReservedSSO_Admin_0123456789abcdef0', 'AWSReservedSSO__0123456789abcdef', 'awsreservedsso_Admin_0123456789abcdef'];
  for (const name of notSso) {
    const who = role(name);
    t.equal(who.ssoPermissionSet, undefined, `${name} is not an SSO role`);
    t.equal(who.sessionTrusted, false, `${name}: session name untrusted`);
  }
});

t.test('trusted session names: SSO roles and roles the operator pinned, nothing else', async (t) => {
  t.equal(role('AWSReservedSSO_Admin_0123456789abcdef').sessionTrusted, true);
  t.equal(role('Pinned').sessionTrusted, true);
  t.equal(role('Pinned2').sessionTrusted, false);
  t.equal(parseCallerIdentity(`arn:aws:sts::999999999999:assumed-role/Pinned/a1`, '999999999999', 'AROAEXAMPLEEXAMPLE12:a1', 'aws', rules).sessionTrusted, false, 'same role name, other account');
  t.equal(role('Pinned').roleArn, `arn:aws:iam::${A}:role/Pinned`);
});

t.test('halves that disagree are refused', async (t) => {
  const refused: Array<[string, () => unknown, string]> = [
    ['role UserId names another session', () => parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/R/alice`, A, 'AROAEXAMPLEEXAMPLE12:mallory', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['user with a role id', () => parseCallerIdentity(`arn:aws:iam::${A}:user/alice`, A, 'AROAEXAMPLEEXAMPLE12', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['ARN account differs', () => parseCallerIdentity(`arn:aws:iam::999999999999:user/alice`, A, 'AIDAEXAMPLEEXAMPLE12', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['partition differs from the endpoint', () => parseCallerIdentity(`arn:aws-cn:iam::${A}:user/alice`, A, 'AIDAEXAMPLEEXAMPLE12', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['Account not 12 digits', () => parseCallerIdentity(`arn:aws:iam::${A}:user/alice`, '1234', 'AIDAEXAMPLEEXAMPLE12', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['extra path segment in a role ARN', () => parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/R/x/alice`, A, 'AROAEXAMPLEEXAMPLE12:alice', 'aws', rules), 'AUTHN_STS_RESPONSE'],
    ['federated UserId for another name', () => parseCallerIdentity(`arn:aws:sts::${A}:federated-user/bob`, A, `${A}:eve`, 'aws', { ...rules, allowFederatedUsers: true }), 'AUTHN_STS_RESPONSE'],
    ['root', () => parseCallerIdentity(`arn:aws:iam::${A}:root`, A, A, 'aws', rules), 'AUTHN_ROOT_REFUSED'],
    ['federated (not allowed)', () => parseCallerIdentity(`arn:aws:sts::${A}:federated-user/bob`, A, `${A}:bob`, 'aws', rules), 'AUTHN_FEDERATED_REFUSED'],
    ['IAM role ARN (not a session)', () => parseCallerIdentity(`arn:aws:iam::${A}:role/R`, A, 'AROAEXAMPLEEXAMPLE12', 'aws', rules), 'AUTHN_IDENTITY_KIND'],
  ];
  for (const [name, parse, code] of refused) t.throws(parse, { code }, name);
});

t.test('instance identity roles: exactly aws:ec2-instance with an instance id, nothing that looks like one', async (t) => {
  const instance = (arn: string, userId: string, account = A) => parseCallerIdentity(arn, account, userId, 'aws', rules);
  for (const [arn, userId] of [
    [`arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123456789abcdef0`, 'AROAEXAMPLEEXAMPLE12:i-0123456789abcdef0'],
    [`arn:aws:iam::${A}:assumed-role/aws:ec2-instance/i-0123456789abcdef0`, `${A}:aws:ec2-instance:i-0123456789abcdef0`],
    [`arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123abcd`, 'AROAEXAMPLEEXAMPLE12:i-0123abcd'],
  ] as const) {
    const who = instance(arn, userId);
    t.equal(who.kind, 'ec2-instance', arn);
    t.equal(who.instanceId, arn.split('/').at(-1));
    t.equal(who.sessionTrusted, false, 'never fills a user template');
  }
  // An ordinary role whose session name is an instance id: anyone allowed to assume the role chose it.
  const lookalike = role('WebServers', 'i-0123456789abcdef0');
  t.equal(lookalike.kind, 'assumed-role');
  t.equal(lookalike.instanceId, undefined);
  const refused: Array<[string, string, string]> = [
    ['upper-case hex', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123456789ABCDEF0`, 'AROAEXAMPLEEXAMPLE12:i-0123456789ABCDEF0'],
    ['9 hex digits', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123456789`, 'AROAEXAMPLEEXAMPLE12:i-0123456789'],
    ['not an instance id', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/alice`, 'AROAEXAMPLEEXAMPLE12:alice'],
    ['UserId for another instance', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123456789abcdef0`, 'AROAEXAMPLEEXAMPLE12:i-0123456789abcdef1'],
    ['UserId of another account', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/i-0123456789abcdef0`, '999999999999:aws:ec2-instance:i-0123456789abcdef0'],
    ['extra path segment', `arn:aws:sts::${A}:assumed-role/aws:ec2-instance/x/i-0123456789abcdef0`, 'AROAEXAMPLEEXAMPLE12:i-0123456789abcdef0'],
  ];
  for (const [name, arn, userId] of refused) {
    t.throws(() => instance(arn, userId), { code: 'AUTHN_STS_RESPONSE' }, name);
  }
  t.throws(() => parseCallerIdentity(`arn:aws:sts::${A}:assumed-role/aws:ec2-instances/i-0123456789abcdef0`, A, 'AROAEXAMPLEEXAMPLE12:i-0123456789abcdef0', 'aws', rules), { code: 'AUTHN_STS_RESPONSE' }, 'a role name with ":" that is not the identity role');
});

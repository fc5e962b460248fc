// The production verifier against an STS-compatible fixture that checks
// SigV4 for real: every identity kind, every fault, and the attacks of
// DESIGN.md §3 rules 1–7 that need a live STS to show they fail.
import t from 'tap';
import { ACCOUNT } from '../../fixtures/sts-fixture.js';
import { REAL_ENDPOINT, craftInput, craftToken, input, startHarness } from '../../fixtures/sts-verifier-harness.js';
import { decodeIdentityToken, encodeIdentityToken } from '../../../protocol/identity-token.js';

t.test('each kind of principal (rule 7)', async (t) => {
  const { sts, authenticator } = await startHarness(t, { rules: { trustedSessionRoles: [`arn:aws:iam::${ACCOUNT}:role/Deploy`] } });
  const user = await authenticator.authenticate(await craftInput(sts, sts.principals.user));
  t.match(user, { kind: 'iam-user', name: 'alice', accountId: ACCOUNT, sessionTrusted: false }, 'IAM user (path dropped from the name)');
  const role = await authenticator.authenticate(await craftInput(sts, sts.principals.roleSession));
  t.match(role, { kind: 'assumed-role', name: 'Deploy', roleArn: `arn:aws:iam::${ACCOUNT}:role/Deploy`, sessionName: 'ci-run-42', sessionTrusted: true }, 'role the operator marked as pinning its session name');
  const sso = await authenticator.authenticate(await craftInput(sts, sts.principals.ssoSession));
  t.match(sso, { kind: 'assumed-role', ssoPermissionSet: 'Admin', sessionName: 'alice@corp.com', sessionTrusted: true }, 'Identity Center session');
  const lookalike = await authenticator.authenticate(await craftInput(sts, sts.principals.ssoLookalike));
  t.equal(lookalike.ssoPermissionSet, 'Admin_Prod', 'AWSReservedSSO_Admin_Prod_… is set Admin_Prod …');
  t.not(lookalike.ssoPermissionSet, 'Admin', '… and never set Admin');
  await t.rejects(authenticator.authenticate(await craftInput(sts, sts.principals.root)), { code: 'AUTHN_ROOT_REFUSED' }, 'root always refused');
  await t.rejects(authenticator.authenticate(await craftInput(sts, sts.principals.federated)), { code: 'AUTHN_FEDERATED_REFUSED' }, 'federated refused by default');
  await t.rejects(authenticator.authenticate(await craftInput(sts, sts.principals.otherAccount)), { code: 'AUTHN_ACCOUNT_NOT_ALLOWED' }, 'another account');
});

t.test('role sessions are untrusted unless configured; federated users when allowed', async (t) => {
  const { sts, authenticator } = await startHarness(t, { rules: { allowFederatedUsers: true } });
  t.equal((await authenticator.authenticate(await craftInput(sts, sts.principals.roleSession))).sessionTrusted, false, 'session name is attacker-chosen');
  t.match(await authenticator.authenticate(await craftInput(sts, sts.principals.federated)), { kind: 'federated-user', name: 'bob', sessionTrusted: false });
});

t.test('the STS request is rebuilt: body, action, method and headers cannot be chosen (rule 1)', async (t) => {
  const { sts, authenticator } = await startHarness(t);
  const p = sts.principals.user;
  const control = await authenticator.authenticate(await craftInput(sts, p));
  t.equal(control.kind, 'iam-user', 'control: a token crafted the canonical way verifies');
  const variations: Array<[string, Parameters<typeof craftToken>[2]]> = [
    ['extra body parameter', { stsBody: 'Action=GetCallerIdentity&Version=2011-06-15&Extra=1' }],
    ['another action', { stsBody: 'Action=AssumeRole&RoleArn=arn:aws:iam::111111111111:role/Admin&RoleSessionName=x&Version=2011-06-15' }],
    ['parameters reordered', { stsBody: 'Version=2011-06-15&Action=GetCallerIdentity' }],
    ['GET instead of POST', { stsMethod: 'GET', stsBody: '' }],
    ['another content type', { extraHeaders: { 'content-type': 'application/x-amz-json-1.1' } }],
    ['another audience', { audience: 'https://other-sshca.example' }],
    ['bound to another body', { boundBody: '{"publicKey":"ssh-ed25519 BBBB"}' }],
  ];
  for (const [name, craft] of variations) {
    await t.rejects(authenticator.authenticate(await craftInput(sts, p, craft)), { code: 'AUTHN_STS_REJECTED' }, name);
  }
  const refusedBeforeSts: Array<[string, Parameters<typeof craftToken>[2], string]> = [
    ['extra signed header (validly signed)', { extraHeaders: { 'x-forwarded-host': 'evil.example' } }, 'AUTHN_SIGNED_HEADERS'],
    ['audience not signed', { omitHeaders: ['x-sshca-audience'] }, 'AUTHN_SIGNED_HEADERS'],
    ['request hash not signed', { omitHeaders: ['x-sshca-request'] }, 'AUTHN_SIGNED_HEADERS'],
    ['scope region differs from the endpoint', { region: 'eu-west-1' }, 'AUTHN_CREDENTIAL_SCOPE'],
    ['signed 10 minutes ago', { signingDate: new Date(Date.now() - 10 * 60_000) }, 'AUTHN_STALE'],
    ['signed 2 minutes ahead', { signingDate: new Date(Date.now() + 2 * 60_000) }, 'AUTHN_STALE'],
  ];
  const before = sts.counts.sts;
  for (const [name, craft, code] of refusedBeforeSts) {
    await t.rejects(authenticator.authenticate(await craftInput(sts, p, craft)), { code }, name);
  }
  t.equal(sts.counts.sts, before, 'none of those reached STS');
});

t.test('endpoint look-alikes never reach the network (rule 2)', async (t) => {
  const { sts, authenticator } = await startHarness(t);
  const token = await craftToken(sts, sts.principals.user);
  const lookalikes = [
    'https://sts.eu-west-1.amazonaws.com.evil.example/', 'https://sts.eu-west-1.amazonaws.com:443/', 'https://user@sts.eu-west-1.amazonaws.com/',
    'https://sts.eu-west-1.amazonaws.com./', 'https://STS.eu-west-1.amazonaws.com/', 'https://sts.EU-WEST-1.amazonaws.com/', 'http://sts.eu-west-1.amazonaws.com/',
    'https://sts.eu-west-1.amazonaws.com', 'https://sts.eu-west-1.amazonaws.com/?x', 'https://52.94.0.1/', 'https://[::1]/', `${REAL_ENDPOINT} `,
    sts.url.replace('127.0.0.1', 'localhost'), sts.url.replace(/\/$/, ''), sts.url.replace('127.0.0.1', '127.1'),
  ];
  for (const endpoint of lookalikes) {
    const forged = encodeIdentityToken({ ...decodeIdentityToken(`SSHCA-AWS4 ${token}`), endpoint });
    await t.rejects(authenticator.authenticate(input(forged)), { code: 'AUTHN_ENDPOINT_NOT_ALLOWED' }, JSON.stringify(endpoint));
  }
  t.equal(sts.counts.sts, 0, 'nothing was sent anywhere');
});

t.test('duplicate Authorization headers differing in case (rule 4)', async (t) => {
  const { sts, authenticator } = await startHarness(t);
  const a = await craftToken(sts, sts.principals.user);
  await t.rejects(authenticator.authenticate(input(a, { authorization: [`SSHCA-AWS4 ${a}`, `SSHCA-AWS4 ${a}`] })), { code: 'AUTHN_DUPLICATE_HEADER' });
});

t.test('replay of a token that verified (rule 5)', async (t) => {
  const { sts, authenticator } = await startHarness(t);
  const token = await craftToken(sts, sts.principals.user);
  await authenticator.authenticate(input(token));
  await t.rejects(authenticator.authenticate(input(token)), { code: 'AUTHN_REPLAY' });
});

t.test('every STS fault fails closed (rule 6)', async (t) => {
  const { sts, authenticator } = await startHarness(t, { totalTimeoutMs: 400 });
  const cases: Array<[NonNullable<typeof sts.fault>, string]> = [
    ['throttle', 'UNAVAILABLE_STS_THROTTLED'],
    ['internal-error', 'UNAVAILABLE_STS'],
    ['slow', 'UNAVAILABLE_STS'],
    ['oversize', 'UNAVAILABLE_STS'],
    ['redirect', 'AUTHN_STS_REJECTED'],
    ['xml', 'AUTHN_STS_RESPONSE'],
    ['duplicate-arn', 'AUTHN_STS_RESPONSE'],
    ['sibling-identity', 'AUTHN_STS_RESPONSE'],
    ['identity-in-error', 'AUTHN_STS_REJECTED'],
  ];
  for (const [fault, code] of cases) {
    sts.fault = fault;
    await t.rejects(authenticator.authenticate(await craftInput(sts, sts.principals.user)), { code }, fault);
  }
  t.equal(sts.counts.redirected, 0, 'the redirect was never followed');
  sts.fault = null;
  t.equal((await authenticator.authenticate(await craftInput(sts, sts.principals.user))).kind, 'iam-user', 'and it recovers');
});

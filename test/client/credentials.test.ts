// The AWS default credential chain as `sshca login` uses it: process
// credentials, temporary credentials, and an expired SSO session — all
// without leaving this machine.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { IdentityTokenSigner } from '../../client/identity-token-signer.js';
import { errorCodeOf, runCli } from '../fixtures/cli.js';
import { startDevServer } from '../fixtures/dev-server.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { BODY, PATH, input, startHarness } from '../fixtures/sts-verifier-harness.js';


t.test('credential_process profiles work', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'frank' });
  const home = t.testdir();
  const creds = readFileSync(join(dev.dataDir, 'aws-credentials'), 'utf8');
  const helper = join(home, 'creds.sh');
  const out = JSON.stringify({ Version: 1, AccessKeyId: /aws_access_key_id = (\S+)/.exec(creds)![1], SecretAccessKey: /aws_secret_access_key = (\S+)/.exec(creds)![1] });
  writeFileSync(helper, `#!/bin/sh\necho '${out}'\n`);
  chmodSync(helper, 0o755);
  mkdirSync(join(home, '.aws'));
  writeFileSync(join(home, '.aws', 'config'), `[profile helper]\ncredential_process = ${helper}\n`);
  const r = await runCli(['login', '--server', dev.url, '--profile', 'helper', '--json'], { HOME: home });
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout).principals, ['frank']);
});

t.test('an expired SSO session says to run aws sso login for that profile', async (t) => {
  const dev = await startDevServer(t);
  const home = t.testdir();
  mkdirSync(join(home, '.aws', 'sso', 'cache'), { recursive: true });
  writeFileSync(
    join(home, '.aws', 'config'),
    '[profile corp]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Admin\nregion = eu-west-1\n' +
      '[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n',
  );
  const cacheKey = createHash('sha1').update('corp').digest('hex');
  writeFileSync(join(home, '.aws', 'sso', 'cache', `${cacheKey}.json`), JSON.stringify({ startUrl: 'https://corp.awsapps.com/start', region: 'eu-west-1', accessToken: 'x', expiresAt: '2020-01-01T00:00:00Z' }));
  const r = await runCli(['login', '--server', dev.url, '--profile', 'corp'], { HOME: home });
  t.equal(r.code, 5);
  t.equal(errorCodeOf(r.stderr), 'CLIENT_CREDENTIALS_EXPIRED');
  t.match(r.stderr, /aws sso login --profile corp/, 'names the command to run');
});

t.test('temporary credentials: the client signs the session token and the verifier accepts it', async (t) => {
  const { sts, authenticator } = await startHarness(t);
  const p = sts.principals.roleSession;
  const signer = new IdentityTokenSigner({ credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey, sessionToken: p.sessionToken! } });
  const token = await signer.sign({ endpoint: sts.url, audience: 'https://sshca.test.example', method: 'POST', pathAndQuery: PATH, body: BODY });
  const who = await authenticator.authenticate(input(token));
  t.match(who, { kind: 'assumed-role', name: 'Deploy', sessionName: 'ci-run-42' });
  const withoutToken = new IdentityTokenSigner({ credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey } });
  const bare = await withoutToken.sign({ endpoint: sts.url, audience: 'https://sshca.test.example', method: 'POST', pathAndQuery: PATH, body: '{"other":1}' });
  await t.rejects(authenticator.authenticate(input(bare, {}, '{"other":1}')), { code: 'AUTHN_SECURITY_TOKEN' }, 'ASIA key without its session token');
});

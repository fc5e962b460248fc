// SshcaInstanceTrust: the user data carries the bootstrap (pinned by hash)
// and the CA fingerprint, and the command line it renders is one the real
// sshca-bootstrap accepts.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import t from 'tap';
import { BOOTSTRAP_SCRIPT, bootstrapArguments, INSTALLED_PATH, SshcaInstanceTrust } from '../lib/sshca-instance-trust.js';

const FINGERPRINT = 'SHA256:Mnxd2BiMX4jiav93z43iO4AG6jO3nyNpv/qLH2RK8wA';
const SERVER = 'https://sshca.example.com';
const allow = { 'ec2-user': ['ops'], deploy: ['deploy', 'ci-bot'] };

t.test('the user data downloads the bootstrap asset, checks its SHA-256 and runs it with the pin and the allow map', async (t) => {
  const app = new App();
  const stack = new Stack(app, 'Instances', { env: { region: 'eu-west-1' } });
  const trust = new SshcaInstanceTrust(stack, 'Trust', { serverUrl: SERVER, caFingerprint: FINGERPRINT, allow });
  const role = new iam.Role(stack, 'InstanceRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
  trust.grantRead(role);
  new ec2.LaunchTemplate(stack, 'Template', { userData: trust.userData, role, requireImdsv2: true });
  const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> }; // eslint-disable-line @typescript-eslint/no-explicit-any

  const launchTemplate = Object.values(template.Resources).find((r) => r.Type === 'AWS::EC2::LaunchTemplate')!;
  const userData = JSON.stringify(launchTemplate.Properties.LaunchTemplateData.UserData['Fn::Base64']);
  const sha256 = createHash('sha256').update(readFileSync(BOOTSTRAP_SCRIPT)).digest('hex');
  t.match(userData, `echo '${sha256}  ${INSTALLED_PATH}.download' | sha256sum -c -`, 'the script is checked against the hash it had at synth');
  t.match(userData, 'aws s3 cp \'s3://');
  t.match(userData, `'${INSTALLED_PATH}' '--server' '${SERVER}' '--ca-fingerprint' '${FINGERPRINT}' '--allow' 'ec2-user=ops' '--allow' 'deploy=deploy,ci-bot' '--host-certificates'`);
  t.match(userData, 'case $sshca_rc in 0|3|4)');

  // The asset is the script as it is in the repository (staged by CDK into the assembly).
  const assembly = app.synth();
  const manifest = JSON.parse(readFileSync(join(assembly.directory, 'Instances.assets.json'), 'utf8')) as { files: Record<string, { source: { path: string; packaging: string } }> };
  const staged = Object.values(manifest.files).filter((f) => f.source.packaging === 'file' && !f.source.path.endsWith('.template.json'));
  t.equal(staged.length, 1);
  t.equal(createHash('sha256').update(readFileSync(join(assembly.directory, staged[0]!.source.path))).digest('hex'), sha256, 'the uploaded file is the hashed script');
  const policies = Object.values(template.Resources).filter((r) => r.Type === 'AWS::IAM::Policy');
  t.match(JSON.stringify(policies), /s3:GetObject/, 'the instance role may read the script');
});

t.test('rendered user data runs: the real bootstrap accepts the arguments; exit 3 and 4 are not boot failures', async (t) => {
  const dir = t.testdir();
  // A stand-in installed bootstrap: the real script, asked only to print the drop-in
  // (which parses and checks every argument, and changes nothing).
  const wrapper = join(dir, 'sshca-bootstrap');
  const log = join(dir, 'args');
  writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$@" > '${log}'\n[ -z "\${FAKE_RC:-}" ] || exit "$FAKE_RC"\nexec sh '${BOOTSTRAP_SCRIPT}' --print-dropin "$@"\n`);
  chmodSync(wrapper, 0o755);
  const script = join(dir, 'user-data.sh');
  const run = (rc?: number) => spawnSync('bash', [script], { encoding: 'utf8', env: { PATH: process.env.PATH, ...(rc === undefined ? {} : { FAKE_RC: String(rc) }) } });
  const ok = new SshcaInstanceTrust(new Stack(new App(), 'S2'), 'Trust', { serverUrl: SERVER, caFingerprint: FINGERPRINT, allow, refreshInterval: '10min', script: { installedAt: wrapper } });
  writeFileSync(script, ok.userData.render());
  const r = run();
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^TrustedUserCAKeys \/etc\/ssh\/sshca\/trusted_user_ca_keys$/m);
  t.same(readFileSync(log, 'utf8').trim().split('\n'), ['--server', SERVER, '--ca-fingerprint', FINGERPRINT, '--allow', 'ec2-user=ops', '--allow', 'deploy=deploy,ci-bot', '--refresh-interval', '10min', '--host-certificates']);
  t.equal(run(3).status, 0, 'pending (server unreachable): the timer completes it');
  t.equal(run(4).status, 0, 'host certificate pending');
  t.equal(run(1).status, 1, 'a refusal fails the boot script');
});

t.test('arguments the bootstrap would refuse fail the synth', async (t) => {
  const base = { serverUrl: SERVER, caFingerprint: FINGERPRINT, allow };
  t.throws(() => bootstrapArguments({ ...base, allow: { root: ['ops'] } }), /root cannot be allowed/);
  t.throws(() => bootstrapArguments({ ...base, allow: {} }), /at least one local account/);
  t.throws(() => bootstrapArguments({ ...base, allow: { deploy: [] } }), /at least one principal/);
  t.throws(() => bootstrapArguments({ ...base, allow: { deploy: ['a b'] } }), /principal "a b"/);
  t.throws(() => bootstrapArguments({ ...base, allow: { deploy: ['a,b'] } }), /principal "a,b"/);
  t.throws(() => bootstrapArguments({ ...base, caFingerprint: 'MD5:00' }), /caFingerprint/);
  t.throws(() => bootstrapArguments({ ...base, serverUrl: 'http://sshca.example.com' }), /https/);
  t.throws(() => bootstrapArguments({ ...base, serverUrl: 'https://sshca.example.com/path' }), /https/);
  t.throws(() => bootstrapArguments({ ...base, refreshInterval: '5 min' }), /refreshInterval/);
  t.same(bootstrapArguments({ ...base, hostCertificates: false, keepAuthorizedKeys: true }).slice(-1), ['--keep-authorized-keys']);
});

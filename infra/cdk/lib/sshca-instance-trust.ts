// EC2 user data that makes an instance trust sshca: installs
// infra/bootstrap/sshca-bootstrap (checked against the SHA-256 it had at
// synth) and runs it with the pinned user CA fingerprint and the allow map
// (docs/instances.md). Reusable in any stack that launches instances.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { PRINCIPAL_PATTERN } from '../../../server/policy/policy.js';

/** The bootstrap script in this repository. */
export const BOOTSTRAP_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bootstrap', 'sshca-bootstrap');
/** Where user data installs it (docs/instances.md). */
export const INSTALLED_PATH = '/usr/local/sbin/sshca-bootstrap';

export interface SshcaInstanceTrustProps {
  /** The sshca server URL, exactly as clients use it (SSHCA_AUDIENCE), e.g. https://sshca.example.com. */
  readonly serverUrl: string;
  /** The user CA's SHA256 fingerprint (`sshca-setup export` prints it): the trust anchor. */
  readonly caFingerprint: string;
  /** Local account → certificate principals that may log in as it (`--allow ACCOUNT=P1,P2`). Never root. */
  readonly allow: Readonly<Record<string, readonly string[]>>;
  /** Also get and renew sshca host certificates with the instance identity (`--host-certificates`). Default true. */
  readonly hostCertificates?: boolean;
  /** `--refresh-interval` (systemd time span). Default: the bootstrap's 5min. */
  readonly refreshInterval?: string;
  /** `--keep-authorized-keys`: a migration window in which authorized_keys still work. Default false. */
  readonly keepAuthorizedKeys?: boolean;
  /**
   * Where the script comes from. `asset` (default): uploaded as a CDK asset
   * and copied with the AWS CLI (Amazon Linux has it; call `grantRead` on the
   * instance role). `{ installedAt }`: already in the image (baked AMI).
   */
  readonly script?: 'asset' | { readonly installedAt: string };
  /** User data to append to (e.g. an instance's or launch template's); default a new Linux one. */
  readonly userData?: ec2.UserData;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
// The bootstrap's own checks (infra/bootstrap/sshca-bootstrap), so a value it would refuse fails the synth.
const ACCOUNT_NAME = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/;
const TIME_SPAN = /^[0-9]+(?:s|sec|min|m|h|d)?$/;

/** Single-quoted for sh: nothing in the value is expanded. */
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** User data that runs sshca-bootstrap; `userData` is what to give an instance or launch template. */
export class SshcaInstanceTrust extends Construct {
  readonly userData: ec2.UserData;
  /** The uploaded script (when `script` is `asset`): instance roles need read access to it. */
  readonly scriptAsset?: s3assets.Asset;
  /** The bootstrap command line (arguments single-quoted), as it appears in the user data. */
  readonly command: string;

  constructor(scope: Construct, id: string, props: SshcaInstanceTrustProps) {
    super(scope, id);
    const args = bootstrapArguments(props);
    this.userData = props.userData ?? ec2.UserData.forLinux();
    let path: string;
    this.userData.addCommands('# sshca: trust the sshca user CA (SshcaInstanceTrust, docs/instances.md)', 'set -eu');
    if (props.script === undefined || props.script === 'asset') {
      const script = readFileSync(BOOTSTRAP_SCRIPT);
      const sha256 = createHash('sha256').update(script).digest('hex');
      this.scriptAsset = new s3assets.Asset(this, 'Script', { path: BOOTSTRAP_SCRIPT });
      path = INSTALLED_PATH;
      // The bucket is the CDK bootstrap bucket; the hash pinned here makes a
      // replaced object fail closed instead of running as root.
      this.userData.addCommands(
        `aws s3 cp ${quote(`s3://${this.scriptAsset.s3BucketName}/${this.scriptAsset.s3ObjectKey}`)} ${quote(`${path}.download`)}`,
        `echo ${quote(`${sha256}  ${path}.download`)} | sha256sum -c -`,
        `install -m 0755 ${quote(`${path}.download`)} ${quote(path)}`,
        `rm -f ${quote(`${path}.download`)}`,
      );
    } else {
      path = props.script.installedAt;
      if (!/^\/[\w./-]+$/.test(path)) throw new Error(`SshcaInstanceTrust: script.installedAt ${JSON.stringify(path)} must be an absolute path`);
    }
    this.command = [quote(path), ...args.map(quote)].join(' ');
    this.userData.addCommands(
      'sshca_rc=0',
      `${this.command} || sshca_rc=$?`,
      // 3: the server was not reachable; the settings (with the pin) and the
      // refresh timer are installed and sshd is unchanged: the timer completes
      // it. 4: trusted, but a host certificate is still pending (renewed by the
      // timer). Anything else is a refusal: fail the boot script loudly.
      'case $sshca_rc in 0|3|4) ;; *) echo "sshca-bootstrap failed ($sshca_rc)" >&2; exit "$sshca_rc" ;; esac',
    );
  }

  /** Lets an instance role read the uploaded script. */
  grantRead(grantee: iam.IGrantable): void {
    this.scriptAsset?.grantRead(grantee);
  }
}

/** The command line after the script's path; every value checked (so user data never carries a surprise). */
export function bootstrapArguments(props: Pick<SshcaInstanceTrustProps, 'serverUrl' | 'caFingerprint' | 'allow' | 'hostCertificates' | 'refreshInterval' | 'keepAuthorizedKeys'>): string[] {
  const fail = (what: string): never => {
    throw new Error(`SshcaInstanceTrust: ${what}`);
  };
  if (!Token.isUnresolved(props.serverUrl)) {
    let url: URL | undefined;
    try {
      url = new URL(props.serverUrl);
    } catch {
      fail(`serverUrl ${JSON.stringify(props.serverUrl)} is not a URL`);
    }
    if (url?.protocol !== 'https:' || url.pathname !== '/' || url.search || url.hash || url.username) fail(`serverUrl ${JSON.stringify(props.serverUrl)}: https://host[:port] only`);
  }
  if (!Token.isUnresolved(props.caFingerprint) && !FINGERPRINT.test(props.caFingerprint)) fail(`caFingerprint ${JSON.stringify(props.caFingerprint)}: expected SHA256:<43 base64 characters> (sshca-setup export prints it)`);
  const accounts = Object.keys(props.allow);
  if (accounts.length === 0) fail('allow: at least one local account');
  const args = ['--server', props.serverUrl, '--ca-fingerprint', props.caFingerprint];
  for (const account of accounts) {
    const principals = props.allow[account] ?? [];
    if (!ACCOUNT_NAME.test(account) || account === '.' || account === '..') fail(`allow: ${JSON.stringify(account)} is not a local account name`);
    // The bootstrap refuses root as well; refusing here keeps it out of user data.
    if (account === 'root') fail('allow: root cannot be allowed (sshca never lets certificates log in as root)');
    if (principals.length === 0) fail(`allow: ${account} needs at least one principal`);
    for (const p of principals) if (!PRINCIPAL_PATTERN.test(p) || p.includes(',')) fail(`allow: principal ${JSON.stringify(p)} of ${account} is not valid`);
    args.push('--allow', `${account}=${principals.join(',')}`);
  }
  if (props.refreshInterval !== undefined) {
    if (!TIME_SPAN.test(props.refreshInterval)) fail(`refreshInterval ${JSON.stringify(props.refreshInterval)}: e.g. 5min, 300s, 1h`);
    args.push('--refresh-interval', props.refreshInterval);
  }
  if (props.keepAuthorizedKeys) args.push('--keep-authorized-keys');
  if (props.hostCertificates ?? true) args.push('--host-certificates');
  return args;
}

// The sshca service role's permissions: exactly what `sshca-setup policy`
// prints (ca-setup/iam-policy.ts), with the key ARNs as CloudFormation
// references. One source of truth: a change there is a change here.
import * as iam from 'aws-cdk-lib/aws-iam';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { iamPolicyFor, type AnchorAccess, type HostCertificateAccess } from '../../../ca-setup/iam-policy.js';
import type { SshcaKey } from './sshca-keys.js';

export interface SshcaServerPolicyProps {
  readonly role: iam.IRole;
  /** The keys the server signs with, in `sshca-setup policy --key …` order. */
  readonly keys: readonly SshcaKey[];
  /** Host certificates: EC2 read access of the server's own account, or `sts:AssumeRole` of SSHCA_EC2_ROLE. */
  readonly hosts: HostCertificateAccess;
  /** The audit anchor bucket and prefix (`sshca-setup policy --anchors`). */
  readonly anchors?: AnchorAccess;
}

/** The policy document `sshca-setup policy --key … --hosts [--ec2-role …]` prints for these keys. */
export function serverPolicyDocument(keys: readonly SshcaKey[], hosts: HostCertificateAccess, anchors?: AnchorAccess): iam.PolicyDocument {
  const json = iamPolicyFor(keys.map((k) => ({ keyArn: k.key.keyArn, keySpec: k.keySpec })), hosts, anchors);
  // minimize off: the statements stay as sshca-setup prints them (Sids, order), not merged.
  return new iam.PolicyDocument({ statements: (json as { Statement: object[] }).Statement.map((s) => iam.PolicyStatement.fromJson(s)), minimize: false });
}

/** An inline policy on the service role holding exactly `serverPolicyDocument`. */
export class SshcaServerPolicy extends Construct {
  readonly policy: iam.Policy;

  constructor(scope: Construct, id: string, props: SshcaServerPolicyProps) {
    super(scope, id);
    this.policy = new iam.Policy(this, 'Policy', {
      document: serverPolicyDocument(props.keys, props.hosts, props.anchors),
      roles: [props.role],
    });
    if (props.hosts.ec2Role) {
      // sts:AssumeRole of the read role *in every member account*: the role
      // name is fixed, the account is the instance's (iam-policy.ts writes
      // `{account}` as `*`). The role's own trust policy admits only this role.
      Validations.of(this.policy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${props.hosts.ec2Role.replace('{account}', '*')}]`,
        reason: 'SSHCA_EC2_ROLE is assumed in each instance\'s account: the account part of the role ARN is the only wildcard; the member roles trust only this service role',
      });
    } else {
      // ec2:DescribeInstances has no resource-level permissions: AWS only accepts Resource "*" (read-only).
      Validations.of(this.policy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ec2:DescribeInstances supports no resource-level permissions (AWS requires Resource "*"); it only reads, and the server needs it to learn what an instance asking for a host certificate is',
      });
    }
  }
}

// `sshca-setup policy`: the least-privilege IAM policy for the sshca server.
import { KMS_KEY_SPECS } from '../server/ca/kms-signer.js';

/**
 * kms:Sign on exactly these keys, only with the algorithm and message type
 * sshca uses for each (so a stolen role cannot sign differently);
 * GetPublicKey/DescribeKey in their own statement. Nothing else.
 */
export function iamPolicyFor(keys: ReadonlyArray<{ keyArn: string; keySpec: string }>, hosts?: HostCertificateAccess, anchors?: AnchorAccess): object {
  const statements: object[] = keys.map((k, i) => {
    const spec = KMS_KEY_SPECS[k.keySpec];
    if (!spec) throw new Error(`key spec ${k.keySpec} is not usable by sshca`);
    return {
      Sid: `SshcaSign${i}`,
      Effect: 'Allow',
      Action: 'kms:Sign',
      Resource: k.keyArn,
      Condition: { StringEquals: { 'kms:SigningAlgorithm': spec.kms, 'kms:MessageType': spec.messageType } },
    };
  });
  statements.push({ Sid: 'SshcaReadKeys', Effect: 'Allow', Action: ['kms:GetPublicKey', 'kms:DescribeKey'], Resource: keys.map((k) => k.keyArn) });
  if (hosts?.ec2Role) {
    // The read role in each member account (SSHCA_EC2_ROLE); its own policy is ec2ReadRolePolicy.
    statements.push({ Sid: 'SshcaAssumeEc2ReadRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: hosts.ec2Role.replace('{account}', '*') });
  } else if (hosts) {
    statements.push(EC2_DESCRIBE_INSTANCES);
  }
  if (anchors) {
    // Write-once anchors under one prefix (docs/audit.md, "Anchors"): no delete, no bucket configuration.
    // s3:PutObjectRetention: each PUT carries COMPLIANCE retention headers.
    statements.push({ Sid: 'SshcaAnchorObjects', Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject', 's3:PutObjectRetention'], Resource: `${anchors.bucketArn}/${anchors.prefix}*` });
    statements.push({ Sid: 'SshcaAnchorList', Effect: 'Allow', Action: 's3:ListBucket', Resource: anchors.bucketArn, Condition: { StringLike: { 's3:prefix': `${anchors.prefix}*` } } });
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** The audit anchor bucket (SSHCA_AUDIT_ANCHOR=s3://BUCKET/PREFIX/). */
export interface AnchorAccess {
  /** `arn:<partition>:s3:::BUCKET` */
  readonly bucketArn: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
}

/** Host certificates (issue 12): how the server may ask EC2 about instances. */
export interface HostCertificateAccess {
  /** SSHCA_EC2_ROLE (`arn:…:iam::{account}:role/NAME`): assumed per account; unset: the server's own account only. */
  readonly ec2Role?: string;
}

/**
 * ec2:DescribeInstances supports no resource-level permissions or conditions
 * that narrow it to one instance, so it is granted on `*`; it reads, never
 * changes, anything.
 */
const EC2_DESCRIBE_INSTANCES = { Sid: 'SshcaDescribeInstances', Effect: 'Allow', Action: 'ec2:DescribeInstances', Resource: '*' };

/** The permission policy of the read role in each member account (SSHCA_EC2_ROLE). */
export function ec2ReadRolePolicy(): object {
  return { Version: '2012-10-17', Statement: [EC2_DESCRIBE_INSTANCES] };
}

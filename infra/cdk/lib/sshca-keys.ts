// The three signing keys of an sshca deployment, in KMS: the user CA, the
// host CA and the audit checkpoint key. Their private halves never leave KMS;
// only the service's task role may sign, and only as sshca signs.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { iamPolicyFor } from '../../../ca-setup/iam-policy.js';

/** One sshca signing key: the KMS key and the spec sshca signs it with. */
export interface SshcaKey {
  readonly key: kms.Key;
  readonly keySpec: string;
}

export interface SshcaKeysProps {
  /** The role the server runs as: the only principal allowed to sign. */
  readonly signer: iam.IRole;
  /** KMS key spec of both CA keys (ECC_NIST_EDWARDS25519 by default). */
  readonly caKeySpec: string;
  /** KMS key spec of the checkpoint key (Ed25519 or P-256). */
  readonly checkpointKeySpec: string;
  /** alias/<prefix>-user-ca, alias/<prefix>-host-ca, alias/<prefix>-checkpoint. */
  readonly aliasPrefix: string;
}

/**
 * What the account (its administrators, through IAM) may do with a key:
 * everything needed to manage it, nothing that uses it — no kms:Sign, no
 * kms:CreateGrant (a grant could hand out Sign without a policy change).
 */
const KEY_ADMINISTRATION_ACTIONS = [
  'kms:DescribeKey',
  'kms:GetKeyPolicy',
  'kms:PutKeyPolicy',
  'kms:GetPublicKey',
  'kms:ListResourceTags',
  'kms:ListKeyPolicies',
  'kms:ListGrants',
  'kms:RevokeGrant',
  'kms:RetireGrant',
  'kms:EnableKey',
  'kms:DisableKey',
  'kms:UpdateKeyDescription',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:CreateAlias',
  'kms:UpdateAlias',
  'kms:DeleteAlias',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

/** The user CA, host CA and checkpoint keys with key policies that let only `signer` sign. */
export class SshcaKeys extends Construct {
  readonly userCa: SshcaKey;
  readonly hostCa: SshcaKey;
  readonly checkpoint: SshcaKey;

  constructor(scope: Construct, id: string, props: SshcaKeysProps) {
    super(scope, id);
    this.userCa = signingKey(this, 'UserCaKey', props, props.caKeySpec, 'user-ca', 'sshca user CA: signs user certificates (kms:Sign by the sshca service role only)');
    this.hostCa = signingKey(this, 'HostCaKey', props, props.caKeySpec, 'host-ca', 'sshca host CA: signs host certificates (kms:Sign by the sshca service role only)');
    this.checkpoint = signingKey(this, 'CheckpointKey', props, props.checkpointKeySpec, 'checkpoint', 'sshca audit checkpoints: signs the audit chain (kms:Sign by the sshca service role only)');
  }

  /** In the order the server policy lists them (SshcaSign0 user, 1 host, 2 checkpoint). */
  all(): SshcaKey[] {
    return [this.userCa, this.hostCa, this.checkpoint];
  }
}

function signingKey(scope: Construct, id: string, props: SshcaKeysProps, keySpec: string, aliasSuffix: string, description: string): SshcaKey {
  // The signer's statements come from the same code as the IAM policy
  // (`sshca-setup policy`): Sign only with sshca's algorithm and message type.
  // In a key policy, Resource "*" means "this key".
  const [sign, read] = (iamPolicyFor([{ keyArn: '*', keySpec }]) as { Statement: Array<Record<string, unknown>> }).Statement;
  const policy = new iam.PolicyDocument({
    statements: [
      // AWS requires a key policy that keeps the key manageable: with no
      // statement for the account, a lost role would leave the CA key
      // undeletable and its policy unfixable (KMS refuses such a policy unless
      // the lockout check is bypassed). The account root delegates to IAM,
      // so administrators need an IAM policy too, and every change is in
      // CloudTrail. Administration only: no kms:Sign for anyone but the
      // service, so no other principal in the account can issue certificates.
      new iam.PolicyStatement({
        sid: 'KeyAdministration',
        principals: [new iam.AccountRootPrincipal()],
        actions: KEY_ADMINISTRATION_ACTIONS,
        resources: ['*'],
      }),
      iam.PolicyStatement.fromJson({ ...sign, Sid: 'SshcaServiceSign', Principal: { AWS: props.signer.roleArn } }),
      iam.PolicyStatement.fromJson({ ...read, Sid: 'SshcaServiceReadKey', Principal: { AWS: props.signer.roleArn } }),
    ],
  });
  const key = new kms.Key(scope, id, {
    description,
    keySpec: keySpec as kms.KeySpec,
    keyUsage: kms.KeyUsage.SIGN_VERIFY,
    policy,
    alias: `alias/${props.aliasPrefix}-${aliasSuffix}`,
    // A CA key is the trust anchor of every instance: deleting the stack must
    // not delete it (a deletion scheduled by hand waits the default 30 days).
    removalPolicy: RemovalPolicy.RETAIN,
  });
  return { key, keySpec };
}

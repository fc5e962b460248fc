// The audit anchor bucket (docs/audit.md, "Anchors"): the server publishes
// its signed chain head here, write-once, under S3 Object Lock in
// COMPLIANCE mode, so deleting the newest audit records from the database
// shows (AUDIT_TRUNCATED). Nobody — this account's administrators included —
// can delete or replace an anchor while its retention lasts.
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Where the server writes anchors inside the bucket. */
export const ANCHOR_PREFIX = 'audit-anchors/';

export interface AuditAnchorsProps {
  /** The bucket's default COMPLIANCE retention, in days. */
  readonly retentionDays: number;
}

export class AuditAnchors extends Construct {
  readonly bucket: s3.Bucket;
  /** SSHCA_AUDIT_ANCHOR */
  readonly location: string;

  constructor(scope: Construct, id: string, props: AuditAnchorsProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      // Object Lock turns versioning on for good; the default retention covers any object, the server also sets its own.
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(props.retentionDays)),
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Locked versions cannot be deleted anyway; the bucket outlives the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Object Lock protects versions, not names: a plain DELETE would stack a
    // delete marker that hides an anchor, and a PUT without If-None-Match a
    // new version on top of it. Both are refused to everyone; so is loosening
    // the lock. (The server always sends If-None-Match: *.)
    const everyone = new iam.AnyPrincipal();
    this.bucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AnchorsAreNeverDeleted',
      effect: iam.Effect.DENY,
      principals: [everyone],
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutBucketObjectLockConfiguration'],
      resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
    }));
    this.bucket.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AnchorsAreNeverReplaced',
      effect: iam.Effect.DENY,
      principals: [everyone],
      actions: ['s3:PutObject'],
      resources: [this.bucket.arnForObjects('*')],
      conditions: { Null: { 's3:if-none-match': 'true' } },
    }));
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Anchors are write-once (Object Lock COMPLIANCE, deletes denied to everyone); every publication is logged by the server itself ("audit head anchored"), and server access logs would need a second, unlocked bucket',
    });
    this.location = `s3://${this.bucket.bucketName}/${ANCHOR_PREFIX}`;
  }
}

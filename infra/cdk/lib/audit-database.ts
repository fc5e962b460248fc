// The shared audit store: Aurora PostgreSQL Serverless v2, private,
// encrypted, backed up, reachable only from the service.
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface AuditDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly backupRetentionDays: number;
  readonly logRetentionDays: number;
  readonly minAcu: number;
  readonly maxAcu: number;
}

/** The database's user and name: the URL in SSHCA_STORE names them; the password comes from the secret. */
export const DATABASE_USER = 'sshca';
export const DATABASE_NAME = 'sshca';
export const DATABASE_PORT = 5432;

/** Aurora PostgreSQL cluster (a writer and a reader in another AZ) with its credentials in Secrets Manager. */
export class AuditDatabase extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: AuditDatabaseProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'sshca audit database: PostgreSQL from the sshca service only',
      allowAllOutbound: false,
    });
    // A fixed identifier, so the PostgreSQL log group can be created (with its
    // retention) before RDS would create it without one — and without the
    // Lambda function CDK's cloudwatchLogsRetention deploys for that.
    const clusterIdentifier = `${Stack.of(this).stackName}-audit`.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const postgresLogs = new logs.LogGroup(this, 'PostgresLogs', {
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      clusterIdentifier,
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_16_13 }),
      writer: rds.ClusterInstance.serverlessV2('Writer', { publiclyAccessible: false }),
      // A reader in another AZ that scales with the writer: a failover target, not a read path.
      readers: [rds.ClusterInstance.serverlessV2('Reader', { publiclyAccessible: false, scaleWithWriter: true })],
      serverlessV2MinCapacity: props.minAcu,
      serverlessV2MaxCapacity: props.maxAcu,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      port: DATABASE_PORT,
      // The generated password leaves out characters that would need
      // escaping in a URL or a shell (CDK's default exclusions).
      credentials: rds.Credentials.fromGeneratedSecret(DATABASE_USER),
      defaultDatabaseName: DATABASE_NAME,
      storageEncrypted: true,
      backup: { retention: Duration.days(props.backupRetentionDays) },
      deletionProtection: true,
      // The audit record outlives the stack: deleting it leaves a final snapshot.
      removalPolicy: RemovalPolicy.SNAPSHOT,
      copyTagsToSnapshot: true,
      cloudwatchLogsExports: ['postgresql'],
      // TLS on every connection (the service connects with sslmode=verify-full).
      parameters: { 'rds.force_ssl': '1' },
      iamAuthentication: false,
    });
    this.cluster.node.addDependency(postgresLogs);
    if (!this.cluster.secret) throw new Error('the cluster has no generated secret');
    this.secret = this.cluster.secret;

    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-RDS6',
      reason: 'The server connects with the generated password from Secrets Manager (ECS secret); IAM auth tokens expire after 15 minutes and sshca\'s pool has no token refresh',
    });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-RDS11',
      reason: 'Default port kept: the security group admits only the sshca service, so a non-default port would add no protection',
    });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'ECS injects the password at task start; automatic rotation would break running tasks until redeployed. Rotate by hand: rotate the secret, then force a new deployment (docs/deploy.md)',
    });
  }

  /** The service's security group may connect (and only it): ingress here, egress there. */
  allowFrom(service: ec2.ISecurityGroup): void {
    this.securityGroup.connections.allowFrom(service, ec2.Port.tcp(DATABASE_PORT), 'PostgreSQL from the sshca service');
  }
}

// One sshca deployment: network, keys, database, service, alarms.
import { Aws, CfnOutput, Stack, Validations, type CfnElement, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { ANCHOR_PREFIX, AuditAnchors } from './audit-anchors.js';
import { AuditDatabase, DATABASE_NAME, DATABASE_PORT, DATABASE_USER } from './audit-database.js';
import { SshcaKeys } from './sshca-keys.js';
import { SshcaNetwork } from './sshca-network.js';
import { SshcaServerPolicy } from './sshca-server-policy.js';
import { SettingsError, starterPolicy, stsEndpointsOf, type SshcaSettings } from './sshca-settings.js';
import { SshcaAlarms } from './sshca-alarms.js';
import { SshcaService } from './sshca-service.js';

/** SSM parameter values: Standard holds 4 KB, Advanced 8 KB. */
const STANDARD_PARAMETER_BYTES = 4096;
const ADVANCED_PARAMETER_BYTES = 8192;

export interface SshcaStackProps extends StackProps {
  readonly settings: SshcaSettings;
  /** The repository root (the container image's build context). */
  readonly repoRoot: string;
}

/** The sshca service on AWS, parameterised by `SshcaSettings` (CDK context). */
export class SshcaStack extends Stack {
  readonly network: SshcaNetwork;
  readonly keys: SshcaKeys;
  readonly taskRole: iam.Role;
  readonly database: AuditDatabase;
  readonly service: SshcaService;
  readonly alarms: SshcaAlarms;
  readonly policyParameter: ssm.IStringParameter;
  /** The audit anchor bucket (absent with anchorRetentionDays=0). */
  readonly anchors: AuditAnchors | undefined;

  constructor(scope: Construct, id: string, props: SshcaStackProps) {
    super(scope, id, { description: 'sshca: SSH certificate authority (ECS Fargate, ALB, Aurora PostgreSQL, KMS)', ...props });
    const { settings } = props;

    this.network = new SshcaNetwork(this, 'Network', {
      maxAzs: settings.maxAzs,
      natGateways: settings.natGateways,
      logRetentionDays: settings.logRetentionDays,
      vpcEndpoints: settings.vpcEndpoints,
    });

    // The server's identity. Only ECS tasks of this account may assume it
    // (confused-deputy conditions); its only permissions are the sshca-setup
    // policy below, and the key policies name it as the only signer.
    this.taskRole = new iam.Role(this, 'ServiceRole', {
      description: 'sshca server: signs with the CA and checkpoint keys; exactly what sshca-setup policy prints',
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:ecs:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    });
    this.keys = new SshcaKeys(this, 'Keys', {
      signer: this.taskRole,
      caKeySpec: settings.caKeySpec,
      checkpointKeySpec: settings.checkpointKeySpec,
      aliasPrefix: settings.keyAliasPrefix,
    });
    // The audit chain's head, anchored where the database cannot rewrite it (docs/audit.md, "Anchors").
    this.anchors = settings.anchorRetentionDays > 0 ? new AuditAnchors(this, 'AuditAnchors', { retentionDays: settings.anchorRetentionDays }) : undefined;
    const serverPolicy = new SshcaServerPolicy(this, 'ServerPolicy', {
      role: this.taskRole,
      keys: this.keys.all(),
      hosts: settings.ec2Role ? { ec2Role: settings.ec2Role } : {},
      ...(this.anchors ? { anchors: { bucketArn: this.anchors.bucket.bucketArn, prefix: ANCHOR_PREFIX } } : {}),
    });
    if (this.anchors) {
      Validations.of(serverPolicy.policy).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.anchors.bucket.node.defaultChild as CfnElement)}.Arn>/${ANCHOR_PREFIX}*]`,
        reason: 'Anchors are objects named by sequence number, created over time under one prefix: the server writes and reads them there, and the bucket policy denies every delete and every overwrite',
      });
    }

    this.database = new AuditDatabase(this, 'AuditDatabase', {
      vpc: this.network.vpc,
      subnets: this.network.databaseSubnets,
      backupRetentionDays: settings.backupRetentionDays,
      logRetentionDays: settings.logRetentionDays,
      minAcu: settings.databaseMinAcu,
      maxAcu: settings.databaseMaxAcu,
    });

    this.policyParameter = this.policy(settings);
    const stsEndpoints = stsEndpointsOf(settings, this);
    this.service = new SshcaService(this, 'Service', {
      settings,
      vpc: this.network.vpc,
      loadBalancerSubnets: this.network.loadBalancerSubnets,
      serviceSubnets: this.network.serviceSubnets,
      trustedProxies: this.network.loadBalancerCidrs(),
      taskRole: this.taskRole,
      keys: this.keys,
      stsEndpoints,
      policyParameter: this.policyParameter,
      ...(this.anchors ? { anchors: { location: this.anchors.location, retentionDays: settings.anchorRetentionDays } } : {}),
      database: { secret: this.database.secret, host: this.database.cluster.clusterEndpoint.hostname, port: DATABASE_PORT, user: DATABASE_USER, name: DATABASE_NAME },
      repoRoot: props.repoRoot,
    });
    this.database.allowFrom(this.service.serviceSecurityGroup);
    if (this.network.endpointSecurityGroup) {
      this.network.endpointSecurityGroup.connections.allowFrom(this.service.serviceSecurityGroup, ec2.Port.tcp(443), 'HTTPS from the sshca service');
    }

    this.alarms = new SshcaAlarms(this, 'Alarms', {
      logGroup: this.service.logGroup,
      loadBalancer: this.service.loadBalancer,
      targetGroup: this.service.targetGroup,
      noIssuanceMinutes: settings.noIssuanceMinutes,
      ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
    });

    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output('ServerUrl', settings.audience, 'SSHCA_AUDIENCE: sshca login --server <this>');
    output('LoadBalancerDnsName', this.service.loadBalancer.loadBalancerDnsName, 'Point the domain here (CNAME or alias) unless hostedZoneId was given');
    output('UserCaKeyArn', this.keys.userCa.key.keyArn, 'sshca-setup export --key <this> prints the fingerprint instances pin');
    output('HostCaKeyArn', this.keys.hostCa.key.keyArn, 'The host CA (sshca config trusts it)');
    output('CheckpointKeyArn', this.keys.checkpoint.key.keyArn, 'Signs audit checkpoints');
    output('ServiceRoleArn', this.taskRole.roleArn, 'The server role: member accounts\' SSHCA_EC2_ROLE trusts it');
    output('PolicyParameterName', this.policyParameter.parameterName, 'The policy (SSM); change it, then force a new deployment');
    if (this.anchors) output('AuditAnchorBucket', this.anchors.location, 'SSHCA_AUDIT_ANCHOR: auditors check with aws s3 sync <this> ./anchors && sshca audit verify --anchors ./anchors');
    output('DatabaseSecretArn', this.database.secret.secretArn, 'Aurora credentials');
    output('ClusterName', this.service.service.cluster.clusterName, 'aws ecs update-service --cluster <this> --service <ServiceName> --force-new-deployment');
    output('ServiceName', this.service.service.serviceName, 'The ECS service');
    output('AlarmTopicArn', this.alarms.topic.topicArn, 'Subscribe operators here');
  }

  /** The policy parameter: the operator's (ssm:), or one this stack writes (file: or the starter). */
  private policy(settings: SshcaSettings): ssm.IStringParameter {
    if (settings.policy.kind === 'ssm') return ssm.StringParameter.fromStringParameterName(this, 'Policy', settings.policy.parameterName);
    const text = settings.policy.kind === 'file' ? settings.policy.text : starterPolicy(settings);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > ADVANCED_PARAMETER_BYTES) {
      throw new SettingsError(`context policy: ${bytes} bytes is more than an SSM parameter holds (8 KB); keep the policy in an SSM parameter you manage (-c policy=ssm:NAME) only if it fits, otherwise shorten it with YAML anchors`);
    }
    return new ssm.StringParameter(this, 'Policy', {
      description: 'sshca policy (docs/policy.md): written to SSHCA_POLICY by the container before the server starts',
      stringValue: text,
      tier: bytes > STANDARD_PARAMETER_BYTES ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });
  }
}

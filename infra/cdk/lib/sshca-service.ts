// The sshca server on ECS Fargate: stateless replicas in several AZs behind
// an HTTPS Application Load Balancer, configured entirely by environment
// variables and ECS secrets (docs/deploy.md names every one).
import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { SshcaKeys } from './sshca-keys.js';
import type { SshcaSettings } from './sshca-settings.js';

/** The API port inside the task (the load balancer's target). */
export const SERVER_PORT = 8080;
/** The metrics listener: loopback inside the task, never a target, never in a security group. */
export const METRICS_PORT = 9090;
/** Where the container writes the policy it received from SSM before starting the server. */
export const POLICY_PATH = '/tmp/sshca/policy.yaml';

export interface SshcaServiceProps {
  readonly settings: SshcaSettings;
  readonly vpc: ec2.IVpc;
  readonly loadBalancerSubnets: ec2.SubnetSelection;
  readonly serviceSubnets: ec2.SubnetSelection;
  /** SSHCA_TRUSTED_PROXIES: the load balancer subnets' CIDRs. */
  readonly trustedProxies: readonly string[];
  /** The role the server runs as (its only permissions are the sshca-setup policy). */
  readonly taskRole: iam.IRole;
  readonly keys: SshcaKeys;
  readonly stsEndpoints: readonly string[];
  readonly policyParameter: ssm.IStringParameter;
  readonly database: { readonly secret: secretsmanager.ISecret; readonly host: string; readonly port: number; readonly user: string; readonly name: string };
  /** The repository root: the Dockerfile's build context when no `image` is given. */
  readonly repoRoot: string;
  /** SSHCA_AUDIT_ANCHOR (s3://…) and the retention the server sets on each anchor. */
  readonly anchors?: { readonly location: string; readonly retentionDays: number };
}

/** Cluster, task definition, service, load balancer and listeners. */
export class SshcaService extends Construct {
  readonly service: ecs.FargateService;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly httpsListener: elbv2.ApplicationListener;
  readonly logGroup: logs.LogGroup;
  readonly serviceSecurityGroup: ec2.SecurityGroup;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: SshcaServiceProps) {
    super(scope, id);
    const { settings } = props;

    const cluster = new ecs.Cluster(this, 'Cluster', { vpc: props.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: settings.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.RETAIN });

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: settings.cpu,
      memoryLimitMiB: settings.memoryMiB,
      taskRole: props.taskRole,
      runtimePlatform: { operatingSystemFamily: ecs.OperatingSystemFamily.LINUX, cpuArchitecture: ecs.CpuArchitecture.of(settings.cpuArchitecture) },
    });

    taskDefinition.addContainer('Server', {
      image: containerImage(this, settings, props.repoRoot),
      // The policy arrives as an ECS secret (SSM parameter) in an environment
      // variable; the server reads a file, so write it first (0600, the
      // image's user), then exec: the server replaces the shell as PID 1 and
      // receives ECS's SIGTERM itself. A policy change is an SSM update plus a
      // new deployment, so every replica runs the same policy.
      entryPoint: ['/bin/sh', '-c'],
      command: [
        `umask 077 && mkdir -p "$(dirname "$SSHCA_POLICY")" && printf '%s\\n' "$SSHCA_POLICY_DOCUMENT" > "$SSHCA_POLICY" && unset SSHCA_POLICY_DOCUMENT && exec ${settings.serverCommand}`,
      ],
      environment: serverEnvironment(props),
      secrets: {
        SSHCA_POLICY_DOCUMENT: ecs.Secret.fromSsmParameter(props.policyParameter),
        // node-postgres takes the password from PGPASSWORD when the URL has none:
        // the secret never appears in the task definition or the URL.
        PGPASSWORD: ecs.Secret.fromSecretsManager(props.database.secret, 'password'),
      },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'sshca', mode: ecs.AwsLogDriverMode.NON_BLOCKING }),
      portMappings: [{ containerPort: SERVER_PORT, protocol: ecs.Protocol.TCP, name: 'api' }],
      // /tmp takes the policy file (Fargate has no tmpfs for a read-only root).
      readonlyRootFilesystem: false,
      stopTimeout: Duration.seconds(30),
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds settings only (URLs, ARNs, ports, CIDRs); the policy and the database password come in as ECS secrets',
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'The execution role\'s ecr:GetAuthorizationToken: AWS requires Resource "*" (a registry login token); image pulls themselves are limited to the one repository',
    });

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: props.vpc,
      description: 'sshca load balancer: HTTPS (and the HTTP redirect) from clients and instances',
      allowAllOutbound: false,
    });
    for (const cidr of settings.ingressCidrs) {
      this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS');
      this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(80), 'HTTP, redirected to HTTPS');
    }
    if (settings.ingressCidrs.includes('0.0.0.0/0')) {
      Validations.of(this.loadBalancerSecurityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason: 'sshca is reached by engineers\' laptops and by instances in any VPC or account; every API request is authenticated (SigV4 identity token), the public CA/KRL lists are public by design. Narrow with -c ingressCidrs=…',
      });
    }
    this.serviceSecurityGroup = new ec2.SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc: props.vpc,
      description: 'sshca service: API port from the load balancer only; HTTPS out to AWS APIs',
      allowAllOutbound: false,
    });
    this.serviceSecurityGroup.addIngressRule(this.loadBalancerSecurityGroup, ec2.Port.tcp(SERVER_PORT), 'API from the load balancer');
    this.loadBalancerSecurityGroup.addEgressRule(this.serviceSecurityGroup, ec2.Port.tcp(SERVER_PORT), 'to the sshca tasks');
    // STS, KMS, EC2, Secrets Manager, SSM, ECR, CloudWatch Logs: all HTTPS.
    // Not narrower: STS and EC2 of other regions and accounts have public addresses.
    this.serviceSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs');

    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition,
      desiredCount: settings.replicas,
      // Fargate spreads a service's tasks over the AZs of its subnets: one
      // subnet per AZ, at least two AZs.
      vpcSubnets: props.serviceSubnets,
      securityGroups: [this.serviceSecurityGroup],
      assignPublicIp: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      enableExecuteCommand: false,
    });

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED, // the only encryption ALB access logs support
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ expiration: Duration.days(settings.logRetentionDays) }],
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket receives the load balancer\'s access logs; logging its own accesses would need another bucket, and it is written only by the ELB log delivery service',
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      vpcSubnets: props.loadBalancerSubnets,
      internetFacing: true,
      securityGroup: this.loadBalancerSecurityGroup,
      // Headers ALB cannot parse are dropped, not forwarded.
      dropInvalidHeaderFields: true,
      desyncMitigationMode: elbv2.DesyncMitigationMode.STRICTEST,
    });
    this.loadBalancer.logAccessLogs(accessLogs, 'alb');
    // The server trusts X-Forwarded-For only from the load balancer's subnets
    // and takes the right-most address it did not add: ALB *appends* the
    // client's address, so a header the client sent itself is never used.
    this.loadBalancer.setAttribute('routing.http.xff_header_processing.mode', 'append');

    this.targetGroup = new elbv2.ApplicationTargetGroup(this, 'Targets', {
      vpc: props.vpc,
      targetType: elbv2.TargetType.IP,
      port: SERVER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        // Ready only when a certificate could be issued now (signer and store answer).
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      targets: [this.service.loadBalancerTarget({ containerName: 'Server', containerPort: SERVER_PORT })],
    });

    const zone = settings.hostedZone ? route53.HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId: settings.hostedZone.id, zoneName: settings.hostedZone.name }) : undefined;
    const certificate = settings.certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', settings.certificateArn)
      : new acm.Certificate(this, 'Certificate', {
        domainName: settings.domain,
        // With a zone, the validation record is created; without one, the
        // deployment waits until the operator adds the CNAME ACM shows.
        validation: acm.CertificateValidation.fromDns(zone),
      });

    this.httpsListener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [certificate],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS, // ELBSecurityPolicy-TLS13-1-2-2021-06: TLS 1.2 and 1.3 only
      defaultTargetGroups: [this.targetGroup],
      open: false,
    });
    this.loadBalancer.addListener('HttpRedirect', {
      port: 80,
      protocol: elbv2.ApplicationProtocol.HTTP,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
      open: false,
    });

    if (zone) {
      new route53.ARecord(this, 'Alias', { zone, recordName: settings.domain, target: route53.RecordTarget.fromAlias(new route53Targets.LoadBalancerTarget(this.loadBalancer)) });
    }
  }
}

/** Every setting the server reads (docs/deploy.md), as the task's environment. */
function serverEnvironment(props: SshcaServiceProps): Record<string, string> {
  const { settings, keys, database } = props;
  const tls = settings.databaseTls.mode === 'verify-full' ? `sslmode=verify-full&sslrootcert=${settings.databaseTls.caBundle}` : 'sslmode=no-verify';
  return {
    SSHCA_AUDIENCE: settings.audience,
    SSHCA_STS_ENDPOINTS: props.stsEndpoints.join(','),
    SSHCA_POLICY: POLICY_PATH,
    SSHCA_USER_CA: `kms:${keys.userCa.key.keyArn}`,
    SSHCA_HOST_CA: `kms:${keys.hostCa.key.keyArn}`,
    SSHCA_CHECKPOINT_KEY: `kms:${keys.checkpoint.key.keyArn}`,
    // No password in the URL: PGPASSWORD (an ECS secret) supplies it.
    SSHCA_STORE: `postgres://${database.user}@${database.host}:${database.port}/${database.name}?${tls}`,
    SSHCA_TRUSTED_PROXIES: props.trustedProxies.join(','),
    SSHCA_HOST: '0.0.0.0',
    SSHCA_PORT: String(SERVER_PORT),
    // Metrics listen on loopback (the server's default host for them): a
    // sidecar in the task can scrape them, the load balancer cannot.
    SSHCA_METRICS_PORT: String(METRICS_PORT),
    SSHCA_LOG_LEVEL: 'info',
    ...(settings.ec2Role ? { SSHCA_EC2_ROLE: settings.ec2Role } : {}),
    // The server's retention per anchor equals the bucket's default: the default only covers objects written without one.
    ...(props.anchors ? { SSHCA_AUDIT_ANCHOR: props.anchors.location, SSHCA_AUDIT_ANCHOR_RETENTION_DAYS: String(props.anchors.retentionDays) } : {}),
  };
}

/** A prebuilt ECR image (`-c image=…`), or the repository's Dockerfile built as an asset. */
function containerImage(scope: Construct, settings: SshcaSettings, repoRoot: string): ecs.ContainerImage {
  if (settings.image) {
    const m = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([\w.-]+)|@(sha256:[a-f0-9]{64}))$/.exec(settings.image);
    if (!m) throw new Error(`unexpected image URI ${settings.image}`);
    const [, account, region, name, tag, digest] = m;
    // From the repository, not the registry: ECS grants the execution role pull access to exactly it.
    const repository = ecr.Repository.fromRepositoryAttributes(scope, 'ImageRepository', {
      repositoryName: name as string,
      repositoryArn: `arn:${Aws.PARTITION}:ecr:${region}:${account}:repository/${name}`,
    });
    return ecs.ContainerImage.fromEcrRepository(repository, digest ?? tag);
  }
  return ecs.ContainerImage.fromAsset(repoRoot, {
    platform: settings.cpuArchitecture === 'ARM64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
    // Never copy dependencies, local state or CDK's own output into the build context (the image builds dist itself).
    exclude: ['.git', 'node_modules', '**/node_modules', '.tap', '.sshca-dev', 'infra/cdk/cdk.out', '*.log'],
  });
}

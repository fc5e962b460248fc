// The VPC: the load balancer in public subnets, the service in private
// subnets with egress, the database in isolated subnets; flow logs on.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface SshcaNetworkProps {
  readonly maxAzs: number;
  readonly natGateways: number;
  readonly logRetentionDays: number;
  /** Interface endpoints for the AWS APIs the service calls (and ECS itself needs). */
  readonly vpcEndpoints: boolean;
}

/** The subnets of each tier; the load balancer's are what SSHCA_TRUSTED_PROXIES lists. */
export class SshcaNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly loadBalancerSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PUBLIC };
  readonly serviceSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  readonly databaseSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** Interface endpoints' security group, when they are on: the service must be allowed in. */
  readonly endpointSecurityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: SshcaNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: props.maxAzs,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'LoadBalancer', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Service', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'Database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: props.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.RETAIN });
    this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL });

    if (props.vpcEndpoints) {
      this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'sshca: AWS API interface endpoints (HTTPS from the service only)',
        allowAllOutbound: false,
      });
      const services: Array<[string, ec2.InterfaceVpcEndpointAwsService]> = [
        ['Kms', ec2.InterfaceVpcEndpointAwsService.KMS],
        ['Sts', ec2.InterfaceVpcEndpointAwsService.STS],
        ['Ec2', ec2.InterfaceVpcEndpointAwsService.EC2],
        ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
        ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
        ['Ecr', ec2.InterfaceVpcEndpointAwsService.ECR],
        ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
        ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ];
      for (const [name, service] of services) {
        this.vpc.addInterfaceEndpoint(`${name}Endpoint`, {
          service,
          subnets: this.serviceSubnets,
          securityGroups: [this.endpointSecurityGroup],
          // Private DNS: the SDK's default endpoints resolve to the VPC
          // endpoint, so no SSHCA_*_ENDPOINT override is needed.
          privateDnsEnabled: true,
          open: false,
        });
      }
      // ECR image layers come from S3.
      this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [this.serviceSubnets] });
    }
  }

  /** The IPv4 CIDRs of the load balancer's subnets: the only proxies whose X-Forwarded-For the server believes. */
  loadBalancerCidrs(): string[] {
    return this.vpc.selectSubnets(this.loadBalancerSubnets).subnets.map((s) => s.ipv4CidrBlock);
  }
}

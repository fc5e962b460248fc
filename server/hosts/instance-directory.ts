// What EC2 itself says about an instance (issue 12): the server asks
// DescribeInstances with its own (or an assumed read-only role's)
// credentials, never trusting what the instance says about itself.
import { DescribeInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { UnavailableError } from '../errors.js';

/** An instance as EC2 describes it, reduced to what host certificates need. */
export interface Ec2Instance {
  readonly instanceId: string;
  readonly accountId: string;
  readonly region: string;
  /** pending | running | shutting-down | terminated | stopping | stopped */
  readonly state: string;
  readonly vpcId?: string;
  readonly privateDnsName?: string;
  /** Every private IPv4 address of every network interface, primary first. */
  readonly privateIpAddresses: readonly string[];
  readonly ipv6Addresses: readonly string[];
  readonly publicDnsName?: string;
  readonly publicIpAddress?: string;
  readonly tags: ReadonlyMap<string, string>;
  /** IMDS as EC2 says it is configured: `required` = IMDSv2 only; the token PUT's hop limit. */
  readonly imds: { readonly httpTokens?: string; readonly hopLimit?: number };
}

/** Looks instances up; undefined when EC2 does not know the instance in that account and region. */
export interface InstanceDirectory {
  describe(accountId: string, region: string, instanceId: string): Promise<Ec2Instance | undefined>;
}

/** EC2's answers for an id it does not know (in this account and region). */
const NOT_FOUND = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed']);
const THROTTLED = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException']);

/** DescribeInstances through an EC2 client per account and region (built by main.ts). */
export class Ec2InstanceDirectory implements InstanceDirectory {
  constructor(private readonly deps: { readonly clientFor: (accountId: string, region: string) => EC2Client }) {}

  async describe(accountId: string, region: string, instanceId: string): Promise<Ec2Instance | undefined> {
    let reservations;
    try {
      reservations = (await this.deps.clientFor(accountId, region).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations ?? [];
    } catch (cause) {
      const name = (cause as { name?: string }).name ?? '';
      if (NOT_FOUND.has(name)) return undefined;
      throw new UnavailableError('UNAVAILABLE_EC2', `EC2 DescribeInstances failed (${name || 'no answer'})`, { cause, retryAfterSeconds: THROTTLED.has(name) ? 10 : 30 });
    }
    for (const reservation of reservations) {
      // Another account's instance (an assumed role in the wrong account, say) is not this caller's.
      if (reservation.OwnerId !== accountId) continue;
      const instance = reservation.Instances?.find((i) => i.InstanceId === instanceId);
      if (instance) return fromEc2(instance, accountId, region);
    }
    return undefined;
  }
}

function fromEc2(i: Instance, accountId: string, region: string): Ec2Instance {
  const nonEmpty = (s: string | undefined) => (s ? s : undefined);
  const privateIps = [i.PrivateIpAddress, ...(i.NetworkInterfaces ?? []).flatMap((n) => (n.PrivateIpAddresses ?? []).map((a) => a.PrivateIpAddress))];
  const ipv6 = (i.NetworkInterfaces ?? []).flatMap((n) => (n.Ipv6Addresses ?? []).map((a) => a.Ipv6Address));
  const privateDnsName = nonEmpty(i.PrivateDnsName);
  const vpcId = nonEmpty(i.VpcId);
  const publicDnsName = nonEmpty(i.PublicDnsName);
  const publicIpAddress = nonEmpty(i.PublicIpAddress);
  return {
    instanceId: i.InstanceId!,
    accountId,
    region,
    state: i.State?.Name ?? 'unknown',
    ...(vpcId ? { vpcId } : {}),
    ...(privateDnsName ? { privateDnsName } : {}),
    privateIpAddresses: [...new Set(privateIps.filter((a): a is string => !!a))],
    ipv6Addresses: [...new Set(ipv6.filter((a): a is string => !!a))],
    ...(publicDnsName ? { publicDnsName } : {}),
    ...(publicIpAddress ? { publicIpAddress } : {}),
    tags: new Map((i.Tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? ''])),
    imds: {
      ...(i.MetadataOptions?.HttpTokens ? { httpTokens: i.MetadataOptions.HttpTokens } : {}),
      ...(i.MetadataOptions?.HttpPutResponseHopLimit !== undefined ? { hopLimit: i.MetadataOptions.HttpPutResponseHopLimit } : {}),
    },
  };
}

// Which instances get host certificates, and for which names (issue 12).
// Every principal comes from EC2's own answer, never from the request.
import { isIPv4, isIPv6 } from 'node:net';
import { PolicyError } from '../errors.js';
import { INSTANCE_ID } from '../identity/caller-identity.js';
import type { Ec2Instance } from '../hosts/instance-directory.js';
import type { HostRules } from './policy-file.js';

/** What a host certificate will say. */
export interface HostDecision {
  readonly principals: readonly string[];
  readonly ttlSeconds: number;
  /** Names in the name tag that were left out (invalid, or outside nameDomains), for the log. */
  readonly ignoredNames: readonly string[];
}

/** A DNS host name: letters, digits, hyphens, dots; no wildcard, no trailing dot; compared in lower case. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** A name from the name tag: at least two labels, and a top-level label that is not all digits (so never an IPv4 address). */
const TAGGED_NAME = /^[^.]+(?:\.[^.]+)*\.[a-z0-9-]*[a-z-][a-z0-9-]*$/;
/** States in which an instance is (about to be) the machine it claims to be. */
const LIVE_STATES = new Set(['pending', 'running']);

/** Before asking EC2: is this account and region served at all? */
export function checkHostCaller(rules: HostRules | undefined, accountId: string, region: string): HostRules {
  if (!rules) throw new PolicyError('POLICY_HOSTS_DISABLED', 'this policy issues no host certificates (no hosts section)');
  if (!rules.accounts.includes(accountId)) throw new PolicyError('POLICY_HOST_ACCOUNT', `instances of account ${accountId} get no host certificates`);
  if (rules.regions && !rules.regions.includes(region)) throw new PolicyError('POLICY_HOST_REGION', `instances in ${region} get no host certificates`);
  return rules;
}

/** After EC2 answered: the instance's state, VPC and tags, and the names it may be known by. */
export function decideHost(rules: HostRules, instance: Ec2Instance): HostDecision {
  if (!LIVE_STATES.has(instance.state)) throw new PolicyError('POLICY_HOST_INSTANCE_STATE', `instance ${instance.instanceId} is ${instance.state}`);
  if (rules.vpcs && (instance.vpcId === undefined || !rules.vpcs.includes(instance.vpcId))) {
    throw new PolicyError('POLICY_HOST_VPC', `instance ${instance.instanceId} is not in an allowed VPC`);
  }
  // The identity role's credentials are only as safe as IMDS: with IMDSv1 an
  // SSRF in any web app on the instance reads them; with a hop limit above 1
  // every container on it does. Either way someone other than the instance's
  // root could get a host certificate for a key of their own.
  if (instance.imds.httpTokens !== 'required') throw new PolicyError('POLICY_HOST_IMDS', `instance ${instance.instanceId} allows IMDSv1 (HttpTokens ${instance.imds.httpTokens ?? 'unknown'}); require IMDSv2`);
  if (instance.imds.hopLimit === undefined || instance.imds.hopLimit > rules.maxImdsHopLimit) {
    throw new PolicyError('POLICY_HOST_IMDS', `instance ${instance.instanceId} has IMDS hop limit ${instance.imds.hopLimit ?? 'unknown'}, above the policy's maxImdsHopLimit ${rules.maxImdsHopLimit}`);
  }
  for (const { key, values } of rules.tags ?? []) {
    const value = instance.tags.get(key);
    if (value === undefined || !values.includes(value)) throw new PolicyError('POLICY_HOST_TAG', `instance ${instance.instanceId} lacks tag ${key} with an allowed value`);
  }
  const ignoredNames: string[] = [];
  const names: string[] = [instance.instanceId];
  const addName = (name: string | undefined) => {
    const n = name?.toLowerCase();
    if (n && HOST_NAME.test(n)) names.push(n);
  };
  addName(instance.privateDnsName);
  addName(instance.publicDnsName);
  const addresses = [...instance.privateIpAddresses, ...(instance.publicIpAddress ? [instance.publicIpAddress] : [])].filter((a) => isIPv4(a));
  const v6 = instance.ipv6Addresses.filter((a) => isIPv6(a)).map((a) => a.toLowerCase());
  const tagged = rules.nameTag !== undefined ? instance.tags.get(rules.nameTag) : undefined;
  for (const raw of tagged?.split(/[\s,]+/).filter((s) => s !== '') ?? []) {
    const name = raw.toLowerCase();
    const inDomain = !rules.nameDomains || rules.nameDomains.some((d) => name === d || name.endsWith(`.${d}`));
    // Never a wildcard or a pattern, and only what is unmistakably a DNS name:
    // an instance owner who can tag must not claim every host, an address
    // (`10.0.0.9`), another instance's id or a single-label name (`localhost`).
    if (HOST_NAME.test(name) && TAGGED_NAME.test(name) && !INSTANCE_ID.test(name) && inDomain) names.push(name);
    else ignoredNames.push(raw.slice(0, 80));
  }
  return { principals: [...new Set([...names, ...addresses, ...v6])], ttlSeconds: rules.ttlSeconds, ignoredNames };
}

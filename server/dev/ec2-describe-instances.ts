// EC2's DescribeInstances over the EC2 query protocol, answered from a list of
// instances: SigV4 verified for real (service ec2), XML shaped like EC2's so
// the real @aws-sdk/client-ec2 parses it, and EC2's error codes. Shared by the
// embedded default's /dev/ec2/ and the EC2 test fixture, so the server's
// instance lookup meets one EC2 in dev and tests alike.
import { randomUUID } from 'node:crypto';
import { SigV4FormatError, parseSigV4Authorization } from '../identity/sigv4.js';
import { verifySigV4Request, type ReceivedRequest, type SigV4Credential } from './sigv4-request-verifier.js';

export const EC2_API_VERSION = '2016-11-15';
export const EC2_XML_NAMESPACE = `http://ec2.amazonaws.com/doc/${EC2_API_VERSION}/`;

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

/** EC2's instance state codes (the low byte of `instanceState/code`). */
export const INSTANCE_STATE_CODES: Readonly<Record<InstanceStateName, number>> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** An instance id as EC2 issues them: `i-` and 8 (older) or 17 lower-case hex digits. */
export const INSTANCE_ID_PATTERN = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

/**
 * One instance as this endpoint knows it. Answers show it as EC2 would for
 * its state: stopped and stopping instances without public addresses, a
 * terminated one without any network at all.
 */
export interface DevInstance {
  readonly instanceId: string;
  readonly account: string;
  readonly region: string;
  readonly state: InstanceStateName;
  readonly vpcId?: string;
  readonly subnetId?: string;
  readonly privateDnsName?: string;
  /** The primary private IPv4 address. */
  readonly privateIpAddress?: string;
  /** Further private IPv4 addresses on the primary interface. */
  readonly secondaryPrivateIpAddresses?: readonly string[];
  readonly ipv6Addresses?: readonly string[];
  readonly publicDnsName?: string;
  readonly publicIpAddress?: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** IMDS settings; default IMDSv2 only (`required`) with hop limit 1. */
  readonly metadataOptions?: { readonly httpTokens: 'required' | 'optional'; readonly httpPutResponseHopLimit: number };
  /** Instances launched together share one; default: one of its own. */
  readonly reservationId?: string;
}

/** Who a key belongs to: its credential, its account and, for temporary credentials, when they expire. */
export interface Ec2Caller {
  readonly credential: SigV4Credential;
  readonly account: string;
  readonly expiresAt?: Date;
}

/** Failures on demand, answered once the caller is authenticated. */
export type Ec2Fault = 'throttle' | 'unauthorized' | 'internal-error';

export interface Ec2Options {
  readonly now: Date;
  /**
   * The region this endpoint is, or which signing regions it answers for
   * (one URL standing in for every regional endpoint). Either way a request
   * sees only the instances of the region it was signed for, as in EC2.
   */
  readonly region: string | ((region: string) => boolean);
  readonly lookup: (accessKeyId: string) => Ec2Caller | undefined;
  readonly instances: Iterable<DevInstance>;
  readonly fault?: Ec2Fault | null;
  readonly requestId?: string;
}

/** An HTTP answer, for whichever server carries it. */
export interface Ec2Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Characters XML 1.0 cannot carry, not even as references. */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;

/** Text and attribute content escaped for XML 1.0; characters XML cannot carry at all are refused, not dropped. */
export function escapeXml(value: string): string {
  if (new RegExp(NOT_XML.source).test(value)) throw new Error('value holds a character XML 1.0 cannot carry');
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** `<name>text</name>`, or `<name/>` for '' (as EC2 writes empty values). */
const text = (name: string, value: string | number | boolean): string => {
  const v = String(value);
  return v === '' ? `<${name}/>` : `<${name}>${escapeXml(v)}</${name}>`;
};
const optional = (name: string, value: string | undefined): string => (value === undefined ? '' : text(name, value));
const items = (name: string, entries: readonly string[]): string => (entries.length === 0 ? `<${name}/>` : `<${name}>${entries.map((e) => `<item>${e}</item>`).join('')}</${name}>`);

function answer(status: number, body: string, requestId: string): Ec2Answer {
  return { status, headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId }, body: XML_DECLARATION + body };
}

/** EC2's error document: `Response/Errors/Error/{Code,Message}` and `RequestID`. */
export function ec2Error(status: number, code: string, message: string, requestId: string): Ec2Answer {
  // Messages quote what the request sent: whatever it sent, the error is still a document.
  const safe = message.replace(NOT_XML, '\ufffd');
  return answer(status, `<Response><Errors><Error>${text('Code', code)}${text('Message', safe)}</Error></Errors>${text('RequestID', requestId)}</Response>`, requestId);
}

/** One `instancesSet/item`, showing what EC2 shows for the instance's state. */
function instanceXml(i: DevInstance): string {
  const terminated = i.state === 'terminated';
  // EC2 releases a stopped instance's public address; a terminated one keeps no network at all.
  const isPublic = !terminated && i.state !== 'stopped' && i.state !== 'stopping';
  const publicIp = isPublic ? i.publicIpAddress : undefined;
  const publicDns = isPublic ? i.publicDnsName : undefined;
  const association = publicIp === undefined ? '' : `<association>${text('publicIp', publicIp)}${text('publicDnsName', publicDns ?? '')}${text('ipOwnerId', 'amazon')}</association>`;
  const privateIps = [
    ...(i.privateIpAddress === undefined ? [] : [`${text('privateIpAddress', i.privateIpAddress)}${optional('privateDnsName', i.privateDnsName)}${text('primary', true)}${association}`]),
    ...(i.secondaryPrivateIpAddresses ?? []).map((ip) => `${text('privateIpAddress', ip)}${text('primary', false)}`),
  ];
  const eni = `eni-${i.instanceId.slice(2)}`;
  const networkInterface = [
    text('networkInterfaceId', eni),
    optional('subnetId', i.subnetId),
    optional('vpcId', i.vpcId),
    text('ownerId', i.account),
    text('status', 'in-use'),
    optional('privateIpAddress', i.privateIpAddress),
    optional('privateDnsName', i.privateDnsName),
    association,
    items('privateIpAddressesSet', privateIps),
    items('ipv6AddressesSet', (i.ipv6Addresses ?? []).map((ip) => text('ipv6Address', ip))),
  ].join('');
  const tags = Object.entries(i.tags ?? {}).map(([key, value]) => `${text('key', key)}${text('value', value)}`);
  return [
    text('instanceId', i.instanceId),
    `<instanceState>${text('code', INSTANCE_STATE_CODES[i.state])}${text('name', i.state)}</instanceState>`,
    text('privateDnsName', terminated ? '' : (i.privateDnsName ?? '')),
    text('dnsName', publicDns ?? ''),
    ...(terminated ? [] : [optional('subnetId', i.subnetId), optional('vpcId', i.vpcId), optional('privateIpAddress', i.privateIpAddress)]),
    optional('ipAddress', publicIp),
    // EC2 leaves tagSet out for an untagged instance.
    tags.length === 0 ? '' : items('tagSet', tags),
    items('networkInterfaceSet', terminated ? [] : [networkInterface]),
    metadataOptionsXml(i.metadataOptions ?? { httpTokens: 'required', httpPutResponseHopLimit: 1 }),
  ].join('');
}

/** `metadataOptions`, as EC2 describes an instance's IMDS settings. */
function metadataOptionsXml(o: NonNullable<DevInstance['metadataOptions']>): string {
  return `<metadataOptions>${text('state', 'applied')}${text('httpTokens', o.httpTokens)}${text('httpPutResponseHopLimit', o.httpPutResponseHopLimit)}${text('httpEndpoint', 'enabled')}</metadataOptions>`;
}

/** The `DescribeInstancesResponse` for `instances`, one reservation per reservation id. */
export function describeInstancesXml(instances: readonly DevInstance[], requestId: string): string {
  const reservations = new Map<string, DevInstance[]>();
  for (const i of instances) {
    const id = i.reservationId ?? `r-${i.instanceId.slice(2)}`;
    reservations.set(id, [...(reservations.get(id) ?? []), i]);
  }
  const set = [...reservations].map(([id, members]) => `${text('reservationId', id)}${text('ownerId', members[0]!.account)}<groupSet/>${items('instancesSet', members.map(instanceXml))}`);
  return `<DescribeInstancesResponse xmlns="${EC2_XML_NAMESPACE}">${text('requestId', requestId)}${items('reservationSet', set)}</DescribeInstancesResponse>`;
}

/** The region a request was signed for, when it names one this endpoint serves. */
function signedRegion(req: ReceivedRequest, served: Ec2Options['region']): string {
  if (typeof served === 'string') return served;
  const authorization = req.headers.authorization;
  if (typeof authorization === 'string') {
    try {
      const { region } = parseSigV4Authorization(authorization);
      if (served(region)) return region;
    } catch (err) {
      if (!(err instanceof SigV4FormatError)) throw err;
    }
  }
  // No region this endpoint serves: a region no scope can name, so the verifier refuses the scope.
  return '-';
}

/** Answers an EC2 query-protocol request: DescribeInstances only, for the caller's account and the signed region. */
export function ec2DescribeInstances(req: ReceivedRequest, options: Ec2Options): Ec2Answer {
  const requestId = options.requestId ?? randomUUID();
  const region = signedRegion(req, options.region);
  let caller: Ec2Caller | undefined;
  const verdict = verifySigV4Request(req, {
    now: options.now,
    region,
    service: 'ec2',
    lookup: (key) => {
      caller = options.lookup(key);
      return caller?.credential;
    },
  });
  // EC2 answers every authentication failure (unknown key, wrong secret or
  // token, stale date, wrong scope) with one code, as here.
  if (!verdict.ok || !caller) return ec2Error(401, 'AuthFailure', `AWS was not able to validate the provided access credentials (${verdict.ok ? 'no caller' : verdict.code})`, requestId);
  if (caller.expiresAt && caller.expiresAt.getTime() <= options.now.getTime()) return ec2Error(400, 'RequestExpired', 'Request has expired.', requestId);

  // Form-encoded parameters: each once (a second Action or InstanceId.1 would
  // leave it to the parser which one counts).
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(req.body.toString('utf8'))) {
    if (params.has(name)) return ec2Error(400, 'InvalidParameterCombination', `The parameter ${name} is given more than once`, requestId);
    params.set(name, value);
  }
  if (req.method !== 'POST' || params.get('Action') !== 'DescribeInstances') {
    return ec2Error(400, 'InvalidAction', `The action ${params.get('Action') ?? '(none)'} is not valid for this web service.`, requestId);
  }
  if (params.get('Version') !== EC2_API_VERSION) return ec2Error(400, 'NoSuchVersion', `The requested version (${params.get('Version') ?? ''}) is not valid for this web service.`, requestId);
  const ids: Array<[number, string]> = [];
  for (const [name, value] of params) {
    const index = /^InstanceId\.([1-9][0-9]{0,3})$/.exec(name)?.[1];
    if (index !== undefined) ids.push([Number(index), value]);
    // Filters and pagination are EC2's, but nothing here serves them: refuse
    // rather than answer as if they had been applied.
    else if (name !== 'Action' && name !== 'Version' && name !== 'DryRun') return ec2Error(400, 'UnknownParameter', `The parameter ${name} is not recognized`, requestId);
  }
  const instanceIds = [...new Set(ids.sort((a, b) => a[0] - b[0]).map(([, id]) => id))];
  const malformed = instanceIds.find((id) => !INSTANCE_ID_PATTERN.test(id));
  if (malformed !== undefined) return ec2Error(400, 'InvalidInstanceID.Malformed', `Invalid id: "${malformed}" (expecting "i-...")`, requestId);

  switch (options.fault ?? null) {
    case 'throttle':
      return ec2Error(503, 'RequestLimitExceeded', 'Request limit exceeded.', requestId);
    case 'unauthorized':
      return ec2Error(403, 'UnauthorizedOperation', 'You are not authorized to perform this operation.', requestId);
    case 'internal-error':
      return ec2Error(500, 'InternalError', 'An internal error has occurred', requestId);
    case null:
      break;
  }
  if (params.get('DryRun') === 'true') return ec2Error(412, 'DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', requestId);

  // Only the caller's own account in the signed region: another account's
  // instance is as unknown as one that never existed.
  const visible = new Map<string, DevInstance>();
  for (const i of options.instances) if (i.account === caller.account && i.region === region) visible.set(i.instanceId, i);
  const missing = instanceIds.filter((id) => !visible.has(id));
  if (missing.length === 1) return ec2Error(400, 'InvalidInstanceID.NotFound', `The instance ID '${missing[0]}' does not exist`, requestId);
  if (missing.length > 1) return ec2Error(400, 'InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`, requestId);
  const found = instanceIds.length === 0 ? [...visible.values()] : instanceIds.map((id) => visible.get(id)!);
  return answer(200, describeInstancesXml(found, requestId), requestId);
}

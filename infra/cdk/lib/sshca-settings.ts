// The deployment's settings, read from CDK context (cdk.json, `-c key=value`)
// and checked with the server's own validators, so a value the server would
// refuse at start-up is refused at synth instead.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Aws, Fn, Token, type Stack } from 'aws-cdk-lib';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import type { Node } from 'constructs';
import { CA_KEY_SPECS } from '../../../ca-setup/ca-key-spec.js';
import { canonicalServerUrl } from '../../../protocol/server-url.js';
import { EC2_ROLE_TEMPLATE } from '../../../server/hosts/ec2-role.js';
import { productionStsEndpoint } from '../../../server/identity/sts-endpoints.js';
import { parsePolicyFile } from '../../../server/policy/policy-file.js';

/** Where the server's policy file comes from (docs: infra/cdk/README.md, "Policy"). */
export type PolicySource =
  /** An SSM String parameter the operator manages (`aws ssm put-parameter`); not validated at synth. */
  | { readonly kind: 'ssm'; readonly parameterName: string }
  /** A YAML file read and validated at synth; the stack stores it in an SSM parameter of its own. */
  | { readonly kind: 'file'; readonly path: string; readonly text: string }
  /** No policy given: a starter policy for `allowedAccounts`, stored like `file`. */
  | { readonly kind: 'starter' };

/** Everything the stack is parameterised by; `settingsFromContext` is the only way to build it from context. */
export interface SshcaSettings {
  /** The host name clients use; the audience is `https://<domain>`. */
  readonly domain: string;
  readonly audience: string;
  /** ACM certificate ARN for the domain; absent: one is created with DNS validation. */
  readonly certificateArn?: string;
  /** Route 53 zone for DNS validation and the alias record (no lookup: id and name both given). */
  readonly hostedZone?: { readonly id: string; readonly name: string };
  /** SSHCA_STS_ENDPOINTS; default: the deployment region's STS endpoint. */
  readonly stsEndpoints: readonly string[];
  /** Accounts whose identities may authenticate, for the starter policy; empty: the deployment's own account. */
  readonly allowedAccounts: readonly string[];
  readonly policy: PolicySource;
  /** Tasks of the service (at least 2, spread over the VPC's AZs). */
  readonly replicas: number;
  /** Availability zones of the VPC (at least 2). */
  readonly maxAzs: number;
  /** KMS key spec of the user and host CA keys. */
  readonly caKeySpec: string;
  /** KMS key spec of the audit checkpoint key (Ed25519 or P-256: what jose verifies). */
  readonly checkpointKeySpec: string;
  /** Key alias prefix: alias/<prefix>-user-ca, -host-ca, -checkpoint. */
  readonly keyAliasPrefix: string;
  /** A prebuilt image (ECR URI); absent: built from the repository's Dockerfile as a CDK asset. */
  readonly image?: string;
  /** The command that starts the server inside the image (after the policy file is written). */
  readonly serverCommand: string;
  /** SSHCA_EC2_ROLE: read role assumed in member accounts for host certificates. */
  readonly ec2Role?: string;
  /** Interface endpoints for KMS, STS, EC2, Secrets Manager, SSM, ECR, CloudWatch Logs (and an S3 gateway). */
  readonly vpcEndpoints: boolean;
  /** NAT gateways (egress to AWS APIs without endpoints, and to other accounts' EC2/STS); default one per AZ. */
  readonly natGateways: number;
  /** Who may reach the load balancer (HTTPS and the HTTP redirect). */
  readonly ingressCidrs: readonly string[];
  readonly logRetentionDays: number;
  readonly backupRetentionDays: number;
  /** The audit anchor bucket's COMPLIANCE retention in days (SSHCA_AUDIT_ANCHOR); 0: no anchor bucket. */
  readonly anchorRetentionDays: number;
  /** "No successful issuance in N minutes while requests arrive". */
  readonly noIssuanceMinutes: number;
  readonly alarmEmail?: string;
  /** Container size (Fargate CPU units and MiB). */
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly cpuArchitecture: 'X86_64' | 'ARM64';
  /** Path of Amazon RDS's CA bundle inside the image (sslrootcert); `no-verify` only if the image has none. */
  readonly databaseTls: { readonly mode: 'verify-full'; readonly caBundle: string } | { readonly mode: 'no-verify' };
  readonly databaseMinAcu: number;
  readonly databaseMaxAcu: number;
}

/** A context value the stack cannot use; synth stops with this message. */
export class SettingsError extends Error {
  readonly code = 'CDK_CONTEXT_INVALID';
}

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
/** jose verifies checkpoints signed with EdDSA (Ed25519) or ES256 (P-256). */
const CHECKPOINT_KEY_SPECS = ['ECC_NIST_EDWARDS25519', 'ECC_NIST_P256'];
const ACCOUNT = /^\d{12}$/;
const ALIAS_PREFIX = /^[a-z0-9][a-z0-9-]{0,40}$/;
const CIDR4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\/(?:3[0-2]|[12]?\d)$/;

type Context = Pick<Node, 'tryGetContext'>;

/** Reads and checks every setting; throws `SettingsError` naming the context key. */
export function settingsFromContext(node: Context, baseDir: string): SshcaSettings {
  const get = (key: string): unknown => {
    const v: unknown = node.tryGetContext(key);
    return v === '' || v === null ? undefined : v;
  };
  const str = (key: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new SettingsError(`context ${key}: expected a string`);
    return v.trim();
  };
  const int = (key: string, fallback: number, check: (n: number) => boolean, expected: string): number => {
    const v = get(key);
    const n = v === undefined ? fallback : typeof v === 'number' ? v : typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isFinite(n) || !check(n)) throw new SettingsError(`context ${key}: expected ${expected}, got ${JSON.stringify(v)}`);
    return n;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    throw new SettingsError(`context ${key}: expected true or false`);
  };
  // Lists: a JSON array in cdk.json, or comma-separated with -c.
  const list = (key: string): string[] | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : undefined;
    if (!items || items.some((i) => typeof i !== 'string')) throw new SettingsError(`context ${key}: expected a list of strings`);
    return (items as string[]).map((i) => i.trim()).filter((i) => i !== '');
  };

  const domain = str('domain');
  if (!domain) throw new SettingsError('context domain: required (the host name clients use, e.g. sshca.example.com)');
  let audience: string;
  try {
    audience = canonicalServerUrl(`https://${domain}`);
  } catch (err) {
    throw new SettingsError(`context domain: ${(err as Error).message}`);
  }
  if (new URL(audience).port !== '') throw new SettingsError('context domain: a host name only (the load balancer listens on 443)');

  const certificateArn = str('certificateArn');
  if (certificateArn !== undefined && !/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/.test(certificateArn)) {
    throw new SettingsError('context certificateArn: expected an ACM certificate ARN');
  }
  const zoneId = str('hostedZoneId');
  const zoneName = str('hostedZoneName');
  if ((zoneId === undefined) !== (zoneName === undefined)) throw new SettingsError('context hostedZoneId and hostedZoneName: give both or neither (no lookups)');
  if (zoneId !== undefined && !/^Z[A-Z0-9]{1,31}$/.test(zoneId)) throw new SettingsError('context hostedZoneId: expected a Route 53 zone id (Z…)');
  if (zoneName !== undefined && domain !== zoneName && !domain.endsWith(`.${zoneName}`)) throw new SettingsError(`context hostedZoneName: ${domain} is not in ${zoneName}`);

  const stsEndpoints = list('stsEndpoints') ?? [];
  for (const url of stsEndpoints) {
    try {
      productionStsEndpoint(url);
    } catch (err) {
      throw new SettingsError(`context stsEndpoints: ${(err as Error).message}`);
    }
  }

  const allowedAccounts = list('allowedAccounts') ?? [];
  for (const a of allowedAccounts) if (!ACCOUNT.test(a)) throw new SettingsError(`context allowedAccounts: ${JSON.stringify(a)} is not a 12-digit account id`);

  const policy = policySource(str('policy'), baseDir);
  const replicas = int('replicas', 2, (n) => Number.isInteger(n) && n >= 2 && n <= 50, 'an integer from 2 to 50 (one task per AZ at least)');
  const maxAzs = int('maxAzs', 2, (n) => Number.isInteger(n) && n >= 2 && n <= 6, 'an integer from 2 to 6');

  const caKeySpec = keySpec(str('keySpec') ?? 'ECC_NIST_EDWARDS25519', 'keySpec', Object.values(CA_KEY_SPECS));
  const checkpointKeySpec = keySpec(str('checkpointKeySpec') ?? 'ECC_NIST_EDWARDS25519', 'checkpointKeySpec', CHECKPOINT_KEY_SPECS);
  const keyAliasPrefix = str('keyAliasPrefix') ?? 'sshca';
  if (!ALIAS_PREFIX.test(keyAliasPrefix) || keyAliasPrefix.startsWith('aws')) throw new SettingsError('context keyAliasPrefix: lowercase letters, digits and -, not starting with aws');

  const image = str('image');
  if (image !== undefined && !/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9._/-]+(:[\w.-]{1,128}|@sha256:[a-f0-9]{64})$/.test(image)) {
    throw new SettingsError('context image: expected an ECR image URI with a tag or digest (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:TAG)');
  }
  // The Dockerfile's ENTRYPOINT (WORKDIR /app).
  const serverCommand = str('serverCommand') ?? 'node /app/dist/server/bin/sshca-server.js';
  if (!/^[\w./ -]+$/.test(serverCommand)) throw new SettingsError('context serverCommand: letters, digits, . / - _ and spaces only');

  const ec2Role = str('ec2Role');
  if (ec2Role !== undefined && !EC2_ROLE_TEMPLATE.test(ec2Role)) throw new SettingsError('context ec2Role: expected arn:aws:iam::{account}:role/NAME (write {account} literally)');

  const ingressCidrs = list('ingressCidrs') ?? ['0.0.0.0/0'];
  for (const c of ingressCidrs) if (!CIDR4.test(c)) throw new SettingsError(`context ingressCidrs: ${JSON.stringify(c)} is not an IPv4 CIDR`);

  const alarmEmail = str('alarmEmail');
  if (alarmEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(alarmEmail)) throw new SettingsError('context alarmEmail: expected an e-mail address');

  const cpuArchitecture = str('cpuArchitecture') ?? 'X86_64';
  if (cpuArchitecture !== 'X86_64' && cpuArchitecture !== 'ARM64') throw new SettingsError('context cpuArchitecture: X86_64 or ARM64');
  const databaseTlsMode = str('databaseTls') ?? 'verify-full';
  if (databaseTlsMode !== 'verify-full' && databaseTlsMode !== 'no-verify') throw new SettingsError('context databaseTls: verify-full or no-verify');
  const caBundle = str('databaseCaBundle') ?? '/etc/ssl/certs/rds-global-bundle.pem';
  if (!/^\/[\w./-]+$/.test(caBundle)) throw new SettingsError('context databaseCaBundle: an absolute path inside the image');
  const databaseMinAcu = int('databaseMinAcu', 0.5, (n) => n >= 0.5 && n <= 256 && Number.isInteger(n * 2), 'ACUs from 0.5 to 256 in steps of 0.5');
  const databaseMaxAcu = int('databaseMaxAcu', 4, (n) => n >= databaseMinAcu && n <= 256 && Number.isInteger(n * 2), `ACUs from databaseMinAcu (${databaseMinAcu}) to 256`);

  return {
    domain,
    audience,
    ...(certificateArn !== undefined ? { certificateArn } : {}),
    ...(zoneId !== undefined && zoneName !== undefined ? { hostedZone: { id: zoneId, name: zoneName } } : {}),
    stsEndpoints,
    allowedAccounts,
    policy,
    replicas,
    maxAzs,
    caKeySpec,
    checkpointKeySpec,
    keyAliasPrefix,
    ...(image !== undefined ? { image } : {}),
    serverCommand,
    ...(ec2Role !== undefined ? { ec2Role } : {}),
    vpcEndpoints: bool('vpcEndpoints', false),
    natGateways: int('natGateways', maxAzs, (n) => Number.isInteger(n) && n >= 1 && n <= maxAzs, `an integer from 1 to maxAzs (${maxAzs})`),
    ingressCidrs,
    logRetentionDays: int('logRetentionDays', 365, (n) => LOG_RETENTION_DAYS.includes(n), `one of CloudWatch Logs' retention periods (${LOG_RETENTION_DAYS.join(', ')})`),
    backupRetentionDays: int('backupRetentionDays', 7, (n) => Number.isInteger(n) && n >= 7 && n <= 35, 'an integer from 7 to 35'),
    anchorRetentionDays: int('anchorRetentionDays', 400, (n) => Number.isInteger(n) && (n === 0 || (n >= 1 && n <= 36_500)), 'an integer from 1 to 36500 (days), or 0 for no anchor bucket'),
    noIssuanceMinutes: int('noIssuanceMinutes', 15, (n) => Number.isInteger(n) && n >= 5 && n <= 1440, 'an integer from 5 to 1440'),
    ...(alarmEmail !== undefined ? { alarmEmail } : {}),
    cpu: int('cpu', 512, (n) => [256, 512, 1024, 2048, 4096].includes(n), '256, 512, 1024, 2048 or 4096'),
    memoryMiB: int('memoryMiB', 1024, (n) => Number.isInteger(n) && n >= 512 && n <= 30720, 'MiB from 512 to 30720'),
    cpuArchitecture,
    databaseTls: databaseTlsMode === 'verify-full' ? { mode: 'verify-full', caBundle } : { mode: 'no-verify' },
    databaseMinAcu,
    databaseMaxAcu,
  };
}

/** `ECC_NIST_P256` or its sshca-setup name `ecdsa-p256`. */
function keySpec(value: string, key: string, allowed: readonly string[]): string {
  const spec = CA_KEY_SPECS[value] ?? value;
  if (!allowed.includes(spec)) throw new SettingsError(`context ${key}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  return spec;
}

/** `ssm:<parameter name>`, `file:<path>` (relative to infra/cdk), or nothing (the starter policy). */
function policySource(value: string | undefined, baseDir: string): PolicySource {
  if (value === undefined) return { kind: 'starter' };
  if (value.startsWith('ssm:')) {
    const parameterName = value.slice(4);
    if (!/^\/?[\w.-]+(\/[\w.-]+)*$/.test(parameterName)) throw new SettingsError('context policy: ssm:<parameter name>, e.g. ssm:/sshca/policy');
    return { kind: 'ssm', parameterName };
  }
  if (value.startsWith('file:')) {
    const path = isAbsolute(value.slice(5)) ? value.slice(5) : resolve(baseDir, value.slice(5));
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SettingsError(`context policy: cannot read ${path}: ${(err as Error).message}`);
    }
    try {
      // The server's own parser: a policy it would refuse never reaches a deployment.
      parsePolicyFile(text, path);
    } catch (err) {
      throw new SettingsError(`context policy: ${(err as Error).message}`);
    }
    return { kind: 'file', path, text };
  }
  throw new SettingsError('context policy: ssm:<parameter name> or file:<path to policy.yaml>');
}

/** The STS endpoints, with the regional one of the stack's region when none are given. */
export function stsEndpointsOf(settings: SshcaSettings, stack: Stack): string[] {
  if (settings.stsEndpoints.length > 0) return [...settings.stsEndpoints];
  if (Token.isUnresolved(stack.region)) return [Fn.join('', ['https://sts.', Aws.REGION, '.', Aws.URL_SUFFIX, '/'])];
  const url = `https://sts.${stack.region}.${RegionInfo.get(stack.region).domainSuffix ?? 'amazonaws.com'}/`;
  try {
    productionStsEndpoint(url);
  } catch (err) {
    throw new SettingsError(`context stsEndpoints: none given, and the region's own is not usable: ${(err as Error).message}`);
  }
  return [url];
}

/** The starter policy: the allowed accounts (or this one), administrators by SSO, host certificates in the same accounts. */
export function starterPolicy(settings: SshcaSettings): string {
  const accounts = settings.allowedAccounts.length > 0 ? settings.allowedAccounts.map((a) => `'${a}'`).join(', ') : `'${Aws.ACCOUNT_ID}'`;
  return [
    '# Starter policy written by the sshca CDK app (context "policy" unset).',
    '# Replace it: cdk deploy -c policy=file:policy.yaml (docs/policy.md).',
    `accounts: [${accounts}]`,
    'rules:',
    '  - name: sso-administrators',
    '    match: { ssoPermissionSet: AdministratorAccess }',
    "    principals: ['{{sessionLocalPart}}']",
    '    ttl: 8h',
    'hosts:',
    `  accounts: [${accounts}]`,
    '',
  ].join('\n');
}

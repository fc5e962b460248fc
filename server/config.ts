// Reads and validates the server's configuration from argv and env. Called
// once, by main.ts; everything else receives the frozen result.
import { isIP } from 'node:net';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KeyReferenceError, parseKeyReference, type KeyReference } from './ca/key-reference.js';
import { CA_KEY_TYPES, type CaKeyType } from './ca/local-signer.js';
import { EC2_ROLE_TEMPLATE } from './hosts/ec2-role.js';
import { StsEndpointError, productionStsEndpoint, type StsEndpoint } from './identity/sts-endpoints.js';
import { PRINCIPAL_PATTERN } from './policy/policy.js';
import { parsePublicKeyLine } from '../protocol/ssh-public-key.js';
import { ServerUrlError, canonicalServerUrl } from '../protocol/server-url.js';
import { DEFAULT_RATE_LIMITS, type RateLimits } from './app-deps.js';

/** Configuration is invalid; the message says what to fix. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

interface CommonConfig {
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  /** Per-source request limits (SSHCA_RATE_LIMIT_PER_MINUTE, SSHCA_PUBLIC_RATE_LIMIT_PER_MINUTE). */
  readonly rateLimits: RateLimits;
  /** How often anonymous refusals are summarised onto the chain (SSHCA_REFUSAL_SUMMARY_SECONDS). */
  readonly refusalSummaryIntervalMs: number;
  /** SSHCA_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed. */
  readonly trustedProxies: readonly string[];
  /** `postgres://…`: the shared store; absent: SQLite. */
  readonly store?: string;
  /** GET /metrics on its own listener (SSHCA_METRICS_HOST, SSHCA_METRICS_PORT); absent: off. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** Where the signed chain head is published (SSHCA_AUDIT_ANCHOR); absent: nowhere. */
  readonly anchor?: AnchorConfig;
}

/** SSHCA_AUDIT_ANCHOR: a directory, or an S3 bucket with Object Lock (issue 16). */
export type AnchorConfig = (
  | { readonly kind: 'directory'; readonly path: string }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      /** '' or ending in '/'. */
      readonly prefix: string;
      /** COMPLIANCE retention per anchor (SSHCA_AUDIT_ANCHOR_RETENTION_DAYS). */
      readonly retentionDays: number;
      /** SSHCA_S3_ENDPOINT: a VPC endpoint without private DNS, or a test's. */
      readonly endpoint?: string;
    }
) & {
  /** SSHCA_AUDIT_ANCHOR_INTERVAL_SECONDS. */
  readonly intervalMs: number;
};

/** Prometheus metrics on loopback by default; production's port is fixed (9464), dev mode's is any free one. */
export const DEFAULT_METRICS_PORT = 9464;

/** `sshca-server --dev`: the embedded default, no AWS. */
export interface DevConfig extends CommonConfig {
  readonly mode: 'dev';
  readonly dataDir: string;
  readonly devUser: string;
  readonly caKeyType: CaKeyType;
}

/** Production: real STS, CA key from a file until KMS keys land. */
export interface ProductionConfig extends CommonConfig {
  readonly mode: 'production';
  /** The server's canonical URL (SSHCA_AUDIENCE): every token must name it. */
  readonly audience: string;
  readonly stsEndpoints: readonly StsEndpoint[];
  /** The policy file (accounts and rules). */
  readonly policyPath: string;
  readonly userCa: KeyReference;
  /** Published now, signs after the next rotation. */
  readonly userCaNext?: KeyReference;
  /** OpenSSH public key lines of user CA keys that no longer sign. */
  readonly userCaRetired: readonly string[];
  readonly hostCa?: KeyReference;
  readonly hostCaNext?: KeyReference;
  readonly hostCaRetired: readonly string[];
  /** KMS endpoint override (VPC endpoints without private DNS; tests). */
  readonly kmsEndpoint?: string;
  /**
   * SSHCA_EC2_ROLE: `arn:<partition>:iam::{account}:role/NAME`, the read-only
   * role assumed in an instance's account to describe it; unset: the server's
   * own credentials (instances of its own account only).
   */
  readonly ec2Role?: string;
  /** SSHCA_EC2_ENDPOINT / SSHCA_AWS_STS_ENDPOINT: EC2 and STS (AssumeRole) endpoint overrides (VPC endpoints; tests). */
  readonly ec2Endpoint?: string;
  readonly awsStsEndpoint?: string;
  /** SQLite file when no SSHCA_STORE is given. */
  readonly auditDbPath?: string;
  /** Ed25519 PEM that signs audit checkpoints (shared by replicas; not the CA key). */
  /**
   * SSHCA_CHECKPOINT_KEY: what signs audit checkpoints — `kms:<key ARN>`
   * (Ed25519 or P-256; no exportable secret on the server) or an Ed25519 PEM
   * file (`file:<path>` or a bare absolute path).
   */
  readonly checkpointKey: KeyReference;
  readonly stsTimeoutMs: number;
  readonly stsConnectTimeoutMs: number;
  /** Role ARNs whose trust policy pins sts:RoleSessionName. */
  readonly trustedSessionRoles: readonly string[];
  readonly allowFederatedUsers: boolean;
}

export type Config = DevConfig | ProductionConfig;

export const USAGE = `usage: sshca-server --dev [--host H] [--port P] [--data-dir DIR] [--dev-user NAME] [--ca-key-type ${CA_KEY_TYPES.join('|')}]
       sshca-server [--user-ca REF] [--user-ca-next REF] [--host-ca REF] [--host-ca-next REF]   (REF: kms:<key ARN> or file:<path>)
production settings come from the environment: SSHCA_AUDIENCE, SSHCA_STS_ENDPOINTS, SSHCA_POLICY,
SSHCA_USER_CA, SSHCA_USER_CA_NEXT, SSHCA_USER_CA_RETIRED, SSHCA_HOST_CA, SSHCA_HOST_CA_NEXT, SSHCA_HOST_CA_RETIRED, SSHCA_KMS_ENDPOINT, SSHCA_EC2_ROLE, SSHCA_EC2_ENDPOINT, SSHCA_AWS_STS_ENDPOINT, SSHCA_STORE or SSHCA_AUDIT_DB, SSHCA_CHECKPOINT_KEY, SSHCA_HOST, SSHCA_PORT,
SSHCA_LOG_LEVEL, SSHCA_STS_TIMEOUT_MS, SSHCA_STS_CONNECT_TIMEOUT_MS, SSHCA_TRUSTED_SESSION_ROLES,
SSHCA_ALLOW_FEDERATED_USERS; both modes: SSHCA_TRUSTED_PROXIES, SSHCA_RATE_LIMIT_PER_MINUTE,
SSHCA_PUBLIC_RATE_LIMIT_PER_MINUTE, SSHCA_REFUSAL_SUMMARY_SECONDS, SSHCA_METRICS_HOST, SSHCA_METRICS_PORT,
SSHCA_AUDIT_ANCHOR, SSHCA_AUDIT_ANCHOR_INTERVAL_SECONDS, SSHCA_AUDIT_ANCHOR_RETENTION_DAYS, SSHCA_S3_ENDPOINT
(see docs/deploy.md, docs/identity.md, docs/ca-keys.md, docs/audit.md)
sshca-server policy check|explain ...   test a policy file (docs/policy.md)`;

function port(value: string, name: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new ConfigError(`${name} must be a port number 0–65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name] ?? String(fallback);
  if (!/^\d{3,5}$/.test(v)) throw new ConfigError(`${name} must be 100–99999 milliseconds`);
  return Number(v);
}

/** A whole number from `min` to `max`, or the fallback when unset. */
function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const v = env[name]?.trim() || String(fallback);
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

/**
 * SSHCA_AUDIT_ANCHOR: `off`, an absolute directory (or `dir:<path>`), or
 * `s3://bucket[/prefix/]`. Unset: `devDefault` (dev mode: `<data dir>/anchors`),
 * else none.
 */
function anchorSettings(env: NodeJS.ProcessEnv, devDefault: string | undefined): AnchorConfig | undefined {
  const value = env.SSHCA_AUDIT_ANCHOR?.trim() || devDefault;
  if (value === undefined || value === 'off') return undefined;
  const intervalMs = integer(env, 'SSHCA_AUDIT_ANCHOR_INTERVAL_SECONDS', 300, 5, 86_400) * 1000;
  const s3 = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  if (s3) {
    const prefix = s3[2] ?? '';
    const endpoint = env.SSHCA_S3_ENDPOINT?.trim() || undefined;
    if (endpoint !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(endpoint)) throw new ConfigError('SSHCA_S3_ENDPOINT must be a URL like https://s3.eu-west-1.amazonaws.com');
    return Object.freeze({
      kind: 's3',
      bucket: s3[1]!,
      prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
      retentionDays: integer(env, 'SSHCA_AUDIT_ANCHOR_RETENTION_DAYS', 365, 1, 36_500),
      ...(endpoint ? { endpoint } : {}),
      intervalMs,
    });
  }
  const path = value.startsWith('dir:') ? value.slice('dir:'.length) : value;
  if (!isAbsolute(path)) throw new ConfigError('SSHCA_AUDIT_ANCHOR must be off, s3://bucket/prefix/ or an absolute directory path');
  return Object.freeze({ kind: 'directory', path, intervalMs });
}

/** Settings both modes share. */
function commonSettings(env: NodeJS.ProcessEnv, mode: 'dev' | 'production'): Pick<CommonConfig, 'rateLimits' | 'refusalSummaryIntervalMs' | 'trustedProxies' | 'metrics'> {
  const metricsPort = env.SSHCA_METRICS_PORT?.trim() || (mode === 'dev' ? '0' : String(DEFAULT_METRICS_PORT));
  const metricsHost = env.SSHCA_METRICS_HOST?.trim() || '127.0.0.1';
  if (isIP(metricsHost) === 0 && metricsHost !== 'localhost') throw new ConfigError('SSHCA_METRICS_HOST must be an IP address (default 127.0.0.1)');
  const trustedProxies = list(env, 'SSHCA_TRUSTED_PROXIES');
  for (const cidr of trustedProxies) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(cidr);
    const family = m ? isIP(m[1]!) : 0;
    if (!m || family === 0 || (m[2] !== undefined && Number(m[2]) > (family === 4 ? 32 : 128))) {
      throw new ConfigError(`SSHCA_TRUSTED_PROXIES: ${JSON.stringify(cidr)} is not an IP address or CIDR`);
    }
  }
  return {
    trustedProxies: Object.freeze(trustedProxies),
    rateLimits: Object.freeze({
      authenticatedPerMinute: integer(env, 'SSHCA_RATE_LIMIT_PER_MINUTE', DEFAULT_RATE_LIMITS.authenticatedPerMinute, 0, 1_000_000),
      publicPerMinute: integer(env, 'SSHCA_PUBLIC_RATE_LIMIT_PER_MINUTE', DEFAULT_RATE_LIMITS.publicPerMinute, 0, 1_000_000),
    }),
    refusalSummaryIntervalMs: integer(env, 'SSHCA_REFUSAL_SUMMARY_SECONDS', 60, 1, 3600) * 1000,
    ...(metricsPort === 'off' ? {} : { metrics: Object.freeze({ host: metricsHost, port: port(metricsPort, 'SSHCA_METRICS_PORT') }) }),
  };
}

/**
 * SSHCA_AUDIENCE: the URL clients use to reach this server (through the
 * load balancer), canonicalised the way the client canonicalises its
 * --server. https, or http for a loopback host.
 */
function audienceUrl(env: NodeJS.ProcessEnv): string {
  const value = required(env, 'SSHCA_AUDIENCE');
  let audience: string;
  try {
    audience = canonicalServerUrl(value);
  } catch (err) {
    if (err instanceof ServerUrlError) throw new ConfigError(`SSHCA_AUDIENCE must be the server's URL as clients use it, like https://sshca.example.com: ${err.message}`);
    throw err;
  }
  return audience;
}

function list(env: NodeJS.ProcessEnv, name: string): string[] {
  return (env[name] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new ConfigError(`${name} is required in production mode (or start with --dev)`);
  return v;
}

/** Parses argv and env; `osUser` is the login name the dev user defaults to. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv, osUser: string, cwd: string): Config {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        dev: { type: 'boolean' },
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        'dev-user': { type: 'string' },
        'ca-key-type': { type: 'string' },
        'user-ca': { type: 'string' },
        'user-ca-next': { type: 'string' },
        'host-ca': { type: 'string' },
        'host-ca-next': { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const o = parsed.values;
  const logLevel = env.SSHCA_LOG_LEVEL ?? 'info';
  const store = env.SSHCA_STORE?.trim() || undefined;
  if (store !== undefined && !/^postgres(?:ql)?:\/\/\S+$/.test(store)) throw new ConfigError('SSHCA_STORE must be a postgres:// URL');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) throw new ConfigError(`SSHCA_LOG_LEVEL ${logLevel} is not a pino level`);
  if (o.dev && (['user-ca', 'host-ca', 'user-ca-next', 'host-ca-next'] as const).some((f) => o[f] !== undefined)) {
    throw new ConfigError('--user-ca/--host-ca apply to production mode; --dev keeps its CA key in the data dir');
  }
  if (o.dev) {
    // As root the OS name would ask for a `root` principal, which is never granted.
    const devUser = o['dev-user'] ?? (osUser === 'root' ? 'developer' : osUser);
    if (!PRINCIPAL_PATTERN.test(devUser) || devUser === 'root') {
      throw new ConfigError(`--dev-user ${JSON.stringify(devUser)} must be 1–64 characters of [A-Za-z0-9._@-] and not root`);
    }
    const caKeyType = (o['ca-key-type'] ?? 'ed25519') as CaKeyType;
    if (!CA_KEY_TYPES.includes(caKeyType)) throw new ConfigError(`--ca-key-type must be one of ${CA_KEY_TYPES.join(', ')}`);
    return Object.freeze({
      mode: 'dev',
      host: o.host ?? '127.0.0.1',
      port: port(o.port ?? '8080', '--port'),
      dataDir: resolve(cwd, o['data-dir'] ?? '.sshca-dev'),
      devUser,
      caKeyType,
      logLevel,
      ...commonSettings(env, 'dev'),
      ...(store ? { store } : {}),
      ...optional('anchor', anchorSettings(env, join(resolve(cwd, o['data-dir'] ?? '.sshca-dev'), 'anchors'))),
    });
  }
  for (const flag of ['host', 'port', 'data-dir', 'dev-user', 'ca-key-type'] as const) {
    if (o[flag] !== undefined) throw new ConfigError(`--${flag} applies only with --dev; production reads SSHCA_* variables`);
  }
  let stsEndpoints: StsEndpoint[];
  try {
    stsEndpoints = required(env, 'SSHCA_STS_ENDPOINTS').split(',').map((u) => productionStsEndpoint(u.trim()));
  } catch (err) {
    if (err instanceof StsEndpointError) throw new ConfigError(`SSHCA_STS_ENDPOINTS: ${err.message}`);
    throw err;
  }
  const policyPath = required(env, 'SSHCA_POLICY');
  if (!isAbsolute(policyPath)) throw new ConfigError('SSHCA_POLICY must be an absolute path');
  const keyReference = (value: string | undefined, name: string): KeyReference | undefined => {
    if (value === undefined || value.trim() === '') return undefined;
    try {
      return parseKeyReference(value.trim(), env.AWS_REGION ?? env.AWS_DEFAULT_REGION);
    } catch (err) {
      if (err instanceof KeyReferenceError) throw new ConfigError(`${name}: ${err.message}`);
      throw err;
    }
  };
  const userCa = keyReference(o['user-ca'] ?? env.SSHCA_USER_CA, '--user-ca/SSHCA_USER_CA');
  if (!userCa) throw new ConfigError('--user-ca or SSHCA_USER_CA is required in production mode (kms:<key ARN> or file:<path>)');
  const hostCa = keyReference(o['host-ca'] ?? env.SSHCA_HOST_CA, '--host-ca/SSHCA_HOST_CA');
  const userCaNext = keyReference(o['user-ca-next'] ?? env.SSHCA_USER_CA_NEXT, '--user-ca-next/SSHCA_USER_CA_NEXT');
  const hostCaNext = keyReference(o['host-ca-next'] ?? env.SSHCA_HOST_CA_NEXT, '--host-ca-next/SSHCA_HOST_CA_NEXT');
  /** Retired keys: OpenSSH public key lines, `;` or newline separated. */
  const retiredKeys = (name: string): string[] => {
    const lines = (env[name] ?? '').split(/[;\n]/).map((l) => l.trim()).filter((l) => l !== '');
    for (const line of lines) {
      try {
        parsePublicKeyLine(line);
      } catch (err) {
        throw new ConfigError(`${name}: ${JSON.stringify(line.slice(0, 40))} is not an OpenSSH public key: ${(err as Error).message}`);
      }
    }
    return lines;
  };
  const userCaRetired = retiredKeys('SSHCA_USER_CA_RETIRED');
  const hostCaRetired = retiredKeys('SSHCA_HOST_CA_RETIRED');
  if ((hostCaNext || hostCaRetired.length > 0) && !hostCa) throw new ConfigError('a next or retired host CA key needs an active --host-ca');
  const endpoint = (name: string, example: string): string | undefined => {
    const v = env[name]?.trim() || undefined;
    if (v !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(v)) throw new ConfigError(`${name} must be a URL like ${example}`);
    return v;
  };
  const kmsEndpoint = endpoint('SSHCA_KMS_ENDPOINT', 'https://kms.eu-west-1.amazonaws.com');
  const ec2Endpoint = endpoint('SSHCA_EC2_ENDPOINT', 'https://ec2.eu-west-1.amazonaws.com');
  const awsStsEndpoint = endpoint('SSHCA_AWS_STS_ENDPOINT', 'https://sts.eu-west-1.amazonaws.com');
  const ec2Role = env.SSHCA_EC2_ROLE?.trim() || undefined;
  if (ec2Role !== undefined && !EC2_ROLE_TEMPLATE.test(ec2Role)) {
    throw new ConfigError('SSHCA_EC2_ROLE must be arn:<partition>:iam::{account}:role/<name>, with {account} written literally');
  }
  const auditDbPath = env.SSHCA_AUDIT_DB?.trim() || undefined;
  if (!store && !auditDbPath) throw new ConfigError('SSHCA_STORE (postgres://…) or SSHCA_AUDIT_DB (a SQLite file) is required in production mode');
  if (auditDbPath !== undefined && !isAbsolute(auditDbPath)) throw new ConfigError('SSHCA_AUDIT_DB must be an absolute path');
  const checkpointSetting = required(env, 'SSHCA_CHECKPOINT_KEY').trim();
  // A bare absolute path is a file key, as before kms: keys existed.
  const checkpointKey = keyReference(isAbsolute(checkpointSetting) ? `file:${checkpointSetting}` : checkpointSetting, 'SSHCA_CHECKPOINT_KEY');
  if (!checkpointKey) throw new ConfigError('SSHCA_CHECKPOINT_KEY must be kms:<key ARN> or the absolute path of an Ed25519 PEM key');
  const stsTimeoutMs = milliseconds(env, 'SSHCA_STS_TIMEOUT_MS', 5000);
  const stsConnectTimeoutMs = milliseconds(env, 'SSHCA_STS_CONNECT_TIMEOUT_MS', 2000);
  if (stsConnectTimeoutMs > stsTimeoutMs) throw new ConfigError('SSHCA_STS_CONNECT_TIMEOUT_MS must not exceed SSHCA_STS_TIMEOUT_MS');
  const trustedSessionRoles = list(env, 'SSHCA_TRUSTED_SESSION_ROLES');
  for (const r of trustedSessionRoles) {
    // The canonical form STS-derived role ARNs take: no path (STS does not report it).
    if (!/^arn:(aws|aws-us-gov|aws-cn):iam::\d{12}:role\/[\w+=,.@-]{1,64}$/.test(r)) {
      throw new ConfigError(`SSHCA_TRUSTED_SESSION_ROLES: ${JSON.stringify(r)} is not arn:<partition>:iam::<account>:role/<name> (without a path)`);
    }
  }
  const federated = env.SSHCA_ALLOW_FEDERATED_USERS ?? 'false';
  if (federated !== 'true' && federated !== 'false') throw new ConfigError('SSHCA_ALLOW_FEDERATED_USERS must be true or false');
  return Object.freeze({
    mode: 'production',
    host: env.SSHCA_HOST ?? '127.0.0.1',
    port: port(env.SSHCA_PORT ?? '8080', 'SSHCA_PORT'),
    logLevel,
    ...commonSettings(env, 'production'),
    audience: audienceUrl(env),
    stsEndpoints: Object.freeze(stsEndpoints),
    policyPath,
    userCa,
    ...(userCaNext ? { userCaNext } : {}),
    userCaRetired: Object.freeze(userCaRetired),
    ...(hostCa ? { hostCa } : {}),
    ...(hostCaNext ? { hostCaNext } : {}),
    hostCaRetired: Object.freeze(hostCaRetired),
    ...(kmsEndpoint ? { kmsEndpoint } : {}),
    ...(ec2Role ? { ec2Role } : {}),
    ...(ec2Endpoint ? { ec2Endpoint } : {}),
    ...(awsStsEndpoint ? { awsStsEndpoint } : {}),
    ...(store ? { store } : { auditDbPath: auditDbPath! }),
    checkpointKey,
    stsTimeoutMs,
    stsConnectTimeoutMs,
    trustedSessionRoles: Object.freeze(trustedSessionRoles),
    allowFederatedUsers: federated === 'true',
    ...optional('anchor', anchorSettings(env, undefined)),
  });
}

/** `{ [name]: value }`, or nothing when the value is absent (exactOptionalPropertyTypes). */
function optional<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

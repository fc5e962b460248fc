// The composition root: the only place that reads the environment, opens
// files and builds clients. Everything else receives what it needs.
import { userInfo } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { canonicalServerUrl } from '../protocol/server-url.js';
import { fingerprintOf, parsePublicKeyLine } from '../protocol/ssh-public-key.js';
import { buildApp } from './app.js';
import { CheckpointSigner } from './audit/checkpoint-signer.js';
import { KmsCheckpointSigner } from './audit/kms-checkpoint-signer.js';
import { S3Client } from '@aws-sdk/client-s3';
import { importCheckpointKey } from '../protocol/audit-chain.js';
import type { AuditAnchors } from './app-deps.js';
import { AnchorPublisher, type AnchorLog } from './audit/anchor-publisher.js';
import type { AnchorError, AnchorStore } from './audit/anchor-store.js';
import type { AuditLog, CommitListener } from './audit/audit-log.js';
import type { CheckpointKey } from './audit/checkpoint-signer.js';
import { DirectoryAnchorStore } from './audit/directory-anchor-store.js';
import { S3AnchorStore } from './audit/s3-anchor-store.js';
import { PostgresAuditLog } from './audit/postgres-audit-log.js';
import { SqliteAuditLog } from './audit/sqlite-audit-log.js';
import { CertificateAuthority } from './ca/certificate-authority.js';
import { KMSClient } from '@aws-sdk/client-kms';
import type { KeyReference } from './ca/key-reference.js';
import { KmsSigner } from './ca/kms-signer.js';
import { LocalSigner } from './ca/local-signer.js';
import type { Signer } from './ca/signer.js';
import { systemClock, type Clock } from './clock.js';
import { ConfigError, USAGE, loadConfig, type AnchorConfig, type Config, type DevConfig } from './config.js';
import { DEV_ACCOUNT, DEV_PROFILE, prepareDevEnvironment } from './dev/dev-environment.js';
import { DEV_EC2_PATH, DEV_IMDS_PATH, DEV_INSTANCE_ID, DevInstanceAws } from './dev/dev-instance.js';
import { DEV_STS_PATH, DEV_STS_REGION } from './dev/dev-sts.js';
import { ec2Clients } from './hosts/ec2-clients.js';
import { Ec2InstanceDirectory } from './hosts/instance-directory.js';
import { StsAuthenticator } from './identity/sts-authenticator.js';
import { Metrics } from './metrics.js';
import { listenMetrics, type MetricsListener } from './metrics-listener.js';
import { StsEndpointAllowlist } from './identity/sts-endpoints.js';
import { undiciStsTransport } from './identity/sts-transport.js';
import { PolicyFileError } from './policy/policy-file.js';
import { PolicyStore } from './policy/policy-store.js';

/** A running server and what a caller needs to reach it. */
export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly userCaFingerprint: string;
  /** Re-reads the policy file (SIGHUP); the old policy stays if the new one is invalid. */
  reloadPolicy(): ReturnType<PolicyStore['reload']>;
  /** GET /metrics, on its own listener (absent when SSHCA_METRICS_PORT=off). */
  readonly metricsUrl?: string;
  /** Dev mode: the environment `sshca login` needs (credentials file, profile). */
  readonly devLogin?: { readonly credentialsPath: string; readonly profile: string; readonly user: string };
  close(): Promise<void>;
}

/** The dev server's URL in canonical form (URL normalises IPv6 hosts, as the AWS SDK does). */
function baseUrl(host: string, port: number): string {
  return canonicalServerUrl(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
}

/** Builds every dependency from `config`, listens, and returns the server. */
export async function startServer(config: Config, options: { clock?: Clock; logger?: boolean | object } = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? { level: config.logLevel, redact: ['req.headers.authorization', 'req.headers["x-amz-security-token"]'] };
  const dev = config.mode === 'dev' ? prepareDevEnvironment(config.dataDir, config.devUser, config.caKeyType) : undefined;
  const prod = config.mode === 'production' ? config : undefined;
  const kmsClients: KMSClient[] = [];
  const s3Clients: S3Client[] = [];
  const warn = (message: string) => process.stderr.write(`sshca-server: warning: ${message}\n`);
  const metrics = new Metrics({ processMetrics: true });
  const signer = dev ? LocalSigner.openOrCreate(dev.caKeyPath, (config as DevConfig).caKeyType) : await openSigner(prod!.userCa, prod!.kmsEndpoint, kmsClients, warn);
  const hostSigner = dev ? LocalSigner.openOrCreate(dev.hostCaKeyPath, 'ed25519') : prod?.hostCa ? await openSigner(prod.hostCa, prod.kmsEndpoint, kmsClients, warn) : undefined;
  // Dev: one instance (this machine) behind the dev server's own EC2 and IMDS endpoints.
  const devInstance = dev ? new DevInstanceAws({ account: DEV_ACCOUNT, region: DEV_STS_REGION, clock }) : undefined;
  let devEc2Url: string | undefined;
  // The next key only needs to be readable now; it signs once promoted to --user-ca.
  const publicKeyOf = async (ref: KeyReference | undefined) => (ref ? (await openSigner(ref, prod!.kmsEndpoint, kmsClients, warn)).publicKey() : undefined);
  const userCaNext = await publicKeyOf(prod?.userCaNext);
  const hostCaNext = await publicKeyOf(prod?.hostCaNext);
  const userCaRetired = (prod?.userCaRetired ?? []).map((line) => parsePublicKeyLine(line));
  const hostCaRetired = (prod?.hostCaRetired ?? []).map((line) => parsePublicKeyLine(line));
  const checkpoints = dev
    ? CheckpointSigner.openOrCreate(dev.checkpointKeyPath)
    : prod!.checkpointKey.kind === 'file'
      ? CheckpointSigner.fromFile(prod!.checkpointKey.path)
      : // Signed while the chain waits (PostgreSQL: under its lock): fail fast rather than stall every append.
        await KmsCheckpointSigner.open({ kms: kmsClientFor(prod!.checkpointKey.region, prod!.kmsEndpoint, kmsClients, { maxAttempts: 2, requestTimeoutMs: 1500 }), keyRef: prod!.checkpointKey.keyId });
  // Before the store opens: an invalid policy stops start-up with nothing to close.
  const policy = PolicyStore.load(dev ? dev.policyPath : prod!.policyPath);
  // Every committed record also goes out as one JSON log line (issue 16), once the app's logger exists.
  const recordLog: { write?: CommitListener } = {};
  const onCommit: CommitListener = (records) => recordLog.write?.(records);
  const store = config.store
    ? await PostgresAuditLog.open(config.store, checkpoints, { onIdleError: (err) => warn(`store connection lost: ${err.message}`), onCommit })
    : await SqliteAuditLog.open(dev ? dev.auditDbPath : prod!.auditDbPath!, checkpoints, { onCommit });
  // The chain head, published where the store's own database cannot rewrite it (issue 16).
  const anchorLog = lateLog();
  const anchoring = config.anchor
    ? await openAnchoring(config.anchor, store, checkpoints, clock, anchorLog, s3Clients).catch(async (err: unknown) => {
        await store.close();
        throw err;
      })
    : undefined;
  if (!anchoring && config.mode === 'production') warn('SSHCA_AUDIT_ANCHOR is not set: the newest audit records could be deleted from the database without trace (docs/audit.md, "Anchors")');
  // Dev: the allowlist and the audience (the server's own URL) are filled once we know the port.
  const endpoints = new StsEndpointAllowlist(prod?.stsEndpoints ?? []);
  let audienceUrl = prod?.audience ?? '';
  const audience = () => audienceUrl;
  // Host certificates need a host CA and someone to ask about instances: EC2.
  const ec2 = !hostSigner
    ? undefined
    : devInstance
      ? ec2Clients({ endpoint: () => devEc2Url, credentials: devInstance.reader })
      : ec2Clients({ ...(prod?.ec2Role ? { role: prod.ec2Role } : {}), ...(prod?.ec2Endpoint ? { endpoint: () => prod.ec2Endpoint } : {}), ...(prod?.awsStsEndpoint ? { stsEndpoint: prod.awsStsEndpoint } : {}) });
  const transport = undiciStsTransport({ connectTimeoutMs: prod?.stsConnectTimeoutMs ?? 2000, totalTimeoutMs: prod?.stsTimeoutMs ?? 5000 });
  // Every CA signature and STS call is timed (and its failures counted) on the way through.
  const userSigner = metrics.timedSigner(signer, 'user');
  const timedHostSigner = hostSigner ? metrics.timedSigner(hostSigner, 'host') : undefined;
  const app = buildApp({
    audience,
    endpoints,
    authenticator: new StsAuthenticator({
      audience,
      endpoints,
      accounts: policy.accounts,
      identityRules: { trustedSessionRoles: new Set(prod?.trustedSessionRoles ?? []), allowFederatedUsers: prod?.allowFederatedUsers ?? false },
      replayCache: store,
      transport: metrics.timedStsTransport(transport),
      clock,
    }),
    policy,
    userSigner,
    ...(userCaNext ? { userCaNext } : {}),
    userCaRetired,
    ...(timedHostSigner ? { hostSigner: timedHostSigner } : {}),
    ...(hostCaNext ? { hostCaNext } : {}),
    hostCaRetired,
    ...(ec2 ? { instances: new Ec2InstanceDirectory({ clientFor: ec2.clientFor }) } : {}),
    ca: new CertificateAuthority({ signer: userSigner }),
    metrics,
    audit: store,
    checkpoints,
    ...(anchoring ? { anchors: anchoring.anchors } : {}),
    clock,
    rateLimits: config.rateLimits,
    trustedProxies: config.trustedProxies,
    refusalSummaryIntervalMs: config.refusalSummaryIntervalMs,
    ...(dev ? { devSts: dev.identity } : {}),
    ...(devInstance ? { devInstance } : {}),
    logger,
  });
  // The record's stream for CloudWatch Logs or a SIEM: written at info
  // whatever SSHCA_LOG_LEVEL says (only `silent` silences it), one line per
  // record, after its batch committed.
  const auditLines = app.log.child({}, { level: config.logLevel === 'silent' ? 'silent' : 'info' });
  recordLog.write = (records) => {
    for (const record of records) auditLines.info({ audit: record }, 'audit record');
  };
  // After the app has closed (its own onClose hooks write the last refusal
  // summary to the store), never before: so the store closes last.
  let closing: Promise<void> | undefined;
  let metricsListener: MetricsListener | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await metricsListener?.close();
      await app.close();
      await anchoring?.publisher.stop();
      await transport.close();
      await store.close();
      for (const client of s3Clients) client.destroy();
      for (const client of kmsClients) client.destroy();
      ec2?.destroy();
    })());
  try {
    await app.listen({ host: config.host, port: config.port });
    if (config.metrics) metricsListener = await listenMetrics(metrics, config.metrics.host, config.metrics.port);
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  anchorLog.target = app.log;
  // Evidence of tampering is logged (again at every interval) and reported by
  // `sshca audit verify`; the CA keeps issuing meanwhile.
  await anchoring?.publisher.start().catch((err: AnchorError) => app.log.error({ code: err.code, err }, 'the audit chain disagrees with its published anchors; nothing new is anchored'));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = baseUrl(config.host, port);
  if (dev) {
    endpoints.replace([{ url: `${url}${DEV_STS_PATH}`, region: DEV_STS_REGION, partition: 'aws' }]);
    devEc2Url = `${url}${DEV_EC2_PATH}`;
    audienceUrl = url;
  }
  return {
    app,
    url,
    userCaFingerprint: fingerprintOf(signer.publicKey().blob),
    reloadPolicy: () => {
      const result = policy.reload();
      metrics.policyReloaded(result.ok);
      return result;
    },
    ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
    ...(dev ? { devLogin: { credentialsPath: dev.credentialsPath, profile: DEV_PROFILE, user: (config as DevConfig).devUser } } : {}),
    close,
  };
}

/** A logger whose target is set once the app (and its logger) exists. */
function lateLog(): AnchorLog & { target?: AnchorLog } {
  const log: AnchorLog & { target?: AnchorLog } = {
    info: (obj, msg) => log.target?.info(obj, msg),
    error: (obj, msg) => (log.target ? log.target.error(obj, msg) : process.stderr.write(`sshca-server: ${msg}\n`)),
  };
  return log;
}

/** The anchor store SSHCA_AUDIT_ANCHOR names, and its publisher. */
async function openAnchoring(anchor: AnchorConfig, store: AuditLog, checkpoints: CheckpointKey, clock: Clock, log: AnchorLog, s3Clients: S3Client[]): Promise<{ anchors: AuditAnchors; publisher: AnchorPublisher }> {
  let anchorStore: AnchorStore;
  if (anchor.kind === 'directory') anchorStore = await DirectoryAnchorStore.open(anchor.path);
  else {
    const s3 = new S3Client({
      ...(anchor.endpoint ? { endpoint: anchor.endpoint, forcePathStyle: true } : {}),
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 2000, requestTimeout: 5000, throwOnRequestTimeout: true },
    });
    s3Clients.push(s3);
    anchorStore = new S3AnchorStore({ s3, bucket: anchor.bucket, prefix: anchor.prefix, retentionDays: anchor.retentionDays });
  }
  const publisher = new AnchorPublisher({
    store: anchorStore,
    chainHead: () => store.head(),
    hashAt: (seq) => store.hashAt(seq),
    signHead: (seq, hash, at) => checkpoints.signHead(seq, hash, at),
    verifyKey: await importCheckpointKey({ ...checkpoints.jwk }),
    clock,
    intervalMs: anchor.intervalMs,
    log,
  });
  return { publisher, anchors: { location: anchorStore.location, anchorNow: () => publisher.anchorNow(), newest: (limit) => anchorStore.newest(limit) } };
}

/**
 * Opens a CA key. KMS clients are built here and only here: adaptive retries
 * for throttling, explicit connect and request timeouts (the SDK only warns
 * on a request timeout unless told to throw).
 */
async function openSigner(ref: KeyReference, kmsEndpoint: string | undefined, clients: KMSClient[], warn: (message: string) => void): Promise<Signer> {
  if (ref.kind === 'file') return LocalSigner.fromFile(ref.path);
  if (ref.isAlias) warn(`${ref.keyId} is an alias: it is resolved once now, but anyone who can retarget it changes the CA at the next start. Configure the key ARN.`);
  return KmsSigner.open({ kms: kmsClientFor(ref.region, kmsEndpoint, clients), keyRef: ref.keyId });
}

/** A KMS client: adaptive retries for throttling, explicit connect and request timeouts (the SDK only warns on a request timeout unless told to throw). */
function kmsClientFor(region: string, kmsEndpoint: string | undefined, clients: KMSClient[], limits: { maxAttempts: number; requestTimeoutMs: number } = { maxAttempts: 4, requestTimeoutMs: 5000 }): KMSClient {
  const kms = new KMSClient({
    region,
    ...(kmsEndpoint ? { endpoint: kmsEndpoint } : {}),
    retryMode: 'adaptive',
    maxAttempts: limits.maxAttempts,
    requestHandler: { connectionTimeout: 2000, requestTimeout: limits.requestTimeoutMs, throwOnRequestTimeout: true },
  });
  clients.push(kms);
  return kms;
}

/** `sshca-server` */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(argv, env, userInfo().username, process.cwd());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sshca-server: ${err.message}\n${USAGE}\n`);
      return 1;
    }
    throw err;
  }
  if (argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let server: RunningServer;
  try {
    server = await startServer(config);
  } catch (err) {
    if (err instanceof PolicyFileError) {
      process.stderr.write(`sshca-server: cannot start: ${err.message}\n`);
      return 1;
    }
    // The cause carries what an operator needs (the key ARN, KMS's own words).
    const cause = (err as Error).cause instanceof Error ? ` (${((err as Error).cause as Error).message})` : '';
    process.stderr.write(`sshca-server: cannot start: ${(err as Error).message}${cause}\n`);
    return 1;
  }
  process.stderr.write(`sshca-server (${config.mode}) listening on ${server.url}\n${server.metricsUrl ? `metrics (Prometheus) at ${server.metricsUrl}\n` : ''}`);
  if (server.devLogin) {
    process.stderr.write(
      `embedded default: dev user ${server.devLogin.user}, user CA ${server.userCaFingerprint}\nlog in with:\n` +
        `  AWS_SHARED_CREDENTIALS_FILE=${server.devLogin.credentialsPath} sshca login --server ${server.url} --profile ${server.devLogin.profile}\n` +
        `dev instance ${DEV_INSTANCE_ID} (this machine): its IMDSv2 for host certificates is ${server.url}${DEV_IMDS_PATH} (sshca-bootstrap --host-certificates --imds URL)\n`,
    );
  }
  process.on('SIGHUP', () => {
    const result = server.reloadPolicy();
    if (result.ok) server.app.log.info({ rules: result.rules }, 'policy reloaded');
    else server.app.log.error({ code: result.error.code, reason: result.error.message }, 'policy reload refused; the previous policy stays in force');
  });
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}

// The production-like mode's AWS: the STS and KMS test fixtures in a child
// process (aws-fixture-process.ts), with what a production server needs to
// reach them through configuration it would have anyway.
//
// KMS: SSHCA_KMS_ENDPOINT (VPC endpoints use it too). STS: production config
// accepts only real STS URLs (https://sts…amazonaws.com/, port 443), by
// design. So the fixture serves HTTPS on port 443 of a loopback address of
// its own, with a certificate for sts.amazonaws.com that the server trusts
// through NODE_EXTRA_CA_CERTS, and resolve-hosts.ts answers that one name
// with that address inside the server process — an /etc/hosts entry that
// touches nothing else on the machine. The server's code and its STS checks
// run exactly as in production.
import { execFileSync, fork } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { AwsFixtureCounts, AwsFixtureReady, AwsFixtureSettings } from './aws-fixture-process.js';
import type { Cleanup } from './cleanup.js';

/** The STS endpoint tokens name, and SSHCA_STS_ENDPOINTS allowlists: us-east-1, the fixture's region. */
export const STS_ENDPOINT = 'https://sts.amazonaws.com/';
const STS_HOST = 'sts.amazonaws.com';
const READY_TIMEOUT_MS = 30_000;

/** Running fixtures. */
export interface AwsFixtures extends Omit<AwsFixtureReady, 'type'> {
  /** Environment and node options that send the server's STS calls to the fixture. */
  readonly serverEnv: Readonly<Record<string, string>>;
  readonly serverNodeArgs: readonly string[];
  /** STS GetCallerIdentity calls and KMS Sign calls answered so far, and the fixtures' CPU milliseconds. */
  counts(): Promise<Omit<AwsFixtureCounts, 'type'>>;
}

/** Why the production-like mode cannot run here, if it cannot. */
export function awsFixturesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'it binds port 443 on a loopback address (run as root)';
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return 'openssl (for the fixture STS certificate) is not installed';
  }
  return undefined;
}

/** Starts the fixtures with the given latencies; `dir` receives the TLS key and certificate. */
export async function startAwsFixtures(cleanup: Cleanup, dir: string, latency: { stsMs: number; kmsMs: number }): Promise<AwsFixtures> {
  const tlsKeyPath = join(dir, 'sts-key.pem');
  const tlsCertPath = join(dir, 'sts-cert.pem');
  // Self-signed and trusted as its own root by the server only; one day is plenty for a run.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tlsKeyPath, '-out', tlsCertPath, '-days', '1', '-subj', `/CN=${STS_HOST}`, '-addext', `subjectAltName=DNS:${STS_HOST}`], { stdio: 'ignore' });
  // A loopback address nothing else uses, so port 443 on it is free.
  const stsHost = `127.83.${randomInt(1, 255)}.${randomInt(1, 255)}`;
  const settings: AwsFixtureSettings = { stsHost, stsPort: 443, tlsKeyPath, tlsCertPath, stsLatencyMs: latency.stsMs, kmsLatencyMs: latency.kmsMs };
  const child = fork(join(import.meta.dirname, 'aws-fixture-process.js'), [JSON.stringify(settings)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanup.track(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanup.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const ready = await new Promise<AwsFixtureReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the AWS fixtures did not start')), READY_TIMEOUT_MS);
    child.once('message', (m: AwsFixtureReady) => {
      clearTimeout(timer);
      resolve(m);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the AWS fixtures exited (${code}) before they were ready`));
    });
  });
  return {
    kmsUrl: ready.kmsUrl,
    kmsCredentials: ready.kmsCredentials,
    userCaArn: ready.userCaArn,
    checkpointArn: ready.checkpointArn,
    principal: ready.principal,
    serverEnv: { NODE_EXTRA_CA_CERTS: tlsCertPath, BENCH_RESOLVE: `${STS_HOST}=${stsHost}` },
    serverNodeArgs: ['--import', join(import.meta.dirname, 'resolve-hosts.js')],
    counts: () =>
      new Promise((resolve) => {
        child.once('message', (m: AwsFixtureCounts) => resolve({ sts: m.sts, kmsSign: m.kmsSign, cpuMs: m.cpuMs }));
        child.send({ type: 'counts' });
      }),
  };
}

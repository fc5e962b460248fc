// A child process serving the STS and KMS test fixtures (test/fixtures/) for
// the production-like mode, each answer delayed by a configured latency.
// Apart from the bench so that their CPU (SigV4 checks, KMS signatures) and
// their timers never share an event loop with the load generator's clock.
// Talks to its parent over the IPC channel: `ready` once listening, `counts`
// when asked; stops when told or when the parent goes away.
import { readFileSync } from 'node:fs';
import { startKmsFixture } from '../../test/fixtures/kms-fixture.js';
import { startStsFixture } from '../../test/fixtures/sts-fixture.js';
import { Cleanup } from './cleanup.js';

/** Set by the parent (aws-fixtures.ts), as JSON in argv[2]. */
export interface AwsFixtureSettings {
  readonly stsHost: string;
  readonly stsPort: number;
  readonly tlsKeyPath: string;
  readonly tlsCertPath: string;
  readonly stsLatencyMs: number;
  readonly kmsLatencyMs: number;
}

/** The `ready` message. */
export interface AwsFixtureReady {
  readonly type: 'ready';
  readonly kmsUrl: string;
  readonly kmsCredentials: { accessKeyId: string; secretAccessKey: string };
  readonly userCaArn: string;
  readonly checkpointArn: string;
  /** An IAM user the fixture STS knows: the engineer whose tokens the bench signs. */
  readonly principal: { accessKeyId: string; secretAccessKey: string; arn: string; account: string };
}

export interface AwsFixtureCounts {
  readonly type: 'counts';
  readonly sts: number;
  readonly kmsSign: number;
  /** This process's CPU so far (user + system), in milliseconds: what "AWS" cost the machine. */
  readonly cpuMs: number;
}

// Only meaningful as a child: the module is imported for its types too.
if (process.send && process.argv[2]) {
  const settings = JSON.parse(process.argv[2]) as AwsFixtureSettings;
  const cleanup = new Cleanup();
  const stop = () => void cleanup.run().finally(() => process.exit(0));
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const sts = await startStsFixture(cleanup.asTap(), {
    latencyMs: settings.stsLatencyMs,
    tls: { key: readFileSync(settings.tlsKeyPath), cert: readFileSync(settings.tlsCertPath) },
    host: settings.stsHost,
    port: settings.stsPort,
  });
  const kms = await startKmsFixture(cleanup.asTap(), { latencyMs: settings.kmsLatencyMs });
  const p = sts.principals.user;
  const ready: AwsFixtureReady = {
    type: 'ready',
    kmsUrl: kms.url,
    kmsCredentials: kms.credentials,
    userCaArn: kms.createKey('ECC_NIST_EDWARDS25519'),
    checkpointArn: kms.createKey('ECC_NIST_EDWARDS25519'),
    principal: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey, arn: p.arn, account: p.account },
  };
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'counts') {
      const cpu = process.cpuUsage();
      process.send!({ type: 'counts', sts: sts.counts.sts, kmsSign: kms.counts.sign, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies AwsFixtureCounts);
    }
    if (m.type === 'stop') stop();
  });
  process.send(ready);
}

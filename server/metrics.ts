// What operators watch (issue 13): Prometheus metrics through prom-client,
// one registry per server (so tests and replicas in one process never share
// counters), served by metrics-listener.ts on a port of its own, never the
// API's.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Signer } from './ca/signer.js';
import { SshcaError } from './errors.js';
import { stsUnavailableCode } from './identity/sts-authenticator.js';
import type { StsTransport } from './identity/sts-transport.js';

/** Latency buckets in seconds: STS, KMS and the store answer in milliseconds, and time out after seconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the KRL gauges read when scraped. */
export interface KrlFigures {
  readonly version: bigint;
  readonly revokedCertificates: number;
  readonly revokedKeys: number;
}

/** The server's metrics. Every method is cheap and never throws. */
export class Metrics {
  readonly registry = new Registry();
  private readonly issuedTotal: Counter<'kind'>;
  private readonly refusedTotal: Counter<'kind' | 'code'>;
  private readonly failedTotal: Counter<'kind' | 'code'>;
  private readonly stsSeconds: Histogram<'outcome'>;
  private readonly stsErrors: Counter<'code'>;
  private readonly kmsSeconds: Histogram<'ca' | 'outcome'>;
  private readonly kmsErrors: Counter<'ca' | 'code'>;
  private readonly auditSeconds: Histogram<'outcome'>;
  private readonly policyReloads: Counter<'result'>;

  private krl?: () => Promise<KrlFigures>;

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.issuedTotal = new Counter({ name: 'sshca_certificates_issued_total', help: 'Certificates issued, by kind (user, host).', labelNames: ['kind'], registers });
    this.refusedTotal = new Counter({
      name: 'sshca_requests_refused_total',
      help: 'Requests refused (4xx), by route kind (user, host, revocation, audit, other) and specific reason code (the 401s included, which clients only see as AUTHN_FAILED).',
      labelNames: ['kind', 'code'],
      registers,
    });
    this.failedTotal = new Counter({
      name: 'sshca_requests_failed_total',
      help: 'Requests that failed on the server side (5xx: UNAVAILABLE_*, INTERNAL_ERROR), by route kind and code.',
      labelNames: ['kind', 'code'],
      registers,
    });
    this.stsSeconds = new Histogram({ name: 'sshca_sts_request_duration_seconds', help: 'GetCallerIdentity calls to STS, by outcome (answered: any HTTP answer; failed: no answer).', labelNames: ['outcome'], buckets: LATENCY_BUCKETS, registers });
    this.stsErrors = new Counter({ name: 'sshca_sts_errors_total', help: 'STS calls that got no usable answer, by code (UNAVAILABLE_STS_THROTTLED is throttling).', labelNames: ['code'], registers });
    this.kmsSeconds = new Histogram({ name: 'sshca_kms_sign_duration_seconds', help: 'CA signatures (kms:Sign, or a local key in dev), by CA (user, host) and outcome.', labelNames: ['ca', 'outcome'], buckets: LATENCY_BUCKETS, registers });
    this.kmsErrors = new Counter({ name: 'sshca_kms_errors_total', help: 'Failed CA signatures by CA and code (UNAVAILABLE_KMS_THROTTLED is throttling).', labelNames: ['ca', 'code'], registers });
    this.auditSeconds = new Histogram({ name: 'sshca_audit_append_duration_seconds', help: 'Commits of audit records (issued, refused), by outcome (ok, failed).', labelNames: ['outcome'], buckets: LATENCY_BUCKETS, registers });
    this.policyReloads = new Counter({ name: 'sshca_policy_reloads_total', help: 'Policy reloads (SIGHUP), by result (ok, refused).', labelNames: ['result'], registers });
    {
      // Read when scraped: the KRL cache answers from memory (a store lookup at most every few seconds).
      const figures = async (): Promise<KrlFigures | undefined> => (this.krl ? this.krl().catch(() => undefined) : undefined);
      new Gauge({
        name: 'sshca_krl_version',
        help: 'The version of the KRL served at /v1/krl.',
        registers,
        async collect() {
          const f = await figures();
          if (f) this.set(Number(f.version));
        },
      });
      new Gauge({
        name: 'sshca_krl_revocations',
        help: 'Entries in the KRL served at /v1/krl, by what they revoke (certificate serials, public keys).',
        labelNames: ['entry'],
        registers,
        async collect() {
          const f = await figures();
          if (!f) return;
          this.set({ entry: 'certificate' }, f.revokedCertificates);
          this.set({ entry: 'key' }, f.revokedKeys);
        },
      });
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'sshca_' });
  }

  /** Where the KRL gauges read from (the app's KRL cache). */
  watchKrl(figures: () => Promise<KrlFigures>): void {
    this.krl = figures;
  }

  issued(kind: 'user' | 'host'): void {
    this.issuedTotal.inc({ kind });
  }

  /** A refusal (4xx) or a failure (5xx), by route kind and specific code. */
  answeredWithError(kind: string, code: string, status: number): void {
    (status >= 500 ? this.failedTotal : this.refusedTotal).inc({ kind, code });
  }

  policyReloaded(ok: boolean): void {
    this.policyReloads.inc({ result: ok ? 'ok' : 'refused' });
  }

  /** Times one audit commit. */
  async auditAppend<T>(commit: () => Promise<T>): Promise<T> {
    const end = this.auditSeconds.startTimer();
    try {
      const result = await commit();
      end({ outcome: 'ok' });
      return result;
    } catch (err) {
      end({ outcome: 'failed' });
      throw err;
    }
  }

  /** The STS transport, timed; failures counted by the code the authenticator will give them. */
  timedStsTransport(transport: StsTransport): StsTransport {
    return async (request) => {
      const end = this.stsSeconds.startTimer();
      try {
        const response = await transport(request);
        end({ outcome: 'answered' });
        const unavailable = stsUnavailableCode(response);
        if (unavailable) this.stsErrors.inc({ code: unavailable });
        return response;
      } catch (err) {
        end({ outcome: 'failed' });
        this.stsErrors.inc({ code: 'UNAVAILABLE_STS' });
        throw err;
      }
    };
  }

  /** A CA signer, timed; failures counted by their UNAVAILABLE_KMS_* code. */
  timedSigner(signer: Signer, ca: 'user' | 'host'): Signer {
    return {
      algorithm: signer.algorithm,
      publicKey: () => signer.publicKey(),
      ready: () => signer.ready(),
      sign: async (data: Buffer) => {
        const end = this.kmsSeconds.startTimer({ ca });
        try {
          const signature = await signer.sign(data);
          end({ outcome: 'ok' });
          return signature;
        } catch (err) {
          end({ outcome: 'failed' });
          this.kmsErrors.inc({ ca, code: err instanceof SshcaError ? err.code : 'UNAVAILABLE_KMS' });
          throw err;
        }
      },
    };
  }
}

// The embedded default's one EC2 instance (issue 12): this machine, as the
// dev server's own EC2 (/dev/ec2/) describes it, with an IMDSv2 endpoint
// (/dev/imds) serving its instance identity role credentials, which the dev
// STS vouches for. So `sshca-bootstrap --host-certificates` runs in dev mode
// exactly as on EC2, and the server's EC2 client (the AWS SDK) asks a real
// HTTP endpoint. Registered only in dev mode; production never has it.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock.js';
import { ec2DescribeInstances, type DevInstance } from './ec2-describe-instances.js';
import { ImdsEndpoint, type ImdsCredentials } from './imds-endpoint.js';
import type { DevIdentity } from './dev-sts.js';

export const DEV_INSTANCE_ID = 'i-0de5000000000000a';
export const DEV_EC2_PATH = '/dev/ec2/';
export const DEV_IMDS_PATH = '/dev/imds';
/** Identity role credentials live this long before IMDS hands out new ones (as on EC2, a few hours). */
const CREDENTIALS_LIFETIME_MS = 6 * 3600_000;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const keyId = (prefix: string) => `${prefix}${Array.from(randomBytes(16), (b) => BASE32[b % 32]).join('')}`;

/** The dev instance, its identity role credentials and the server's own EC2 read key. */
export class DevInstanceAws {
  readonly instance: DevInstance;
  /** The credentials the server's EC2 client signs DescribeInstances with (in memory only). */
  readonly reader = { accessKeyId: keyId('AKIA'), secretAccessKey: randomBytes(30).toString('base64') };
  readonly #roleId = keyId('AROA');
  #credentials?: ImdsCredentials;
  readonly #imds: ImdsEndpoint;

  constructor(
    private readonly deps: { readonly account: string; readonly region: string; readonly clock: Clock },
  ) {
    this.instance = {
      instanceId: DEV_INSTANCE_ID,
      account: deps.account,
      region: deps.region,
      state: 'running',
      vpcId: 'vpc-0de5000000000000a',
      subnetId: 'subnet-0de5000000000000a',
      // This machine: what `ssh 127.0.0.1` or `ssh localhost` checks the host certificate against.
      privateDnsName: 'localhost',
      privateIpAddress: '127.0.0.1',
      ipv6Addresses: ['::1'],
      tags: { Name: 'sshca-dev-instance' },
    };
    this.#imds = new ImdsEndpoint({
      instance: { instanceId: DEV_INSTANCE_ID, region: deps.region, account: deps.account },
      credentials: () => this.credentials(),
      clock: deps.clock,
      prefix: DEV_IMDS_PATH,
    });
  }

  /** The instance identity role credentials now, renewed once they are past half their life. */
  credentials(): ImdsCredentials {
    const now = this.deps.clock.now();
    const c = this.#credentials;
    if (c && c.expiration.getTime() - now.getTime() > CREDENTIALS_LIFETIME_MS / 2) return c;
    this.#credentials = {
      accessKeyId: keyId('ASIA'),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      lastUpdated: now,
      expiration: new Date(now.getTime() + CREDENTIALS_LIFETIME_MS),
    };
    return this.#credentials;
  }

  /** Who the dev STS says holds `accessKeyId`, when it is the instance's identity role (current, unexpired). */
  stsIdentity(accessKeyId: string): DevIdentity | undefined {
    const c = this.#credentials;
    if (!c || c.accessKeyId !== accessKeyId || c.expiration.getTime() <= this.deps.clock.now().getTime()) return undefined;
    return {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      account: this.deps.account,
      arn: `arn:aws:sts::${this.deps.account}:assumed-role/aws:ec2-instance/${DEV_INSTANCE_ID}`,
      userId: `${this.#roleId}:${DEV_INSTANCE_ID}`,
    };
  }

  /** Registers `POST /dev/ec2/` (DescribeInstances) and `/dev/imds/*` (IMDSv2) on `app`. */
  register(app: FastifyInstance): void {
    void app.register(async (scope) => {
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: 16_384 }, (_req, body, done) => done(null, body));
      scope.post(DEV_EC2_PATH, async (request, reply) => {
        const answer = ec2DescribeInstances(
          { method: request.method, url: request.url, headers: request.headers, rawHeaders: request.raw.rawHeaders, body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0) },
          {
            now: this.deps.clock.now(),
            region: this.deps.region,
            lookup: (k) => (k === this.reader.accessKeyId ? { credential: this.reader, account: this.deps.account } : undefined),
            instances: [this.instance],
          },
        );
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      });
      const imds = async (request: { method: string; url: string; headers: Record<string, string | string[] | undefined> }, reply: import('fastify').FastifyReply) => {
        const answer = this.#imds.handle({ method: request.method, url: request.url, headers: request.headers });
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      };
      scope.route({ method: ['GET', 'PUT'], url: `${DEV_IMDS_PATH}/*`, handler: imds });
    });
  }
}

// The embedded default's STS-compatible endpoint: verifies the SigV4
// signature for real against the dev credentials and answers
// GetCallerIdentity. Registered only in dev mode; production never has it.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import { callerIdentityJson, stsErrorJson, verifyStsRequest } from './sts-request-verifier.js';

/** The one identity the dev STS knows. */
export interface DevIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly arn: string;
  readonly account: string;
  readonly userId: string;
  /** Temporary credentials (the dev instance's identity role): the token that must accompany them. */
  readonly sessionToken?: string;
}

export const DEV_STS_PATH = '/dev/sts/';
export const DEV_STS_REGION = 'us-east-1';

/** Registers `POST /dev/sts/` (and without the slash) on `app`. */
export function registerDevSts(app: FastifyInstance, deps: { identity: DevIdentity; others?: (accessKeyId: string) => DevIdentity | undefined; clock: Clock }): void {
  const lookup = (id: string) => (id === deps.identity.accessKeyId ? deps.identity : deps.others?.(id));
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: 4096 }, (_req, body, done) => done(null, body));
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const verdict = verifyStsRequest(
        { method: request.method, url: request.url, headers: request.headers, rawHeaders: request.raw.rawHeaders, body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0) },
        { now: deps.clock.now(), region: DEV_STS_REGION, lookup },
      );
      const caller = verdict.ok ? lookup(verdict.accessKeyId) : undefined;
      if (!verdict.ok || !caller) {
        const refusal = verdict.ok ? { status: 403, code: 'InvalidClientTokenId', message: 'the credentials expired' } : verdict;
        return reply.code(refusal.status).type('application/json').send(stsErrorJson(refusal.code, refusal.message, randomUUID()));
      }
      return reply.type('application/json').send(callerIdentityJson(caller, randomUUID()));
    };
    scope.post('/dev/sts', handler);
    scope.post(DEV_STS_PATH, handler);
    // Every certificate request replays one STS call: at info level that
    // doubled the request log (and its cost, issue 14) with lines that say
    // nothing the sshca request's own lines do not.
  }, { logLevel: 'warn' });
}

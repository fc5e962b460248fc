// POST /v1/certs/user — the issuing pipeline, in protocol order:
// authenticate → decide → build → sign → verify → record → respond.
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../app-deps.js';
import { newTemplate } from '../ca/certificate-template.js';
import { epochSeconds } from '../clock.js';
import { authenticateRequest, recordRefusal } from './request-identity.js';
import { issueRecorded, parseRequestKey } from './issue-certificate.js';
import type { CallerIdentity } from '../identity/caller-identity.js';

interface UserCertificateBody {
  publicKey: string;
  principals?: string[];
  ttlSeconds?: number;
  reason?: string;
  nonce?: string;
}

/** Hard bounds on what may be asked at all; policy decides within them. */
/**
 * A sanity bound on the number only: the policy's own maximum (at most days)
 * refuses anything above it with POLICY_TTL_EXCEEDED in plain units, so
 * `--ttl 8d` is told "at most 12h", never a schema path.
 */
export const MAX_REQUESTABLE_TTL_SECONDS = 366 * 24 * 3600;

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['publicKey'],
  properties: {
    publicKey: { type: 'string', minLength: 1, maxLength: 8192 },
    principals: { type: 'array', minItems: 1, maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 256 } },
    ttlSeconds: { type: 'integer', minimum: 60, maximum: MAX_REQUESTABLE_TTL_SECONDS },
    reason: { type: 'string', minLength: 1, maxLength: 512 },
    // Random per request: SigV4 signatures are deterministic within a second,
    // so without it a repeated login would carry the same (replayed) token.
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
  },
} as const;

export function registerUserCertificateRoute(app: FastifyInstance, deps: RouteDeps): void {
  app.post<{ Body: UserCertificateBody }>('/v1/certs/user', { schema: { body: bodySchema }, config: { access: 'token' } }, async (request, reply) => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      const body = request.body;
      const publicKey = parseRequestKey(body.publicKey);
      const decision = deps.policy.decide(identity, {
        sourceIp: request.ip,
        ...(body.principals ? { principals: body.principals } : {}),
        ...(body.ttlSeconds !== undefined ? { ttlSeconds: body.ttlSeconds } : {}),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
      });
      const template = newTemplate({
        kind: 'user',
        publicKey,
        callerArn: identity.arn,
        principals: decision.principals,
        ttlSeconds: decision.ttlSeconds,
        nowSeconds: epochSeconds(deps.clock),
        criticalOptions: decision.criticalOptions,
        extensions: decision.extensions,
      });
      const response = await issueRecorded(deps, request, {
        ca: deps.ca,
        template,
        identity,
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
        ...(decision.ruleName !== undefined ? { policyRule: decision.ruleName } : {}),
      });
      return reply.code(201).send(response);
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  });
}

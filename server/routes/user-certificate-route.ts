// POST /v1/certs/user — the issuing pipeline, in protocol order:
// authenticate → decide → build → sign → verify → record → respond.
import type { FastifyInstance } from 'fastify';
import { PublicKeyError, fingerprintOf, parsePublicKeyLine, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import type { RouteDeps } from '../app-deps.js';
import { BACKDATE_SECONDS, keyIdFor, randomSerial, type CertificateTemplate } from '../ca/certificate-template.js';
import { epochSeconds } from '../clock.js';
import { RequestError, UnavailableError } from '../errors.js';
import { auditContext, authenticateRequest, recordRefusal } from './request-identity.js';
import type { CallerIdentity } from '../identity/caller-identity.js';

interface UserCertificateBody {
  publicKey: string;
  principals?: string[];
  ttlSeconds?: number;
  reason?: string;
  nonce?: string;
}

/** Hard bounds on what may be asked at all; policy decides within them. */
export const MAX_REQUESTABLE_TTL_SECONDS = 7 * 24 * 3600;

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

function parseUserKey(line: string): SshPublicKey {
  try {
    return parsePublicKeyLine(line);
  } catch (err) {
    if (err instanceof PublicKeyError) {
      throw new RequestError(err.kind === 'unsupported' ? 'REQUEST_KEY_UNSUPPORTED' : 'REQUEST_KEY_INVALID', err.message, { cause: err });
    }
    throw err;
  }
}

export function registerUserCertificateRoute(app: FastifyInstance, deps: RouteDeps): void {
  app.post<{ Body: UserCertificateBody }>('/v1/certs/user', { schema: { body: bodySchema }, config: { access: 'token' } }, async (request, reply) => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      const body = request.body;
      const publicKey = parseUserKey(body.publicKey);
      const decision = deps.policy.decide(identity, {
        sourceIp: request.ip,
        ...(body.principals ? { principals: body.principals } : {}),
        ...(body.ttlSeconds !== undefined ? { ttlSeconds: body.ttlSeconds } : {}),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
      });
      const now = epochSeconds(deps.clock);
      const serial = randomSerial();
      const template: CertificateTemplate = {
        kind: 'user',
        publicKey,
        serial,
        keyId: keyIdFor(identity.arn, serial),
        principals: decision.principals,
        validAfter: now - BACKDATE_SECONDS,
        validBefore: now + decision.ttlSeconds,
        criticalOptions: decision.criticalOptions,
        extensions: decision.extensions,
      };
      const issued = await deps.ca.issue(template);
      try {
        // Rule 13: committed before the response; no record, no certificate.
        await deps.audit.recordIssued({
          ...auditContext(deps, request),
          serial,
          keyId: template.keyId,
          certificateType: 'user',
          principals: template.principals,
          validAfter: template.validAfter,
          validBefore: template.validBefore,
          extensions: Object.keys(template.extensions).sort(),
          criticalOptions: template.criticalOptions,
          callerArn: identity.arn,
          accountId: identity.accountId,
          userId: identity.userId,
          publicKeyFingerprint: fingerprintOf(publicKey.blob),
          certificateFingerprint: issued.fingerprint,
          caFingerprint: issued.caFingerprint,
          ...(body.reason !== undefined ? { reason: body.reason } : {}),
          ...(decision.ruleName !== undefined ? { policyRule: decision.ruleName } : {}),
        });
      } catch (cause) {
        throw new UnavailableError('UNAVAILABLE_STORE', 'the audit store is unavailable; no certificate was issued', { cause, retryAfterSeconds: 5 });
      }
      request.log.info({ serial: serial.toString(), caller: identity.arn, principals: template.principals, rule: decision.ruleName }, 'certificate issued');
      return reply.code(201).send({
        certificate: issued.line,
        serial: serial.toString(),
        keyId: template.keyId,
        principals: template.principals,
        validAfter: new Date(template.validAfter * 1000).toISOString(),
        validBefore: new Date(template.validBefore * 1000).toISOString(),
      });
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  });
}

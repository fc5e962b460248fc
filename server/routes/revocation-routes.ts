// Revocation: admins revoke a certificate (by serial or key id) or a key;
// instances fetch the KRL.
import type { FastifyInstance } from 'fastify';
import { PublicKeyError, fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import type { AppDeps } from '../app.js';
import { epochSeconds } from '../clock.js';
import { RequestError, UnavailableError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { buildKrl } from '../revocation/krl-builder.js';
import { auditContext, authenticateRequest, recordRefusal, requireRole } from './request-identity.js';

interface RevocationBody {
  serial?: string;
  keyId?: string;
  publicKey?: string;
  reason: string;
  nonce?: string;
}

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    serial: { type: 'string', pattern: '^[1-9]\\d{0,19}$' },
    keyId: { type: 'string', minLength: 1, maxLength: 1024 },
    publicKey: { type: 'string', minLength: 1, maxLength: 8192 },
    reason: { type: 'string', minLength: 1, maxLength: 512 },
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
  },
} as const;

export function registerRevocationRoutes(app: FastifyInstance, deps: AppDeps): void {
  const caSigners = () => [deps.userSigner, ...(deps.hostSigner ? [deps.hostSigner] : [])];

  app.post<{ Body: RevocationBody }>('/v1/revocations', { schema: { body: bodySchema } }, async (request, reply) => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      requireRole(deps, identity, 'admin');
      const b = request.body;
      const targets = [b.serial, b.keyId, b.publicKey].filter((x) => x !== undefined);
      if (targets.length !== 1) throw new RequestError('REQUEST_INVALID', 'name exactly one of serial, keyId, publicKey');
      let target: { serial?: string; keyId?: string; publicKeyFingerprint?: string; caFingerprint?: string; validBefore?: number; revokedBy: 'serial' | 'keyId' | 'publicKey' };
      if (b.publicKey !== undefined) {
        try {
          target = { publicKeyFingerprint: fingerprintOf(parsePublicKeyLine(b.publicKey).blob), revokedBy: 'publicKey' };
        } catch (err) {
          if (err instanceof PublicKeyError) throw new RequestError('REQUEST_KEY_INVALID', err.message, { cause: err });
          throw err;
        }
      } else {
        // Only certificates this CA issued can be revoked by serial or key id: a typo must not pass silently.
        const { records } = await deps.audit.query({ kind: 'issued', ...(b.serial ? { serial: b.serial } : { keyId: b.keyId! }) }, { limit: 1 });
        const issued = records[0]?.data as { serial: string; keyId: string; caFingerprint: string; validBefore: number } | undefined;
        if (!issued) throw new RequestError('REQUEST_UNKNOWN_CERTIFICATE', 'no certificate with that serial or key id was issued here', { status: 404 });
        target = { serial: issued.serial, keyId: issued.keyId, caFingerprint: issued.caFingerprint, validBefore: issued.validBefore, revokedBy: b.serial ? 'serial' : 'keyId' };
      }
      try {
        await deps.audit.recordRevocation({ ...auditContext(deps, request), ...target, reason: b.reason, callerArn: identity.arn, accountId: identity.accountId });
      } catch (cause) {
        throw new UnavailableError('UNAVAILABLE_STORE', 'the audit store is unavailable; nothing was revoked', { cause, retryAfterSeconds: 5 });
      }
      const krl = await buildKrl(deps.audit, caSigners(), epochSeconds(deps.clock));
      request.log.info({ caller: identity.arn, ...target }, 'revoked');
      return reply.code(201).send({ revoked: target, krlVersion: krl.version.toString() });
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  });

  app.get('/v1/krl', async (request, reply) => {
    let krl;
    try {
      krl = await buildKrl(deps.audit, caSigners(), epochSeconds(deps.clock));
    } catch (cause) {
      // Instances keep their old KRL on any failure; never serve a partial one.
      throw new UnavailableError('UNAVAILABLE_STORE', 'the revocation list cannot be built now', { cause, retryAfterSeconds: 30 });
    }
    void reply.header('etag', krl.etag).header('cache-control', 'no-cache').header('x-sshca-krl-version', krl.version.toString());
    if (request.headers['if-none-match'] === krl.etag) return reply.code(304).send();
    return reply.type('application/octet-stream').send(krl.bytes);
  });
}

// Revocation: admins revoke a certificate (by serial or key id) or a key,
// and can withdraw a revocation; instances fetch the KRL.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PublicKeyError, fingerprintOf, parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import type { RouteDeps } from '../app-deps.js';
import { publishedCaKeys } from '../ca/published-ca-keys.js';
import { RequestError, UnavailableError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { auditContext, authenticateRequest, recordRefusal, requireRole } from './request-identity.js';

interface RevocationBody {
  serial?: string;
  keyId?: string;
  publicKey?: string;
  reason: string;
  nonce?: string;
}

const REASON = { type: 'string', minLength: 1, maxLength: 512 } as const;
const NONCE = { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } as const;

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    serial: { type: 'string', pattern: '^[1-9]\\d{0,19}$' },
    keyId: { type: 'string', minLength: 1, maxLength: 1024 },
    publicKey: { type: 'string', minLength: 1, maxLength: 8192 },
    reason: REASON,
    nonce: NONCE,
  },
} as const;

const withdrawalSchema = {
  body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: REASON, nonce: NONCE } },
  params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[1-9]\\d{0,14}$' } } },
} as const;

type Target = { serial?: string; keyId?: string; publicKeyFingerprint?: string; caFingerprint?: string; validBefore?: number; revokedBy: 'serial' | 'keyId' | 'publicKey' };

export function registerRevocationRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const krl = deps.krl;

  /** Authenticates an admin and runs `work`; any refusal goes on the record. */
  const asAdmin = async <T>(request: FastifyRequest, work: (identity: CallerIdentity) => Promise<T>): Promise<T> => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      requireRole(deps, identity, 'admin');
      return await work(identity);
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  };
  const stored = async <T>(write: () => Promise<T>, what: string): Promise<T> => {
    try {
      return await write();
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_STORE', `the audit store is unavailable; nothing was ${what}`, { cause, retryAfterSeconds: 5 });
    }
  };

  /** The KRL version after a change here; null if it cannot be built now (the change is recorded all the same). */
  const newVersion = async (): Promise<string | null> => {
    try {
      return (await krl.refresh()).version.toString();
    } catch (err) {
      app.log.error({ err }, 'KRL could not be rebuilt after a change; GET /v1/krl retries');
      return null;
    }
  };

  /** What a revocation names, resolved to the certificate (or key) it revokes. */
  const resolveTarget = async (b: RevocationBody): Promise<Target> => {
    if (b.publicKey !== undefined) {
      let fingerprint: string;
      try {
        fingerprint = fingerprintOf(parsePublicKeyLine(b.publicKey).blob);
      } catch (err) {
        if (err instanceof PublicKeyError) throw new RequestError('REQUEST_KEY_INVALID', err.message, { cause: err });
        throw err;
      }
      // Rule 18: revoking a CA key would lock every instance out at its next
      // KRL refresh, with no way back short of rotating the CA. Never.
      if (publishedCaKeys(deps).has(fingerprint)) throw new RequestError('REQUEST_CA_KEY_NOT_REVOCABLE', 'that is a CA key this server publishes; CA keys are rotated (docs/rotation.md), never revoked', { status: 409 });
      return { publicKeyFingerprint: fingerprint, revokedBy: 'publicKey' };
    }
    // Only certificates this CA issued can be revoked by serial or key id: a typo must not pass silently.
    const { records } = await deps.audit.query({ kind: 'issued', ...(b.serial ? { serial: b.serial } : { keyId: b.keyId! }) }, { limit: 1 });
    const issued = records[0]?.data as { serial: string; keyId: string; caFingerprint: string; validBefore: number } | undefined;
    if (!issued) throw new RequestError('REQUEST_UNKNOWN_CERTIFICATE', 'no certificate with that serial or key id was issued here', { status: 404 });
    return { serial: issued.serial, keyId: issued.keyId, caFingerprint: issued.caFingerprint, validBefore: issued.validBefore, revokedBy: b.serial ? 'serial' : 'keyId' };
  };

  app.post<{ Body: RevocationBody }>('/v1/revocations', { schema: { body: bodySchema }, config: { access: 'token' } }, async (request, reply) =>
    asAdmin(request, async (identity) => {
      const b = request.body;
      if ([b.serial, b.keyId, b.publicKey].filter((x) => x !== undefined).length !== 1) throw new RequestError('REQUEST_INVALID', 'name exactly one of serial, keyId, publicKey');
      const target = await resolveTarget(b);
      const id = await stored(() => deps.audit.recordRevocation({ ...auditContext(deps, request), ...target, reason: b.reason, callerArn: identity.arn, accountId: identity.accountId }), 'revoked');
      const version = await newVersion();
      request.log.info({ caller: identity.arn, id, ...target }, 'revoked');
      return reply.code(201).send({ id: String(id), revoked: target, krlVersion: version });
    }),
  );

  // Rule 18: a revocation is a record, not a deletion; a mistaken one is
  // taken back by another record, and the KRL drops it (its version rises).
  app.post<{ Params: { id: string }; Body: { reason: string; nonce?: string } }>('/v1/revocations/:id/withdrawal', { schema: withdrawalSchema, config: { access: 'token' } }, async (request, reply) =>
    asAdmin(request, async (identity) => {
      const revocationSeq = Number(request.params.id);
      const records = await stored(() => deps.audit.revocationRecords(), 'withdrawn');
      const revocation = records.find((r) => r.kind === 'revoked' && r.seq === revocationSeq);
      if (!revocation) throw new RequestError('REQUEST_UNKNOWN_REVOCATION', `record ${revocationSeq} is not a revocation`, { status: 404 });
      if (records.some((r) => r.kind === 'withdrawn' && (r.data as { revocationSeq?: number }).revocationSeq === revocationSeq)) {
        throw new RequestError('REQUEST_ALREADY_WITHDRAWN', `revocation ${revocationSeq} was already withdrawn`, { status: 409 });
      }
      const id = await stored(() => deps.audit.recordWithdrawal({ ...auditContext(deps, request), revocationSeq, reason: request.body.reason, callerArn: identity.arn, accountId: identity.accountId }), 'withdrawn');
      const version = await newVersion();
      request.log.info({ caller: identity.arn, id, revocationSeq }, 'revocation withdrawn');
      return reply.code(201).send({ id: String(id), withdrawn: String(revocationSeq), krlVersion: version });
    }),
  );

  app.get('/v1/krl', { config: { access: 'public' } }, async (request, reply) => {
    let current;
    try {
      current = await krl.current();
    } catch (cause) {
      // Instances keep their old KRL on any failure; never serve a partial one.
      throw new UnavailableError('UNAVAILABLE_STORE', 'the revocation list cannot be built now', { cause, retryAfterSeconds: 30 });
    }
    void reply.header('etag', current.etag).header('cache-control', 'no-cache').header('x-sshca-krl-version', current.version.toString());
    if (request.headers['if-none-match'] === current.etag) return reply.code(304).send();
    return reply.type('application/octet-stream').send(current.bytes);
  });
}

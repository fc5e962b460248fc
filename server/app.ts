// Builds the Fastify app from injected dependencies; no globals, no
// environment reads (main.ts does that).
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AuditLog } from './audit/audit-log.js';
import type { CheckpointSigner } from './audit/checkpoint-signer.js';
import type { CertificateAuthority } from './ca/certificate-authority.js';
import type { SshPublicKey } from '../protocol/ssh-public-key.js';
import type { Signer } from './ca/signer.js';
import type { Clock } from './clock.js';
import { registerDevSts, type DevIdentity } from './dev/dev-sts.js';
import { AuthnError, SshcaError, UNIFORM_AUTHN_CODE, UNIFORM_AUTHN_MESSAGE } from './errors.js';
import type { Authenticator } from './identity/sts-authenticator.js';
import type { StsEndpointAllowlist } from './identity/sts-endpoints.js';
import type { Policy } from './policy/policy.js';
import { registerAuditRoutes } from './routes/audit-routes.js';
import { registerCaRoutes } from './routes/ca-routes.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { registerRevocationRoutes } from './routes/revocation-routes.js';
import { registerUserCertificateRoute } from './routes/user-certificate-route.js';

/** Everything the service needs, built by main.ts (or a test). */
export interface AppDeps {
  readonly audience: string;
  readonly endpoints: StsEndpointAllowlist;
  readonly authenticator: Authenticator;
  readonly policy: Policy;
  readonly userSigner: Signer;
  /** The user CA key that signs after the next rotation: published now, so instances trust it in time. */
  readonly userCaNext?: SshPublicKey;
  /** User CA keys that no longer sign: published until every certificate they signed has expired. */
  readonly userCaRetired?: readonly SshPublicKey[];
  /** The host CA, when configured: published for known_hosts. */
  readonly hostSigner?: Signer;
  readonly hostCaNext?: SshPublicKey;
  readonly hostCaRetired?: readonly SshPublicKey[];
  readonly ca: CertificateAuthority;
  readonly audit: AuditLog;
  /** Signs audit checkpoints; its public key is published. */
  readonly checkpoints: CheckpointSigner;
  readonly clock: Clock;
  /** Present only in dev mode: enables /dev/sts. */
  readonly devSts?: DevIdentity;
  readonly logger?: FastifyServerOptions['logger'];
}

/** Largest request body on any route (a public key plus a few fields). */
export const BODY_LIMIT_BYTES = 16 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact body bytes, which the identity token is bound to. */
    rawBody?: Buffer;
  }
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => randomUUID(),
    // Strict schemas: no coercion, no silent removal of unknown fields.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    void parseJson(request, (body as Buffer).toString('utf8'), done);
  });

  // The Date header comes from our clock: clients use it to tell a clock skew apart from other 401s.
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('date', deps.clock.now().toUTCString());
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, code, message } = describeError(error);
    if (status >= 500) request.log.error({ err: error, code }, 'request failed');
    else request.log.info({ code, reason: (error as Error).message }, 'request refused');
    if (error instanceof SshcaError && error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
    return reply.code(status).send({ code, message, requestId: request.id });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ code: 'REQUEST_NOT_FOUND', message: 'no such route', requestId: request.id }));

  registerHealthRoutes(app, deps);
  registerCaRoutes(app, deps);
  registerUserCertificateRoute(app, deps);
  registerAuditRoutes(app, deps);
  registerRevocationRoutes(app, deps);
  if (deps.devSts) registerDevSts(app, { identity: deps.devSts, clock: deps.clock });
  return app;
}

/** Maps any error to the public `{ code, message }` and status. */
function describeError(error: unknown): { status: number; code: string; message: string } {
  // Every 401 looks the same: the specific reason is in logs and the audit record.
  if (error instanceof AuthnError) return { status: 401, code: UNIFORM_AUTHN_CODE, message: UNIFORM_AUTHN_MESSAGE };
  if (error instanceof SshcaError) return { status: error.status, code: error.code, message: error.message };
  const e = error as { code?: string; statusCode?: number; validation?: unknown; message?: string };
  if (e.validation) return { status: 400, code: 'REQUEST_INVALID', message: e.message ?? 'request does not match the schema' };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'REQUEST_TOO_LARGE', message: `body exceeds ${BODY_LIMIT_BYTES} bytes` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE', message: 'send application/json' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'REQUEST_MALFORMED_JSON', message: 'body is not valid JSON' };
  }
  if (e.statusCode === 400 && error instanceof SyntaxError) return { status: 400, code: 'REQUEST_MALFORMED_JSON', message: 'body is not valid JSON' };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'REQUEST_INVALID', message: e.message ?? 'bad request' };
  }
  return { status: 500, code: 'INTERNAL_ERROR', message: 'internal error' };
}

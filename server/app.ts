// Builds the Fastify app from injected dependencies; no globals, no
// environment reads (main.ts does that).
import { randomUUID } from 'node:crypto';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { DEFAULT_RATE_LIMITS, RATE_LIMIT_IPV6_PREFIX, type AppDeps, type RouteDeps } from './app-deps.js';
import { RefusalAggregator } from './audit/refusal-aggregator.js';
import { CaLists } from './ca/ca-lists.js';
import { publishedCaKeys } from './ca/published-ca-keys.js';
import { Metrics } from './metrics.js';
import { KrlCache } from './revocation/krl-cache.js';
import { registerDevSts } from './dev/dev-sts.js';
import { AuthnError, RequestError, SshcaError, UNIFORM_AUTHN_CODE, UNIFORM_AUTHN_MESSAGE } from './errors.js';
import { registerAuditRoutes } from './routes/audit-routes.js';
import { registerCaRoutes } from './routes/ca-routes.js';
import { registerHealthRoutes } from './routes/health-routes.js';
import { registerHostCertificateRoute } from './routes/host-certificate-route.js';
import { registerRevocationRoutes } from './routes/revocation-routes.js';
import { registerTrustStateRoute } from './routes/trust-state-route.js';
import { registerUserCertificateRoute } from './routes/user-certificate-route.js';

export type { AppDeps } from './app-deps.js';

/** Largest request body on any route (a public key plus a few fields). */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** How often anonymous refusals are summarised onto the chain by default. */
export const DEFAULT_REFUSAL_SUMMARY_INTERVAL_MS = 60_000;

/**
 * Which limit a route falls under (its `config.access`): `token` routes
 * take an identity token, `public` ones serve the lists instances and
 * clients fetch. Routes without one (health, /dev/sts) are not limited.
 */
export type RouteAccess = 'token' | 'public';

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact body bytes, which the identity token is bound to. */
    rawBody?: Buffer;
    /** Set once the refusal of this request has been recorded or counted. */
    refusalRecorded?: boolean;
    /** The authenticated caller's ARN, once known (for the refusal's log line). */
    callerArn?: string;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyInstance {
    /** Writes the pending anonymous-refusal summary now (it is also written every interval and at close). */
    flushRefusals(): Promise<void>;
  }
}

function accessOf(request: FastifyRequest): RouteAccess | undefined {
  return request.routeOptions.config?.access;
}

/** The refusal metric's `kind`: which part of the service said no. */
function routeKind(request: FastifyRequest): string {
  const url = request.routeOptions.url ?? '';
  if (url === '/v1/certs/user') return 'user';
  if (url === '/v1/certs/host') return 'host';
  if (url.startsWith('/v1/revocations')) return 'revocation';
  if (url.startsWith('/v1/audit')) return 'audit';
  return 'other';
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => randomUUID(),
    // Fastify's own proxy handling: request.ip (rate limits, {{sourceIp}},
    // the audit record) is the right-most address not in the list.
    trustProxy: deps.trustedProxies?.length ? [...deps.trustedProxies] : false,
    // Strict schemas: no coercion, no silent removal of unknown fields.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  const refusals = new RefusalAggregator({ audit: deps.audit, clock: deps.clock, onError: (err) => app.log.error({ err }, 'refusal summary could not be recorded; its counts are kept') });
  refusals.start(deps.refusalSummaryIntervalMs ?? DEFAULT_REFUSAL_SUMMARY_INTERVAL_MS);
  app.addHook('onClose', () => refusals.stop());
  app.decorate('flushRefusals', () => refusals.flush());
  const metrics = deps.metrics ?? new Metrics();
  const krl = new KrlCache({ audit: deps.audit, caKeys: () => publishedCaKeys(deps), clock: deps.clock });
  metrics.watchKrl(async () => {
    const built = await krl.current();
    return { version: built.version, revokedCertificates: built.revokedCertificates, revokedKeys: built.revokedKeys.size };
  });
  const routeDeps: RouteDeps = { ...deps, metrics, refusals, caLists: new CaLists(deps), krl };

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
    // The specific reason (not only the uniform 401), the source (behind a
    // trusted proxy: the caller's address) and the caller when known: what an
    // operator greps for — for anonymous refusals, the only per-request trace.
    const reasonCode = error instanceof SshcaError ? error.code : code;
    const caller = request.callerArn;
    const sourceIp = request.ip;
    if (status >= 500) request.log.error({ err: error, code, reasonCode, caller, sourceIp }, 'request failed');
    else request.log.info({ code, reasonCode, caller, sourceIp, reason: (error as Error).message }, 'request refused');
    metrics.answeredWithError(routeKind(request), reasonCode, status);
    // Refused before any handler could record it (schema, body, rate limit): counted, never a record of its own.
    if (status < 500 && accessOf(request) !== undefined && !request.refusalRecorded) {
      request.refusalRecorded = true;
      refusals.count(code, request.ip);
    }
    if (error instanceof SshcaError && error.retryAfterSeconds !== undefined) void reply.header('retry-after', String(error.retryAfterSeconds));
    return reply.code(status).send({ code, message, requestId: request.id });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ code: 'REQUEST_NOT_FOUND', message: 'no such route', requestId: request.id }));

  // Per-source limits, checked before anything else runs (the plugin's
  // onRequest hook). Sources are keyed by address, IPv6 by /56.
  const limits = deps.rateLimits ?? DEFAULT_RATE_LIMITS;
  const perMinute = (access: RouteAccess | undefined) => (access === 'token' ? limits.authenticatedPerMinute : access === 'public' ? limits.publicPerMinute : 0);
  void app.register(rateLimit, {
    global: true,
    timeWindow: 60_000,
    max: (request) => perMinute(accessOf(request)),
    allowList: (request) => perMinute(accessOf(request)) === 0,
    keyGenerator: (request) => `${accessOf(request) ?? '-'} ${normalizeIP(request.ip, RATE_LIMIT_IPV6_PREFIX)}`,
    errorResponseBuilder: (_request, context) => new RequestError('REQUEST_RATE_LIMITED', `too many requests from this address; retry in ${context.after}`, { status: 429 }),
  });
  // Routes go in a child scope, registered after the limiter, so its route hook sees every one of them.
  void app.register(async (scope) => {
    registerHealthRoutes(scope, deps);
    registerCaRoutes(scope, routeDeps);
    registerTrustStateRoute(scope, routeDeps);
    registerUserCertificateRoute(scope, routeDeps);
    registerHostCertificateRoute(scope, routeDeps);
    registerAuditRoutes(scope, routeDeps);
    registerRevocationRoutes(scope, routeDeps);
    const devInstance = deps.devInstance;
    if (deps.devSts) registerDevSts(scope, { identity: deps.devSts, ...(devInstance ? { others: (id: string) => devInstance.stsIdentity(id) } : {}), clock: deps.clock });
    devInstance?.register(scope);
  });
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

// What every authenticated route does first: authenticate the request's
// token, check a role when one is needed, and put every refusal on the
// audit record.
import type { FastifyRequest } from 'fastify';
import type { AppDeps, RouteDeps } from '../app-deps.js';
import { PolicyError, SshcaError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';

/** All Authorization header values as received (Node keeps only the first). */
function authorizationHeaders(request: FastifyRequest): string[] {
  const raw = request.raw.rawHeaders;
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'authorization') values.push(raw[i + 1]!);
  return values;
}

/** Authenticates the request; the token must be bound to this method, URL and body. */
export function authenticateRequest(deps: AppDeps, request: FastifyRequest): Promise<CallerIdentity> {
  return deps.authenticator.authenticate({
    authorization: authorizationHeaders(request),
    method: request.method,
    pathAndQuery: request.url,
    body: request.rawBody ?? Buffer.alloc(0),
  });
}

/** Refuses (403 POLICY_ROLE_REQUIRED) unless policy gives the identity `role`. */
export function requireRole(deps: AppDeps, identity: CallerIdentity, role: 'admin' | 'auditor'): void {
  if (!deps.policy.rolesFor(identity).includes(role)) throw new PolicyError('POLICY_ROLE_REQUIRED', `this needs the ${role} role`);
}

/** What every audit record says about the request it came from. */
export function auditContext(deps: AppDeps, request: FastifyRequest): { requestId: string; at: Date; sourceIp: string; userAgent?: string } {
  const userAgent = request.headers['user-agent']?.slice(0, 256);
  return { requestId: request.id, at: deps.clock.now(), sourceIp: request.ip, ...(userAgent ? { userAgent } : {}) };
}

/**
 * Puts a refusal on the record. An authenticated caller's refusal is a
 * record of its own; one that never authenticated is only counted, and goes
 * on the chain in the next summary (rule 16): otherwise anyone could grow
 * the chain by one signed, fsync'd record per request. Best effort: a
 * refusal that cannot be recorded is still a refusal (and is logged).
 */
export async function recordRefusal(deps: RouteDeps, request: FastifyRequest, err: unknown, identity: CallerIdentity | undefined): Promise<void> {
  const code = err instanceof SshcaError ? err.code : 'INTERNAL_ERROR';
  request.refusalRecorded = true;
  if (!identity) {
    deps.refusals.count(code, request.ip);
    return;
  }
  request.callerArn = identity.arn;
  try {
    await deps.metrics.auditAppend(() => deps.audit.recordRefusal({
      ...auditContext(deps, request),
      code,
      callerArn: identity.arn,
      accountId: identity.accountId,
    }));
  } catch (recordErr) {
    request.log.error({ err: recordErr, code }, 'refusal could not be recorded');
  }
}

// Liveness and readiness.
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { UnavailableError } from '../errors.js';

export function registerHealthRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'userSigner' | 'hostSigner' | 'audit'>): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready only when a certificate could be issued now: signer and store both answer.
  app.get('/readyz', async () => {
    for (const signer of [deps.userSigner, deps.hostSigner]) {
      try {
        await signer?.ready();
      } catch (cause) {
        // A KMS signer says why (disabled, access denied); keep its code.
        if (cause instanceof UnavailableError) throw cause;
        throw new UnavailableError('UNAVAILABLE_SIGNER', 'the CA signer is not ready', { cause });
      }
    }
    try {
      await deps.audit.ready();
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_STORE', 'the audit store is not writable', { cause });
    }
    return { status: 'ready' };
  });
}

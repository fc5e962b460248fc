// Public CA information: what clients need to log in and hosts need to trust.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { toOpenSshLine } from '../../protocol/ssh-public-key.js';
import type { AppDeps } from '../app.js';

export function registerCaRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'userSigner' | 'hostSigner' | 'audience' | 'endpoints'>): void {
  const userCaLines = (): string[] => [toOpenSshLine(deps.userSigner.publicKey(), 'sshca-user-ca')];
  const hostCaLines = (): string[] => (deps.hostSigner ? [toOpenSshLine(deps.hostSigner.publicKey(), 'sshca-host-ca')] : []);

  app.get('/v1/ca', async () => ({
    userCaKeys: userCaLines(),
    hostCaKeys: hostCaLines(),
    audience: deps.audience,
    stsEndpoints: deps.endpoints.list().map((e) => e.url),
  }));

  for (const [path, lines] of [['/v1/ca/user.pub', userCaLines], ['/v1/ca/host.pub', hostCaLines]] as const) {
    app.get(path, async (request, reply) => {
      const keys = lines();
      const body = keys.length ? `${keys.join('\n')}\n` : '';
      const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
      void reply.header('etag', etag).header('cache-control', 'no-cache');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('text/plain; charset=utf-8').send(body);
    });
  }
}

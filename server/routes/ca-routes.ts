// Public CA information: what clients need to log in and hosts need to trust.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import type { CaLists } from '../ca/ca-lists.js';
import { CA_LIST_NAMESPACE, signSshsig } from '../ca/sshsig.js';
import { RequestError } from '../errors.js';

export function registerCaRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'userSigner' | 'hostSigner' | 'audience' | 'endpoints'> & { readonly caLists: CaLists }): void {
  app.get('/v1/ca', { config: { access: 'public' } }, async () => ({
    userCaKeys: await deps.caLists.keys('user'),
    hostCaKeys: await deps.caLists.keys('host'),
    audience: deps.audience(),
    stsEndpoints: deps.endpoints.list().map((e) => e.url),
  }));

  // One signature per distinct list: signing goes through the CA key (KMS), so it is not repeated per request.
  const signatures = new Map<string, Promise<string>>();
  const lists = [
    ['/v1/ca/user.pub', 'user', () => deps.userSigner],
    ['/v1/ca/host.pub', 'host', () => deps.hostSigner],
  ] as const;
  for (const [path, kind, signer] of lists) {
    app.get(path, { config: { access: 'public' } }, async (request, reply) => {
      const text = await deps.caLists.text(kind);
      const etag = `"${createHash('sha256').update(text).digest('base64url')}"`;
      void reply.header('etag', etag).header('cache-control', 'no-cache');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('text/plain; charset=utf-8').send(text);
    });
    // The list signed by the CA key that signs now, which instances trusted before this list existed.
    app.get(`${path}.sig`, { config: { access: 'public' } }, async (_request, reply) => {
      const s = signer();
      const text = await deps.caLists.text(kind);
      if (!s || text === '') throw new RequestError('REQUEST_NOT_FOUND', 'no such CA list', { status: 404 });
      const key = `${path}\n${text}`;
      let sig = signatures.get(key);
      if (!sig) {
        sig = signSshsig(s, CA_LIST_NAMESPACE, Buffer.from(text));
        signatures.set(key, sig);
        sig.catch(() => signatures.delete(key));
      }
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(await sig);
    });
  }
}

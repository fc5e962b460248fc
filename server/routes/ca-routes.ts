// Public CA information: what clients need to log in and hosts need to trust.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { fingerprintOf, toOpenSshLine, type SshPublicKey } from '../../protocol/ssh-public-key.js';
import { epochSeconds } from '../clock.js';
import type { AppDeps } from '../app-deps.js';
import type { Signer } from '../ca/signer.js';
import { CA_LIST_NAMESPACE, signSshsig } from '../ca/sshsig.js';
import { RequestError } from '../errors.js';

/** How long a retired key's latest certificate expiry is reused before the store is asked again. */
const RETIRED_EXPIRY_CACHE_MS = 60_000;

export function registerCaRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'userSigner' | 'userCaNext' | 'userCaRetired' | 'hostSigner' | 'hostCaNext' | 'hostCaRetired' | 'audience' | 'endpoints' | 'audit' | 'clock'>): void {
  // Rule 16: public routes must not cost a store scan per request. A retired
  // key's latest expiry only changes while some replica still signs with it
  // (a rolling rotation), so asking once a minute is enough.
  const expiries = new Map<string, { value: number | undefined; at: number }>();
  const latestExpiry = async (fingerprint: string): Promise<number | undefined> => {
    const now = deps.clock.now().getTime();
    const hit = expiries.get(fingerprint);
    if (hit && now - hit.at < RETIRED_EXPIRY_CACHE_MS) return hit.value;
    const value = await deps.audit.latestExpiry(fingerprint);
    expiries.set(fingerprint, { value, at: now });
    return value;
  };
  /**
   * Active first, then next (so instances trust it before it signs), then
   * retired keys while any certificate they signed can still be valid.
   */
  const caLines = async (kind: 'user' | 'host', active: Signer | undefined, next: SshPublicKey | undefined, retiredKeys: readonly SshPublicKey[] | undefined): Promise<string[]> => {
    if (!active) return [];
    const now = epochSeconds(deps.clock);
    const retired: string[] = [];
    for (const key of retiredKeys ?? []) {
      const expiry = await latestExpiry(fingerprintOf(key.blob));
      if (expiry !== undefined && expiry > now) retired.push(toOpenSshLine(key, `sshca-${kind}-ca-retired`));
    }
    return [toOpenSshLine(active.publicKey(), `sshca-${kind}-ca`), ...(next ? [toOpenSshLine(next, `sshca-${kind}-ca-next`)] : []), ...retired];
  };
  const userCaLines = () => caLines('user', deps.userSigner, deps.userCaNext, deps.userCaRetired);
  const hostCaLines = () => caLines('host', deps.hostSigner, deps.hostCaNext, deps.hostCaRetired);

  app.get('/v1/ca', { config: { access: 'public' } }, async () => ({
    userCaKeys: await userCaLines(),
    hostCaKeys: await hostCaLines(),
    audience: deps.audience(),
    stsEndpoints: deps.endpoints.list().map((e) => e.url),
  }));

  // One signature per distinct list: signing goes through the CA key (KMS), so it is not repeated per request.
  const signatures = new Map<string, Promise<string>>();
  const lists = [
    ['/v1/ca/user.pub', userCaLines, () => deps.userSigner],
    ['/v1/ca/host.pub', hostCaLines, () => deps.hostSigner],
  ] as const;
  for (const [path, lines, signer] of lists) {
    const body = async (): Promise<string> => {
      const keys = await lines();
      return keys.length ? `${keys.join('\n')}\n` : '';
    };
    app.get(path, { config: { access: 'public' } }, async (request, reply) => {
      const text = await body();
      const etag = `"${createHash('sha256').update(text).digest('base64url')}"`;
      void reply.header('etag', etag).header('cache-control', 'no-cache');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type('text/plain; charset=utf-8').send(text);
    });
    // The list signed by the CA key that signs now, which instances trusted before this list existed.
    app.get(`${path}.sig`, { config: { access: 'public' } }, async (_request, reply) => {
      const s = signer();
      const text = await body();
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

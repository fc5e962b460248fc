// GET /v1/trust-state: one signed statement of what an instance should trust
// now — the CA lists and the KRL, by hash, with versions that only move
// forward (rule 19). Instances refuse a statement older than the newest they
// accepted, so an old but genuine KRL or CA list replayed by a relay changes
// nothing.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../app-deps.js';
import { signSshsig } from '../ca/sshsig.js';
import { epochSeconds } from '../clock.js';
import { UnavailableError } from '../errors.js';

/** The namespace of the statement's SSHSIG: never valid as a CA-list signature, and vice versa. */
export const TRUST_STATE_NAMESPACE = 'sshca-trust-state';

/**
 * `issued-at` moves in whole minutes, so a replica signs (through KMS) at
 * most once a minute plus once per KRL or CA-list change.
 */
const ISSUED_AT_STEP_SECONDS = 60;

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The statement's text: `key value` lines, fixed order, so a shell script can read it with `awk`. */
export function trustStatement(fields: { issuedAt: number; userCaSha256: string; hostCaSha256: string; krlVersion: bigint; krlSha256: string }): string {
  return [
    'sshca-trust-state 1',
    `issued-at ${fields.issuedAt}`,
    `user-ca-sha256 ${fields.userCaSha256}`,
    `host-ca-sha256 ${fields.hostCaSha256}`,
    `krl-version ${fields.krlVersion}`,
    `krl-sha256 ${fields.krlSha256}`,
    '',
  ].join('\n');
}

export function registerTrustStateRoute(app: FastifyInstance, deps: RouteDeps): void {
  // Only the newest statement's signature is kept: statements never repeat once time moves on.
  let last: { text: string; signature: Promise<string> } | undefined;

  app.get('/v1/trust-state', { config: { access: 'public' } }, async (_request, reply) => {
    let text: string;
    try {
      const [userCa, hostCa, krl] = await Promise.all([deps.caLists.text('user'), deps.caLists.text('host'), deps.krl.current()]);
      const now = epochSeconds(deps.clock);
      text = trustStatement({
        issuedAt: now - (now % ISSUED_AT_STEP_SECONDS),
        userCaSha256: sha256(userCa),
        hostCaSha256: sha256(hostCa),
        krlVersion: krl.version,
        // Hashed once per KRL build, not per request (rule 16).
        krlSha256: krl.sha256,
      });
    } catch (cause) {
      throw new UnavailableError('UNAVAILABLE_STORE', 'the trust state cannot be built now', { cause, retryAfterSeconds: 30 });
    }
    let entry = last;
    if (entry?.text !== text) {
      const signature = signSshsig(deps.userSigner, TRUST_STATE_NAMESPACE, Buffer.from(text));
      entry = last = { text, signature };
      signature.catch(() => {
        if (last?.signature === signature) last = undefined;
      });
    }
    // Statement and signature in one answer, so they always belong together.
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(`${text}${await entry.signature}`);
  });
}

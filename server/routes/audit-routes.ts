// The audit record for auditors: queries with filters and a cursor, a full
// export (NDJSON, ending in a signed head), and the public checkpoint key.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { GENESIS_HASH, type ExportLine } from '../../protocol/audit-chain.js';
import type { RouteDeps } from '../app-deps.js';
import { RECORD_KINDS, type AuditFilter, type RecordKind } from '../audit/audit-log.js';
import { RequestError } from '../errors.js';
import type { CallerIdentity } from '../identity/caller-identity.js';
import { authenticateRequest, recordRefusal, requireRole } from './request-identity.js';

interface AuditQuery {
  kind?: RecordKind;
  principal?: string;
  caller?: string;
  account?: string;
  serial?: string;
  fingerprint?: string;
  since?: string;
  until?: string;
  before?: string;
  limit?: string;
}

/** Makes each token unique (SigV4 dates have one-second resolution); otherwise unused. */
const NONCE = { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' } as const;

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: [...RECORD_KINDS] },
    principal: { type: 'string', maxLength: 64 },
    caller: { type: 'string', maxLength: 2048 },
    account: { type: 'string', pattern: '^\\d{12}$' },
    serial: { type: 'string', pattern: '^\\d{1,20}$' },
    fingerprint: { type: 'string', maxLength: 128 },
    since: { type: 'string', maxLength: 40 },
    until: { type: 'string', maxLength: 40 },
    before: { type: 'string', pattern: '^\\d{1,15}$' },
    limit: { type: 'string', pattern: '^\\d{1,3}$' },
    nonce: NONCE,
  },
} as const;

function date(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new RequestError('REQUEST_INVALID', `${name} is not an ISO-8601 time`);
  return d;
}

export function registerAuditRoutes(app: FastifyInstance, deps: RouteDeps): void {
  /** Authenticates an auditor; refusals go on the record like any other. */
  const auditor = async (request: Parameters<typeof authenticateRequest>[1]): Promise<CallerIdentity> => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      requireRole(deps, identity, 'auditor');
      return identity;
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  };

  app.get('/v1/audit/checkpoint-key', { config: { access: 'public' } }, async () => deps.checkpoints.jwk);

  app.get<{ Querystring: AuditQuery }>('/v1/audit', { schema: { querystring: querySchema }, config: { access: 'token' } }, async (request) => {
    await auditor(request);
    const q = request.query;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (limit < 1 || limit > 500) throw new RequestError('REQUEST_INVALID', 'limit must be 1–500');
    const since = date(q.since, 'since');
    const until = date(q.until, 'until');
    const filter: AuditFilter = {
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.principal ? { principal: q.principal } : {}),
      ...(q.caller ? { caller: q.caller } : {}),
      ...(q.account ? { account: q.account } : {}),
      ...(q.serial ? { serial: q.serial } : {}),
      ...(q.fingerprint ? { fingerprint: q.fingerprint } : {}),
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
    };
    return deps.audit.query(filter, { limit, ...(q.before !== undefined ? { before: Number(q.before) } : {}) });
  });

  app.get('/v1/audit/export', { schema: { querystring: { type: 'object', additionalProperties: false, properties: { nonce: NONCE } } }, config: { access: 'token' } }, async (request, reply) => {
    await auditor(request);
    const { audit, checkpoints, clock } = deps;
    async function* lines(): AsyncIterable<string> {
      let last = { seq: 0, hash: GENESIS_HASH };
      for await (const record of audit.exportRecords()) {
        last = record;
        yield `${JSON.stringify({ type: 'record', ...record } satisfies ExportLine)}\n`;
      }
      const at = clock.now().toISOString();
      yield `${JSON.stringify({ type: 'head', seq: last.seq, hash: last.hash, at, checkpoint: await checkpoints.signHead(last.seq, last.hash, at) } satisfies ExportLine)}\n`;
    }
    return reply.type('application/x-ndjson').send(Readable.from(lines()));
  });
}

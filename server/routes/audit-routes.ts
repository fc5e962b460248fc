// The audit record for auditors: queries with filters and a cursor, a full
// export (NDJSON, ending in a signed head), and the public checkpoint key.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { GENESIS_HASH, type ExportLine } from '../../protocol/audit-chain.js';
import type { AuditAnchors, RouteDeps } from '../app-deps.js';
import type { ActiveAnswer, CallerMatch } from '../../protocol/audit-api.js';
import { activeCertificates } from '../audit/active-certificates.js';
import { RECORD_KINDS, type AuditFilter, type AuditLog, type RecordKind } from '../audit/audit-log.js';
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

/** At most this many certificates in one answer of /v1/audit/active. */
const ACTIVE_LIMIT_MAX = 5000;
/** A short name matches at most this many distinct callers. */
const CALLERS_MAX = 50;
/** The chart's window: at most this long. */
const STATS_SPAN_MAX_MS = 31 * 24 * 3600_000;

/** Names as IAM writes them (users, session names, SSO user names). */
const SHORT_NAME = /^[\w+=,.@-]{1,128}$/;

/**
 * `caller` is an ARN (matched exactly) or a short name: the last segment of
 * the caller's ARN, matched whole — an IAM user name, a role session name or
 * an SSO user name. Resolved to the ARNs it matched, so the answer can say so.
 */
async function resolveCaller(audit: AuditLog, caller: string): Promise<CallerMatch> {
  if (caller.startsWith('arn:')) return { query: caller, by: 'arn', matched: [caller] };
  if (!SHORT_NAME.test(caller)) throw new RequestError('REQUEST_INVALID', 'caller is an ARN or a name of [A-Za-z0-9_+=,.@-]');
  return { query: caller, by: 'name', matched: await audit.callersNamed(caller, CALLERS_MAX) };
}

function date(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new RequestError('REQUEST_INVALID', `${name} is not an ISO-8601 time`);
  return d;
}

export function registerAuditRoutes(app: FastifyInstance, deps: RouteDeps): void {
  /** Authenticates a caller with `role`; refusals go on the record like any other. */
  const withRole = async (request: Parameters<typeof authenticateRequest>[1], role: 'auditor' | 'admin'): Promise<CallerIdentity> => {
    let identity: CallerIdentity | undefined;
    try {
      identity = await authenticateRequest(deps, request);
      requireRole(deps, identity, role);
      return identity;
    } catch (err) {
      await recordRefusal(deps, request, err, identity);
      throw err;
    }
  };
  const auditor = (request: Parameters<typeof authenticateRequest>[1]) => withRole(request, 'auditor');
  const anchorsOf = (): AuditAnchors => {
    if (!deps.anchors) throw new RequestError('REQUEST_NO_ANCHOR_STORE', 'this server anchors its chain nowhere (SSHCA_AUDIT_ANCHOR)', { status: 404 });
    return deps.anchors;
  };

  app.get('/v1/audit/checkpoint-key', { config: { access: 'public' } }, async () => deps.checkpoints.jwk);

  app.get<{ Querystring: AuditQuery }>('/v1/audit', { schema: { querystring: querySchema }, config: { access: 'token' } }, async (request) => {
    await auditor(request);
    const q = request.query;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (limit < 1 || limit > 500) throw new RequestError('REQUEST_INVALID', 'limit must be 1–500');
    const since = date(q.since, 'since');
    const until = date(q.until, 'until');
    const caller = q.caller ? await resolveCaller(deps.audit, q.caller) : undefined;
    const filter: AuditFilter = {
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.principal ? { principal: q.principal } : {}),
      ...(caller ? { callers: caller.matched } : {}),
      ...(q.account ? { account: q.account } : {}),
      ...(q.serial ? { serial: q.serial } : {}),
      ...(q.fingerprint ? { fingerprint: q.fingerprint } : {}),
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
    };
    const page = await deps.audit.query(filter, { limit, ...(q.before !== undefined ? { before: Number(q.before) } : {}) });
    return { ...page, ...(caller ? { caller } : {}) };
  });

  const activeSchema = {
    type: 'object',
    additionalProperties: false,
    properties: { principal: querySchema.properties.principal, caller: querySchema.properties.caller, limit: { type: 'string', pattern: '^\\d{1,4}$' }, nonce: NONCE },
  } as const;
  app.get<{ Querystring: { principal?: string; caller?: string; limit?: string } }>('/v1/audit/active', { schema: { querystring: activeSchema }, config: { access: 'token' } }, async (request) => {
    await auditor(request);
    const q = request.query;
    const limit = q.limit === undefined ? 1000 : Number(q.limit);
    if (limit < 1 || limit > ACTIVE_LIMIT_MAX) throw new RequestError('REQUEST_INVALID', `limit must be 1–${ACTIVE_LIMIT_MAX}`);
    const caller = q.caller ? await resolveCaller(deps.audit, q.caller) : undefined;
    const nowSeconds = Math.floor(deps.clock.now().getTime() / 1000);
    const [issued, revocations] = await Promise.all([
      deps.audit.activeIssued(nowSeconds, { ...(q.principal ? { principal: q.principal } : {}), ...(caller ? { callers: caller.matched } : {}) }, limit + 1),
      deps.audit.revocationRecords(),
    ]);
    return { certificates: activeCertificates(issued.slice(0, limit), revocations), truncated: issued.length > limit, ...(caller ? { caller } : {}) } satisfies ActiveAnswer;
  });

  const statsSchema = { type: 'object', additionalProperties: false, properties: { since: querySchema.properties.since, until: querySchema.properties.until, nonce: NONCE } } as const;
  app.get<{ Querystring: { since?: string; until?: string } }>('/v1/audit/stats', { schema: { querystring: statsSchema }, config: { access: 'token' } }, async (request) => {
    await auditor(request);
    const until = date(request.query.until, 'until') ?? deps.clock.now();
    const since = date(request.query.since, 'since') ?? new Date(until.getTime() - 24 * 3600_000);
    if (since >= until || until.getTime() - since.getTime() > STATS_SPAN_MAX_MS) throw new RequestError('REQUEST_INVALID', 'since must be before until, at most 31 days apart');
    return { buckets: await deps.audit.hourlyCounts(since, until) };
  });

  app.get<{ Querystring: { since?: string } }>('/v1/audit/export', { schema: { querystring: { type: 'object', additionalProperties: false, properties: { since: querySchema.properties.since, nonce: NONCE } } }, config: { access: 'token' } }, async (request, reply) => {
    await auditor(request);
    const { audit, checkpoints, clock } = deps;
    const since = date(request.query.since, 'since');
    // A partial export opens with the position its first record links to.
    let start: Extract<ExportLine, { type: 'start' }> | undefined;
    if (since) {
      const head = await audit.head();
      const seq = (await audit.firstSeqSince(since)) ?? (head?.seq ?? 0) + 1;
      const prevHash = seq === 1 ? GENESIS_HASH : await audit.hashAt(seq - 1);
      if (prevHash === undefined) throw new RequestError('REQUEST_INVALID', `record ${seq - 1} is not on the record`);
      start = { type: 'start', seq, prevHash, since: since.toISOString() };
    }
    async function* lines(): AsyncIterable<string> {
      let last = start ? { seq: start.seq - 1, hash: start.prevHash } : { seq: 0, hash: GENESIS_HASH };
      if (start) yield `${JSON.stringify(start)}\n`;
      for await (const record of audit.exportRecords(start?.seq)) {
        last = record;
        yield `${JSON.stringify({ type: 'record', ...record } satisfies ExportLine)}\n`;
      }
      const at = clock.now().toISOString();
      yield `${JSON.stringify({ type: 'head', seq: last.seq, hash: last.hash, at, checkpoint: await checkpoints.signHead(last.seq, last.hash, at) } satisfies ExportLine)}\n`;
    }
    return reply.type('application/x-ndjson').send(Readable.from(lines()));
  });

  // The chain head, published now (admin): what the periodic anchoring does, on demand.
  app.post('/v1/audit/anchor', { schema: { body: { type: ['object', 'null'], additionalProperties: false, properties: { nonce: NONCE } } }, config: { access: 'token' } }, async (request) => {
    const identity = await withRole(request, 'admin');
    const anchors = anchorsOf();
    const result = await anchors.anchorNow();
    request.log.info({ caller: identity.arn, outcome: result.outcome, ...(result.outcome !== 'empty' ? { seq: result.anchor.seq } : {}) }, 'audit anchor requested');
    return { location: anchors.location, outcome: result.outcome, ...(result.outcome !== 'empty' ? { anchor: result.anchor } : {}) };
  });

  app.get<{ Querystring: { limit?: string } }>('/v1/audit/anchors', { schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^\\d{1,3}$' }, nonce: NONCE } } }, config: { access: 'token' } }, async (request) => {
    await auditor(request);
    const anchors = anchorsOf();
    const limit = request.query.limit === undefined ? 10 : Number(request.query.limit);
    if (limit < 1 || limit > 100) throw new RequestError('REQUEST_INVALID', 'limit must be 1–100');
    return { location: anchors.location, anchors: await anchors.newest(limit) };
  });
}

// Issue 10 item 6: clock skew between replicas cannot resurrect a token.
// Replica A (a fast clock) purges the replay cache; replica B (a clock four
// minutes behind) still judges the old token fresh — the shared cache must
// still remember it.
import { join } from 'node:path';
import t from 'tap';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { PostgresAuditLog } from '../../../server/audit/postgres-audit-log.js';
import { SqliteAuditLog } from '../../../server/audit/sqlite-audit-log.js';
import { StsAuthenticator } from '../../../server/identity/sts-authenticator.js';
import { StsEndpointAllowlist } from '../../../server/identity/sts-endpoints.js';
import { undiciStsTransport } from '../../../server/identity/sts-transport.js';
import { REPLAY_PURGE_MARGIN_MS, type ReplayCache } from '../../../server/identity/replay-cache.js';
import { ShiftableClock } from '../../fixtures/dev-server.js';
import { needsPostgres, startPostgres } from '../../fixtures/postgres.js';
import { ACCOUNT, FIXTURE_REGION, startStsFixture } from '../../fixtures/sts-fixture.js';
import { AUDIENCE, craftInput } from '../../fixtures/sts-verifier-harness.js';

const MINUTE = 60_000;

t.test('two replicas with skewed clocks on one PostgreSQL still refuse a replay', needsPostgres, async (t) => {
  const pg = await startPostgres(t);
  const dir = t.testdir();
  const checkpoints = CheckpointSigner.openOrCreate(join(dir, 'cp.pem'));
  const sts = await startStsFixture(t);
  const transport = undiciStsTransport({ connectTimeoutMs: 1000, totalTimeoutMs: 3000 });
  t.teardown(() => transport.close());
  const replica = async (clock: ShiftableClock) => {
    const store = await PostgresAuditLog.open(pg.url, checkpoints);
    t.teardown(() => store.close());
    return new StsAuthenticator({
      audience: () => AUDIENCE,
      endpoints: new StsEndpointAllowlist([{ url: sts.url, region: FIXTURE_REGION, partition: 'aws' }]),
      accounts: new Set([ACCOUNT]),
      identityRules: { trustedSessionRoles: new Set(), allowFederatedUsers: false },
      replayCache: store,
      transport,
      clock,
    });
  };
  const fast = new ShiftableClock();
  const slow = new ShiftableClock();
  slow.offsetMs = -4 * MINUTE;
  const a = await replica(fast);
  const b = await replica(slow);

  // Signed 4.5 minutes ago (real time): fresh for A, and for B (whose clock says 0.5 minutes).
  const stolen = await craftInput(sts, sts.principals.user, { signingDate: new Date(Date.now() - 4.5 * MINUTE) });
  t.equal((await a.authenticate(stolen)).accountId, ACCOUNT, 'the token is used once, at A');

  // A's clock runs well ahead (as far as STS still accepts a signature from
  // it); its next claim must succeed, so a purge by A's clock would happen.
  fast.offsetMs = 10 * MINUTE;
  const later = await craftInput(sts, sts.principals.user, { signingDate: fast.now() });
  t.equal((await a.authenticate(later)).accountId, ACCOUNT, "A's own claim (the one that purges) succeeds");

  // The stolen token, replayed at B, which still finds it fresh.
  await t.rejects(b.authenticate(stolen), { code: 'AUTHN_REPLAY' }, 'B refuses the replay');
});

t.test('SQLite keeps spent signatures a margin past their expiry', async (t) => {
  const dir = t.testdir();
  const store: ReplayCache & { close(): Promise<void> } = new SqliteAuditLog(join(dir, 'a.db'), CheckpointSigner.openOrCreate(join(dir, 'cp.pem')));
  t.teardown(() => store.close());
  const now = Date.now();
  t.equal(await store.claim('sig-1', new Date(now), new Date(now)), true);
  // Another claim purges; the first signature expired a while ago, but within the margin.
  t.equal(await store.claim('sig-2', new Date(now + MINUTE), new Date(now + REPLAY_PURGE_MARGIN_MS - MINUTE)), true);
  t.equal(await store.claim('sig-1', new Date(now), new Date(now + REPLAY_PURGE_MARGIN_MS - MINUTE)), false, 'still remembered within the margin');
  t.equal(await store.claim('sig-3', new Date(now + 2 * REPLAY_PURGE_MARGIN_MS), new Date(now + REPLAY_PURGE_MARGIN_MS + MINUTE)), true);
  t.equal(await store.claim('sig-1', new Date(now), new Date(now + REPLAY_PURGE_MARGIN_MS + MINUTE)), true, 'forgotten only after the margin');
});

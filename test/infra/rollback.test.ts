// Rule 19 / issue 11: what an instance trusts only moves forward. A relay
// that replays older but genuine answers of the real server — the KRL from
// before a revocation, the CA list from before a rotation — changes nothing
// on the instance, and the refresh says so with a non-zero exit.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { fingerprintOf } from '../../protocol/ssh-public-key.js';
import { CheckpointSigner } from '../../server/audit/checkpoint-signer.js';
import { SqliteAuditLog } from '../../server/audit/sqlite-audit-log.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { KRL_RECHECK_MS } from '../../server/revocation/krl-cache.js';
import { ShiftableClock } from '../fixtures/dev-server.js';
import { bootstrap, prepareInstanceRoot, run } from '../fixtures/instance.js';
import { needsOpenSsh } from '../fixtures/openssh.js';
import { startRelay, type Snapshot } from '../fixtures/relay.js';
import { startHarness } from '../fixtures/sts-verifier-harness.js';
import { listenOnLoopback, startTestApp } from '../fixtures/test-app.js';

/** Every file under the instance's etc/ssh, with its bytes. */
function snapshotFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

/** What both stories share: the STS fixture, one audit store for every server, CA keys by name. */
async function caSetup(t: Test) {
  const dir = t.testdir();
  const harness = await startHarness(t);
  const audit = new SqliteAuditLog(join(dir, 'audit.db'), CheckpointSigner.openOrCreate(join(dir, 'cp.pem')));
  t.teardown(() => audit.close());
  return { harness, audit, key: (name: string) => LocalSigner.openOrCreate(join(dir, `${name}.pem`), 'ed25519') };
}

t.test('replayed older KRL and CA list answers change nothing', needsOpenSsh, async (t) => {
  const { harness, audit, key } = await caSetup(t);
  const oldKey = key('old');
  const nextKey = key('next');
  // The server's clock starts 12 minutes back, so the story's statements are all recent by the instance's clock.
  const clock = new ShiftableClock();
  clock.offsetMs = -12 * 60_000;
  const relay = await startRelay(t);

  // Before the rotation: only the old key. The instance installs through the relay, which records.
  const before = await startTestApp(t, harness, oldKey, { audit, clock });
  relay.target = await listenOnLoopback(before.app);
  const instance = await prepareInstanceRoot(t);
  const installed = await bootstrap(['--server', relay.url, '--ca-fingerprint', fingerprintOf(oldKey.publicKey().blob), '--allow', 'ops=ops', '--root', instance.root]);
  t.equal(installed.code, 0, installed.stderr);
  const beforeRotation: Snapshot = new Map(relay.recorded);

  // The next key is published ten minutes later; the instance follows.
  clock.offsetMs += 10 * 60_000;
  const rotating = await startTestApp(t, harness, oldKey, { audit, clock, userCaNext: nextKey.publicKey() });
  relay.target = await listenOnLoopback(rotating.app);
  t.equal((await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root])).code, 0);
  const trusted = () => readFileSync(join(instance.etc, 'sshca', 'trusted_user_ca_keys'), 'utf8');
  t.equal(trusted().trim().split('\n').length, 2, 'the instance trusts the next key too');
  const beforeRevocation: Snapshot = new Map(relay.recorded);

  // A revocation; the instance takes the new KRL.
  await audit.recordRevocation({ requestId: 'r', at: clock.now(), publicKeyFingerprint: `SHA256:${Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '')}`, revokedBy: 'publicKey', reason: 'leaked', callerArn: 'arn:aws:iam::111111111111:user/admin', accountId: '111111111111', sourceIp: '127.0.0.1' });
  clock.offsetMs += KRL_RECHECK_MS;
  t.equal((await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root])).code, 0);
  const current = snapshotFiles(instance.etc);

  // The relay now replays the answers from before the revocation: refused, nothing changes.
  relay.replay = beforeRevocation;
  const krlRollback = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(krlRollback.code, 1, 'an older KRL is refused');
  t.match(krlRollback.stderr, /\[STATE_ROLLBACK\]/, "the refusal names its code");
  t.same(snapshotFiles(instance.etc), current, 'every file as it was');

  // And the answers from before the rotation: refused, the instance keeps trusting the next key.
  relay.replay = beforeRotation;
  const listRollback = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(listRollback.code, 1, 'an older CA list is refused');
  t.match(listRollback.stderr, /\[STATE_ROLLBACK\]/, 'as a rollback');
  t.same(snapshotFiles(instance.etc), current, 'every file as it was');
  t.equal(trusted().trim().split('\n').length, 2);

  // Today's statement with yesterday's KRL: the KRL does not match what the server signed.
  const live: Snapshot = new Map(relay.recorded);
  relay.replay = new Map([...live, ['/v1/krl', beforeRevocation.get('/v1/krl')!]]);
  const swapped = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(swapped.code, 1, 'a KRL other than the stated one is refused');
  t.match(swapped.stderr, /\[STATE_MISMATCH\]/);
  t.same(snapshotFiles(instance.etc), current);
  // A statement edited to claim a newer KRL version no longer verifies.
  const state = live.get('/v1/trust-state')!;
  relay.replay = new Map([...live, ['/v1/trust-state', { ...state, body: Buffer.from(state.body.toString().replace(/^krl-version (\d+)$/m, (_, v: string) => `krl-version ${Number(v) + 100}`)) }]]);
  const forged = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(forged.code, 1, 'an edited statement is refused');
  t.match(forged.stderr, /\[STATE_UNSIGNED\]/);
  t.same(snapshotFiles(instance.etc), current);

  // Control: the live server is still accepted.
  delete relay.replay;
  t.equal((await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root])).code, 0, 'the current state is accepted');
  // (It may have recorded a newer issued-at, when a minute passed since the last refresh.)
  const accepted = snapshotFiles(instance.etc);

  // A statement from the instance's future (a key holder, or a runaway replica clock) would freeze it: refused.
  const future = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root], { nowMs: Date.now() - 3600_000 });
  t.match(future.stderr, /\[STATE_FUTURE\]/);
  // A relay that keeps replaying the last statement hides later revocations: once stale, refused.
  const stale = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root], { nowMs: Date.now() + 3600_000 });
  t.equal(stale.code, 1);
  t.match(stale.stderr, /\[STATE_STALE\]/);
  t.same(snapshotFiles(instance.etc), accepted, 'neither changed anything');

  // Moving back on purpose (docs/instances.md: a server restored from a
  // backup states an older KRL). Deleting the record alone is not enough:
  // without it the installed KRL's own version is the floor.
  relay.replay = beforeRevocation;
  const sshca = join(instance.etc, 'sshca');
  rmSync(join(sshca, 'trust-state'));
  const recordOnly = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(recordOnly.code, 1, 'without trust-state the installed KRL still holds the floor');
  t.match(recordOnly.stderr, /\[STATE_ROLLBACK\]/);
  // Deleting the record and the KRL is.
  rmSync(join(sshca, 'revoked.krl'));
  const back = await bootstrap(['--refresh', '--server', relay.url, '--root', instance.root]);
  t.equal(back.code, 0, back.stderr);
  t.same(readFileSync(join(sshca, 'revoked.krl')), beforeRevocation.get('/v1/krl')!.body, 'the older KRL is installed');
  t.match(readFileSync(join(sshca, 'trust-state'), 'utf8'), /^krl-version \d+$/m, 'and a new floor recorded');
});

t.test('a KRL that parses but comes without a trust state changes nothing', needsOpenSsh, async (t) => {
  const { harness, audit, key } = await caSetup(t);
  const ca = key('ca');
  const clock = new ShiftableClock();
  const relay = await startRelay(t, await listenOnLoopback((await startTestApp(t, harness, ca, { audit, clock })).app));
  const instance = await prepareInstanceRoot(t);
  const installed = await bootstrap(['--server', relay.url, '--ca-fingerprint', fingerprintOf(ca.publicKey().blob), '--allow', 'ops=ops', '--root', instance.root]);
  t.equal(installed.code, 0, installed.stderr);
  const krlFile = join(instance.etc, 'sshca', 'revoked.krl');
  const before = snapshotFiles(instance.etc);

  // A revocation: the server's KRL is newer than the instance's. The relay
  // passes it on but withholds the statement that vouches for it.
  await audit.recordRevocation({ requestId: 'r', at: clock.now(), publicKeyFingerprint: `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`, revokedBy: 'publicKey', reason: 'leaked', callerArn: 'arn:aws:iam::111111111111:user/admin', accountId: '111111111111', sourceIp: '127.0.0.1' });
  clock.offsetMs += KRL_RECHECK_MS;
  for (const status of [404, 503]) {
    relay.fault = (path) => (path === '/v1/trust-state' ? status : undefined);
    const r = await bootstrap(['--refresh', '--root', instance.root]);
    t.equal(r.code, 1, `trust state HTTP ${status}: refused`);
    t.match(r.stderr, /\[STATE_UNAVAILABLE\]/, 'with its code');
    const served = relay.recorded.get('/v1/krl')!.body;
    t.notOk(served.equals(readFileSync(krlFile)), 'the KRL it was sent is not the installed one');
    const scratch = join(t.testdir(), 'served.krl');
    writeFileSync(scratch, served);
    await t.resolves(run('ssh-keygen', ['-Q', '-l', '-f', scratch]), 'and it parses');
    t.same(snapshotFiles(instance.etc), before, 'every file as it was');
  }

  // Control: with the statement, the same KRL is taken.
  delete relay.fault;
  const r = await bootstrap(['--refresh', '--root', instance.root]);
  t.equal(r.code, 0, r.stderr);
  t.same(readFileSync(krlFile), relay.recorded.get('/v1/krl')!.body);
});

t.test('a statement a little older than the newest accepted may confirm, never change, what is installed', needsOpenSsh, async (t) => {
  const setup = await caSetup(t);
  const { harness, audit } = setup;
  const key = setup.key('ca');
  const next = setup.key('next');
  const fast = new ShiftableClock();
  const lagging = new ShiftableClock();
  lagging.offsetMs = -90_000; // its statements are always at least a minute older than the fast one's
  const current = await listenOnLoopback((await startTestApp(t, harness, key, { audit, clock: fast })).app);
  const instance = await prepareInstanceRoot(t);
  t.equal((await bootstrap(['--server', current, '--ca-fingerprint', fingerprintOf(key.publicKey().blob), '--allow', 'ops=ops', '--root', instance.root])).code, 0);
  // A lagging replica that states the same lists: accepted, nothing changes.
  const sameLists = await listenOnLoopback((await startTestApp(t, harness, key, { audit, clock: lagging })).app);
  t.equal((await bootstrap(['--refresh', '--server', sameLists, '--root', instance.root])).code, 0, 'a slightly older statement of the same state is fine');
  // A newer statement of the same lists (every refresh in a new minute) moves the floor without being a change.
  const floorFile = join(instance.etc, 'sshca', 'trust-state');
  const floor = () => Number(/^issued-at (\d+)$/m.exec(readFileSync(floorFile, 'utf8'))?.[1]);
  const floorBefore = floor();
  const ahead = new ShiftableClock();
  ahead.offsetMs = 60_000;
  const newer = await bootstrap(['--refresh', '--server', await listenOnLoopback((await startTestApp(t, harness, key, { audit, clock: ahead })).app), '--root', instance.root]);
  t.equal(newer.code, 0);
  t.ok(floor() > floorBefore, 'the newest accepted issue time moved forward');
  t.match(newer.stderr, /no changes/, 'recording it is bookkeeping, not a change to what sshd enforces');
  // One whose (older) statement would change the CA list: refused.
  const before = snapshotFiles(instance.etc);
  const otherList = await listenOnLoopback((await startTestApp(t, harness, key, { audit, clock: lagging, userCaNext: next.publicKey() })).app);
  const r = await bootstrap(['--refresh', '--server', otherList, '--root', instance.root]);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[STATE_ROLLBACK\]/);
  t.same(snapshotFiles(instance.etc), before);
});

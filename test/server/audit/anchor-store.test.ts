// One contract, two stores: a directory, and S3 with Object Lock through the
// real S3Client against an S3-compatible fixture that verifies SigV4 and
// enforces Object Lock. Then what only S3 has: the lock headers, refused
// credentials, and an anchor that cannot be overwritten or deleted.
import { generateKeyPairSync } from 'node:crypto';
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { FinalizeHandlerArguments, FinalizeHandler, MetadataBearer } from '@smithy/types';
import t, { type Test } from 'tap';
import { anchorKey, anchorName, formatAnchor, makeAnchor, type Anchor } from '../../../protocol/audit-anchor.js';
import type { AnchorStore } from '../../../server/audit/anchor-store.js';
import { CheckpointSigner } from '../../../server/audit/checkpoint-signer.js';
import { DirectoryAnchorStore } from '../../../server/audit/directory-anchor-store.js';
import { S3AnchorStore } from '../../../server/audit/s3-anchor-store.js';
import { startS3Fixture } from '../../fixtures/s3-fixture.js';

const signer = new CheckpointSigner(generateKeyPairSync('ed25519').privateKey);
const hashOf = (n: number, variant = 'a') => `${variant.repeat(2)}${n.toString(16).padStart(62, '0')}`.slice(0, 64);
const anchor = async (seq: number, options: { at?: string; variant?: string } = {}): Promise<Anchor> => {
  const at = options.at ?? new Date().toISOString();
  const hash = hashOf(seq, options.variant ?? 'a');
  return makeAnchor(seq, hash, at, await signer.signHead(seq, hash, at));
};

interface Engine {
  /** A store on the same location each call (a restart). */
  open(): Promise<AnchorStore>;
  /** Puts `text` under an anchor name, as someone other than the store would. */
  plant(name: string, text: string): Promise<void>;
}

async function contract(t: Test, engine: Engine): Promise<void> {
  const store = await engine.open();

  await t.test('publish, re-publish, conflict', async (t) => {
    const a = await anchor(3);
    t.equal(await store.publish(a), 'created');
    t.equal(await store.publish(a), 'exists', 'the identical document again');
    t.equal(await store.publish(await anchor(3, { at: new Date(Date.now() + 5000).toISOString() })), 'exists', 'the same statement at another time (another replica)');
    await t.rejects(store.publish(await anchor(3, { variant: 'b' })), { code: 'ANCHOR_CONFLICT' }, 'another hash for the same record');
    t.same(await store.newest(5), [a], 'the first document stays');
  });

  await t.test('newest first, limited', async (t) => {
    for (const seq of [1, 7, 5, 12]) await store.publish(await anchor(seq));
    t.same((await store.newest(2)).map((x) => x.seq), [12, 7]);
    t.same((await store.newest(10)).map((x) => x.seq), [12, 7, 5, 3, 1]);
    await t.rejects(store.newest(0), { code: 'ANCHOR_CONFIG' });
  });

  await t.test('a restart reads what exists', async (t) => {
    const again = await engine.open();
    t.equal(again.location, store.location);
    t.same((await again.newest(3)).map((x) => x.seq), [12, 7, 5]);
    t.equal(await again.publish(await anchor(12)), 'exists');
  });

  await t.test('what someone else wrote is refused, not believed', async (t) => {
    await engine.plant(anchorName(20), formatAnchor(await anchor(21)));
    await t.rejects(store.newest(1), { code: 'ANCHOR_INVALID' }, 'content naming another record than its name');
    await engine.plant(anchorName(30), 'not json');
    await t.rejects(store.newest(1), { code: 'ANCHOR_INVALID' }, 'garbage');
    await t.rejects(store.publish(await anchor(30)), { code: 'ANCHOR_CONFLICT' }, 'garbage at the name an anchor needs');
  });
}

t.test('directory store', async (t) => {
  const dir = join(t.testdir(), 'anchors');
  await contract(t, {
    open: () => DirectoryAnchorStore.open(dir),
    plant: async (name, text) => writeFile(join(dir, name), text, { flag: 'wx' }),
  });

  await t.test('files are new, read-only, and never rewritten', async (t) => {
    const store = await DirectoryAnchorStore.open(dir);
    const a = await anchor(40);
    t.equal(await store.publish(a), 'created');
    const path = join(dir, anchorName(40));
    t.equal((await stat(path)).mode & 0o777, 0o444);
    t.equal(await readFile(path, 'utf8'), formatAnchor(a));
    await t.rejects(store.publish(await anchor(40, { variant: 'c' })), { code: 'ANCHOR_CONFLICT' });
    t.equal(await readFile(path, 'utf8'), formatAnchor(a), 'unchanged');
    t.same((await readdir(dir)).filter((n) => n.startsWith('.')), [], 'no temporary files left behind');
  });

  await t.test('a directory that is gone or unwritable is reported, not recreated', async (t) => {
    const gone = join(t.testdirName, 'gone');
    const store = await DirectoryAnchorStore.open(gone);
    const { rm } = await import('node:fs/promises');
    await rm(gone, { recursive: true });
    await t.rejects(store.newest(1), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'ENOENT' });
    await t.rejects(store.publish(await anchor(1)), { code: 'ANCHOR_UNAVAILABLE' });
    await t.rejects(stat(gone), { code: 'ENOENT' });
    if (process.getuid?.() !== 0) {
      const locked = await DirectoryAnchorStore.open(join(t.testdirName, 'locked'));
      await chmod(locked.location, 0o555);
      await t.rejects(locked.publish(await anchor(1)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'EACCES' });
    }
  });
});

const BUCKET = 'sshca-audit-anchors';
const PREFIX = 'prod/anchors/';

t.test('S3 store', async (t) => {
  const s3 = await startS3Fixture(t);
  s3.createBucket(BUCKET);
  const client = s3.client();
  t.teardown(() => client.destroy());
  const open = (over: Partial<ConstructorParameters<typeof S3AnchorStore>[0]> = {}) => new S3AnchorStore({ s3: client, bucket: BUCKET, prefix: PREFIX, retentionDays: 30, ...over });
  await contract(t, {
    open: async () => open({ prefix: 'contract/' }),
    plant: async (name, text) => void (await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `contract/${name}`, Body: text }))),
  });
  t.equal(open().location, `s3://${BUCKET}/${PREFIX}`);
  t.equal(new S3AnchorStore({ s3: client, bucket: BUCKET, prefix: '', retentionDays: 1 }).location, `s3://${BUCKET}/`);

  await t.test('one conditional PUT with COMPLIANCE retention from the anchor time', async (t) => {
    const store = open({ retentionDays: 400 });
    const a = await anchor(50, { at: '2026-11-20T10:00:00.123Z' });
    const before = s3.requests.length;
    t.equal(await store.publish(a), 'created');
    const puts = s3.requests.slice(before).filter((r) => r.method === 'PUT');
    t.equal(puts.length, 1);
    const put = puts[0]!;
    t.equal(put.path, `/${BUCKET}/${anchorKey(50, PREFIX)}`);
    t.equal(put.headers['if-none-match'], '*');
    t.equal(put.headers['x-amz-object-lock-mode'], 'COMPLIANCE');
    const retainUntil = Date.parse(put.headers['x-amz-object-lock-retain-until-date']!);
    t.equal(Math.floor(retainUntil / 1000), Math.floor((Date.parse(a.at) + 400 * 86_400_000) / 1000), 'retention = at + 400 days (to the second)');
    t.ok(put.headers['content-md5'] && put.headers['x-amz-checksum-sha256'], 'Content-MD5 and a SHA-256 checksum, both verified by the fixture');
    const [version, ...more] = s3.versions(BUCKET, anchorKey(50, PREFIX));
    t.same(more, []);
    t.equal(version?.lockMode, 'COMPLIANCE');
    t.equal(version?.body.toString('utf8'), formatAnchor(a));
  });

  await t.test('the checksum Object Lock requires: the fixture enforces it, the store sends it whatever the client setting', async (t) => {
    const bare = s3.client({ requestChecksumCalculation: 'WHEN_REQUIRED' });
    t.teardown(() => bare.destroy());
    await t.rejects(
      bare.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}probe`, Body: 'x', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() + 86_400_000) })),
      { name: 'InvalidRequest', $metadata: { httpStatusCode: 400 } },
      'a lock PUT without Content-MD5 or x-amz-checksum-* is refused, as S3 does',
    );
    t.equal(await open({ s3: bare }).publish(await anchor(51)), 'created');
  });

  await t.test('an overwrite attempt is refused and reported; the anchor stays', async (t) => {
    const store = open();
    const key = anchorKey(60, PREFIX);
    const a = await anchor(60);
    await store.publish(a);
    const before = s3.requests.length;
    await t.rejects(store.publish(await anchor(60, { variant: 'd' })), { code: 'ANCHOR_CONFLICT' });
    t.match(s3.requests.slice(before), [{ method: 'PUT', status: 412, code: 'PreconditionFailed', headers: { 'if-none-match': '*' } }, { method: 'GET', status: 200 }]);
    t.equal(s3.versions(BUCKET, key).length, 1, 'no second version');
    t.same(await store.newest(1), [a]);
  });

  await t.test('deleting an anchored object', async (t) => {
    const key = anchorKey(70, PREFIX);
    await open().publish(await anchor(70));
    const [locked] = s3.versions(BUCKET, key);
    await t.rejects(client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key, VersionId: locked!.versionId })), { name: 'AccessDenied' }, 'the locked version cannot be deleted (compliance mode)');
    t.equal(s3.versions(BUCKET, key).length, 1);
    // The fixture is not hard-wired to refuse: once retention ends, the version can go.
    const realNow = s3.now;
    s3.now = () => new Date(locked!.retainUntil!.getTime() + 1000);
    try {
      s3.createBucket('expired-test');
      const other = new S3AnchorStore({ s3: client, bucket: 'expired-test', prefix: '', retentionDays: 1 });
      const old = await anchor(1, { at: new Date(Date.now() + 40 * 86_400_000).toISOString() });
      await other.publish(old);
      const [v] = s3.versions('expired-test', anchorKey(1));
      s3.now = () => new Date(v!.retainUntil!.getTime() + 1000);
      await client.send(new DeleteObjectCommand({ Bucket: 'expired-test', Key: anchorKey(1), VersionId: v!.versionId }));
      t.same(s3.versions('expired-test', anchorKey(1)), [], 'deletable after retention');
    } finally {
      s3.now = realNow;
    }

    // Without a bucket policy, a plain DELETE stacks a delete marker: the
    // locked version stays, but listings stop showing it. Hence the policy.
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    t.match(s3.versions(BUCKET, key), [{ deleteMarker: false, lockMode: 'COMPLIANCE' }, { deleteMarker: true }]);
    t.notOk((await open().newest(100)).some((x) => x.seq === 70), 'hidden from listings');

    s3.createBucket('with-policy', { denyDeletes: true, requireIfNoneMatch: true });
    const guarded = new S3AnchorStore({ s3: client, bucket: 'with-policy', prefix: PREFIX, retentionDays: 30 });
    await guarded.publish(await anchor(70));
    await t.rejects(client.send(new DeleteObjectCommand({ Bucket: 'with-policy', Key: key })), { name: 'AccessDenied' }, 'the bucket policy denies the delete marker too');
    await t.rejects(client.send(new PutObjectCommand({ Bucket: 'with-policy', Key: key, Body: 'x' })), { name: 'AccessDenied' }, 'and a PUT without If-None-Match (a new version on top)');
    t.same((await guarded.newest(1)).map((x) => x.seq), [70]);
    t.equal(s3.versions('with-policy', key).length, 1);
  });

  await t.test('refused credentials, a forbidden bucket, a missing bucket: ANCHOR_UNAVAILABLE with S3 code', async (t) => {
    const wrongSecret = s3.client({ credentials: { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: `${s3.credentials.secretAccessKey}x` } });
    const unknownKey = s3.client({ credentials: { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: s3.credentials.secretAccessKey } });
    t.teardown(() => (wrongSecret.destroy(), unknownKey.destroy()));
    const before = s3.requests.length;
    await t.rejects(open({ s3: wrongSecret }).publish(await anchor(80)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'SignatureDoesNotMatch' });
    await t.rejects(open({ s3: wrongSecret }).newest(1), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'SignatureDoesNotMatch' });
    await t.rejects(open({ s3: unknownKey }).publish(await anchor(80)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'InvalidAccessKeyId' });
    t.same(s3.requests.slice(before).map((r) => [r.method, r.status]), [['PUT', 403], ['GET', 403], ['PUT', 403]], 'every one refused at the door');
    t.same(s3.versions(BUCKET, anchorKey(80, PREFIX)), [], 'nothing written');

    s3.fault = 'access-denied';
    try {
      await t.rejects(open().publish(await anchor(80)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'AccessDenied', status: 503 });
      await t.rejects(open().newest(1), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'AccessDenied' });
    } finally {
      s3.fault = null;
    }
    await t.rejects(open({ bucket: 'no-such-bucket' }).publish(await anchor(80)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'NoSuchBucket' });
    s3.createBucket('no-lock', { objectLock: false });
    await t.rejects(open({ bucket: 'no-lock' }).publish(await anchor(80)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'InvalidRequest' }, 'a bucket without Object Lock refuses the anchor');
  });

  await t.test('the fixture checks the body against the signed payload hash', async (t) => {
    const tamperer = s3.client();
    t.teardown(() => tamperer.destroy());
    // After signing, swap the body: the signature still matches the headers,
    // but x-amz-content-sha256 no longer matches what arrives.
    tamperer.middlewareStack.addRelativeTo(
      (next: FinalizeHandler<object, MetadataBearer>) => async (args: FinalizeHandlerArguments<object>) => {
        (args.request as { body: unknown }).body = formatAnchor(await anchor(90, { variant: 'e' }));
        return next(args);
      },
      { relation: 'after', toMiddleware: 'awsAuthMiddleware', name: 'tamper' },
    );
    await t.rejects(open({ s3: tamperer }).publish(await anchor(90)), { code: 'ANCHOR_UNAVAILABLE', upstreamCode: 'XAmzContentSHA256Mismatch' });
    t.same(s3.versions(BUCKET, anchorKey(90, PREFIX)), []);
  });

  await t.test('configuration is checked', async (t) => {
    for (const over of [{ bucket: 'Bad_Bucket' }, { prefix: 'no-slash' }, { prefix: '../up/' }, { prefix: 'a b/' }, { prefix: '/abs/' }, { retentionDays: 0 }, { retentionDays: 1.5 }]) {
      t.throws(() => open(over), { code: 'ANCHOR_CONFIG' }, JSON.stringify(over));
    }
    t.doesNotThrow(() => open({ prefix: '' }));
  });

  await t.test('an oversized object under an anchor name is refused unread', async (t) => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: anchorKey(100_000, PREFIX), Body: 'x'.repeat(100_000) }));
    await t.rejects(open().newest(1), { code: 'ANCHOR_INVALID' });
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: anchorKey(100_000, PREFIX) }));
    t.equal((await got.Body!.transformToByteArray()).length, 100_000, 'the fixture served it; the store refused it');
  });
});

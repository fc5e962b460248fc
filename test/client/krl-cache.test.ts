// The client's KRL cache: If-None-Match only when the cached copy is from
// the same server and still reads; a KRL the reader refuses is never saved.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { fetchKrl, krlCachePaths } from '../../client/krl-cache.js';
import type { ServerApi } from '../../client/server-api.js';
import { encodeKrl } from '../../server/revocation/krl-encoder.js';

type Answer = Awaited<ReturnType<ServerApi['conditionalGet']>>;

/** A server that answers from `krl` and records the ETag each request sent. */
function fakeServer(audience: string, krl: { bytes: Buffer; etag: string }) {
  const sent: Array<string | undefined> = [];
  const api = {
    audience,
    async conditionalGet(path: string, etag: string | undefined): Promise<Answer> {
      if (path !== '/v1/krl') throw new Error(`unexpected ${path}`);
      sent.push(etag);
      return etag === krl.etag ? { notModified: true } : { notModified: false, bytes: krl.bytes, etag: krl.etag };
    },
  };
  return { api, sent, krl };
}

const krlOf = (version: bigint) => encodeKrl({ version, generatedAt: 0, comment: 'sshca', certificates: [{ caKey: Buffer.alloc(0), serials: [version], keyIds: [] }], sha256Fingerprints: [] });

t.test('download, then 304; a damaged copy or another server means a full download', async (t) => {
  const paths = krlCachePaths(t.testdir());
  const server = fakeServer('https://a.example', { bytes: krlOf(1n), etag: '"v1"' });
  const first = await fetchKrl(server.api, paths);
  t.equal(first.fromCache, false);
  t.equal(first.list.version, 1n);
  const second = await fetchKrl(server.api, paths);
  t.equal(second.fromCache, true, 'unchanged: the cached copy, confirmed');
  t.equal(second.list.version, 1n);
  t.same(server.sent, [undefined, '"v1"'], 'the second request sent the ETag');

  writeFileSync(paths.krl, 'damaged');
  t.equal((await fetchKrl(server.api, paths)).fromCache, false);
  t.equal(server.sent.at(-1), undefined, 'a cached copy that does not read is not offered for a 304');
  t.same(readFileSync(paths.krl), krlOf(1n), 'and is replaced');

  const other = fakeServer('https://b.example', { bytes: krlOf(1n), etag: '"v1"' });
  t.equal((await fetchKrl(other.api, paths)).fromCache, false);
  t.same(other.sent, [undefined], 'another server never confirms this one\'s copy');
});

t.test('a KRL the reader refuses is not saved: the previous copy and ETag stay', async (t) => {
  const paths = krlCachePaths(t.testdir());
  await fetchKrl(fakeServer('https://a.example', { bytes: krlOf(2n), etag: '"v2"' }).api, paths);
  const state = readFileSync(paths.state, 'utf8');
  const bad = fakeServer('https://a.example', { bytes: Buffer.from('<html>oops</html>'), etag: '"v3"' });
  await t.rejects(fetchKrl(bad.api, paths), { code: 'CLIENT_KRL_UNREADABLE' });
  t.same(readFileSync(paths.krl), krlOf(2n));
  t.equal(readFileSync(paths.state, 'utf8'), state);

  const fresh = krlCachePaths(t.testdir());
  await t.rejects(fetchKrl(bad.api, fresh), { code: 'CLIENT_KRL_UNREADABLE' });
  t.equal(existsSync(fresh.krl) || existsSync(fresh.state), false, 'nothing cached from an unreadable first answer');
});

t.test('a 304 to a request that offered no copy is a bad response', async (t) => {
  const paths = krlCachePaths(t.testdir());
  const api = { audience: 'https://a.example', conditionalGet: async (): Promise<Answer> => ({ notModified: true }) };
  await t.rejects(fetchKrl(api, paths), { code: 'CLIENT_BAD_RESPONSE' });
});

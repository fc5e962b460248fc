// The client's KRL reader, judged by OpenSSH: for certificates made by
// ssh-keygen -s, it answers what `ssh-keygen -Q` answers on KRLs written by
// sshca's encoder (lists, ranges, bitmaps, key ids, any-CA sections, key
// hashes) and by ssh-keygen -k; and it refuses, with its code, every KRL it
// cannot fully read instead of calling it "not revoked".
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readCertificate } from '../../client/certificate-info.js';
import { KrlReadError, readKrl } from '../../client/krl-reader.js';
import { SshWriter } from '../../protocol/ssh-wire.js';
import { encodeKrl } from '../../server/revocation/krl-encoder.js';
import { keygenRevoked, needsOpenSsh } from '../fixtures/openssh.js';


/** The code readKrl throws with (only KrlReadError counts), or 'parsed'. */
function readCode(bytes: Buffer): string {
  try {
    readKrl(bytes);
    return 'parsed';
  } catch (err) {
    return err instanceof KrlReadError ? err.code : `not a KrlReadError: ${String(err)}`;
  }
}

const blobOf = (pubFile: string) => Buffer.from(readFileSync(pubFile, 'utf8').split(' ')[1]!, 'base64');

t.test('sshca encoder output: the reader agrees with ssh-keygen -Q for every probe', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], { stdio: 'pipe' });
  keygen('-t', 'ed25519', '-N', '', '-f', join(dir, 'ca'));
  keygen('-t', 'ed25519', '-N', '', '-f', join(dir, 'other-ca'));
  keygen('-t', 'ed25519', '-N', '', '-f', join(dir, 'user'));
  keygen('-t', 'ecdsa', '-b', '256', '-N', '', '-f', join(dir, 'leaked'));
  let n = 0;
  /** A certificate ssh-keygen signs; returns its path. */
  const cert = (serial: bigint, options: { ca?: string; key?: string; id?: string } = {}) => {
    const base = join(dir, `c${n++}`);
    copyFileSync(join(dir, `${options.key ?? 'user'}.pub`), `${base}.pub`);
    keygen('-s', join(dir, options.ca ?? 'ca'), '-I', options.id ?? `id-${serial}`, '-n', 'alice', '-z', serial.toString(), '-V', '+1h', `${base}.pub`);
    return `${base}-cert.pub`;
  };
  const big = 1n << 40n;
  const top = 0xffffffffffffffffn;
  const dense = Array.from({ length: 21 }, (_, i) => 1000n + 2n * BigInt(i)); // 1000, 1002, … 1040: a bitmap
  const krl = encodeKrl({
    version: 7n,
    generatedAt: 1_700_000_000,
    comment: 'sshca',
    certificates: [
      { caKey: blobOf(join(dir, 'ca.pub')), serials: [5n, 6n, 7n, ...dense, big + 7n, (1n << 63n) + 5n, top], keyIds: ['revoked-id'] },
      { caKey: Buffer.alloc(0), serials: [77n], keyIds: [] },
    ],
    sha256Fingerprints: [(await import('node:crypto')).createHash('sha256').update(blobOf(join(dir, 'leaked.pub'))).digest()],
  });
  const krlPath = join(dir, 'sshca.krl');
  writeFileSync(krlPath, krl);
  const listing = execFileSync('ssh-keygen', ['-Q', '-l', '-f', krlPath], { encoding: 'utf8' });
  t.match(listing, /serial: 5-7/, 'the KRL holds a range');
  t.match(listing, /serial: 1000\b/, 'and the bitmap cluster');

  const list = readKrl(krl);
  t.equal(list.version, 7n, 'krl_version read');
  const probes: Array<[string, string]> = [
    ...[4n, 5n, 6n, 7n, 8n, 999n, 1000n, 1001n, 1002n, 1020n, 1040n, 1041n, 1042n, 1047n, 1048n, big + 6n, big + 7n, big + 8n, (1n << 63n) + 5n, top - 1n, top, 77n].map((s) => [`serial ${s}`, cert(s)] as [string, string]),
    ['revoked key id', cert(3n, { id: 'revoked-id' })],
    ['another key id', cert(3n, { id: 'fine-id' })],
    ['revoked serial 6 from another CA', cert(6n, { ca: 'other-ca' })],
    ['serial 77 (any CA) from another CA', cert(77n, { ca: 'other-ca' })],
    ['a revoked key, fresh serial', cert(12345n, { key: 'leaked' })],
  ];
  let revoked = 0;
  for (const [name, path] of probes) {
    const expected = keygenRevoked(krlPath, path);
    const match = list.revokes(readCertificate(readFileSync(path, 'utf8')));
    t.equal(match !== undefined, expected, `${name}: ${expected ? 'revoked' : 'not revoked'}, as ssh-keygen -Q says`);
    if (expected) revoked++;
  }
  t.ok(revoked >= 10 && revoked < probes.length, `both answers exercised (${revoked}/${probes.length} revoked)`);
  t.equal(list.revokes(readCertificate(readFileSync(probes.find(([n]) => n === 'a revoked key, fresh serial')![1], 'utf8'))), 'key', 'a key hash match says so');
  t.equal(list.revokes(readCertificate(readFileSync(probes.find(([n]) => n === 'serial 6')![1], 'utf8'))), 'certificate');
});

t.test('ssh-keygen -k output: certificate sections parse; everything else is refused', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const keygen = (...args: string[]) => execFileSync('ssh-keygen', ['-q', ...args], { stdio: 'pipe' });
  keygen('-t', 'ed25519', '-N', '', '-f', join(dir, 'ca'));
  keygen('-t', 'ed25519', '-N', '', '-f', join(dir, 'user'));
  keygen('-s', join(dir, 'ca'), '-I', 'someone', '-n', 'alice', '-z', '15', '-V', '+1h', join(dir, 'user.pub'));
  const subject = readCertificate(readFileSync(join(dir, 'user-cert.pub'), 'utf8'));

  writeFileSync(join(dir, 'spec'), 'serial: 10-20\nid: nobody\n');
  keygen('-k', '-s', join(dir, 'ca.pub'), '-f', join(dir, 'serials.krl'), join(dir, 'spec'));
  t.equal(keygenRevoked(join(dir, 'serials.krl'), join(dir, 'user-cert.pub')), true);
  t.equal(readKrl(readFileSync(join(dir, 'serials.krl'))).revokes(subject), 'certificate', 'OpenSSH\'s own certificate section reads the same');

  keygen('-k', '-f', join(dir, 'empty.krl'));
  t.equal(readKrl(readFileSync(join(dir, 'empty.krl'))).revokes(subject), undefined, 'an empty KRL revokes nothing');

  // Sections sshca's server never writes: explicit keys (a plain key file) and SHA1 hashes.
  keygen('-k', '-f', join(dir, 'explicit.krl'), join(dir, 'user.pub'));
  t.equal(keygenRevoked(join(dir, 'explicit.krl'), join(dir, 'user-cert.pub')), true, 'OpenSSH: revoked (explicit key)');
  t.equal(readCode(readFileSync(join(dir, 'explicit.krl'))), 'CLIENT_KRL_UNREADABLE', 'explicit-key section: refused, not "not revoked"');
  writeFileSync(join(dir, 'sha1spec'), `sha1: ${readFileSync(join(dir, 'user.pub'), 'utf8')}`);
  keygen('-k', '-f', join(dir, 'sha1.krl'), join(dir, 'sha1spec'));
  t.equal(readCode(readFileSync(join(dir, 'sha1.krl'))), 'CLIENT_KRL_UNREADABLE', 'SHA1 section: refused');
});

t.test('malformed KRLs are refused with CLIENT_KRL_UNREADABLE', async (t) => {
  const good = encodeKrl({ version: 3n, generatedAt: 0, comment: 'sshca', certificates: [{ caKey: Buffer.from('ca-blob'), serials: [1n, 50n, 900n], keyIds: ['x'] }], sha256Fingerprints: [Buffer.alloc(32, 1)] });
  t.equal(readCode(good), 'parsed', 'the control parses');
  for (let cut = 1; cut < good.length; cut += 7) t.equal(readCode(good.subarray(0, cut)), 'CLIENT_KRL_UNREADABLE', `cut to ${cut} bytes`);
  t.equal(readCode(Buffer.from('<html>502 Bad Gateway</html>')), 'CLIENT_KRL_UNREADABLE', 'an error page');
  const withSection = (type: number, data: Buffer) => Buffer.concat([good, Buffer.from([type]), new SshWriter().string(data).toBuffer()]);
  t.equal(readCode(withSection(4, Buffer.alloc(8))), 'CLIENT_KRL_UNREADABLE', 'a signature section');
  t.equal(readCode(withSection(9, Buffer.alloc(0))), 'CLIENT_KRL_UNREADABLE', 'an unknown section');
  t.equal(readCode(withSection(5, new SshWriter().string(Buffer.alloc(20)).toBuffer())), 'CLIENT_KRL_UNREADABLE', 'a key hash of the wrong length');
  const cert = (sub: number, body: Buffer) => withSection(1, Buffer.concat([new SshWriter().string('').string('').toBuffer(), Buffer.from([sub]), new SshWriter().string(body).toBuffer()]));
  t.equal(readCode(cert(0x24, Buffer.alloc(0))), 'CLIENT_KRL_UNREADABLE', 'an unknown certificate subsection');
  t.equal(readCode(cert(0x21, new SshWriter().uint64(9n).uint64(3n).toBuffer())), 'CLIENT_KRL_UNREADABLE', 'a range that ends before it starts');
  t.equal(readCode(cert(0x20, Buffer.alloc(7))), 'CLIENT_KRL_UNREADABLE', 'a serial list that is not whole uint64s');
  const version2 = Buffer.from(good);
  version2.writeUInt32BE(2, 8);
  t.equal(readCode(version2), 'CLIENT_KRL_UNREADABLE', 'another format version');
});

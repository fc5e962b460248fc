import t from 'tap';
import { SshReader, SshWriter, encodeMpintMagnitude } from '../../protocol/ssh-wire.js';

t.test('mpint encoding is minimal and positive', async (t) => {
  t.same(encodeMpintMagnitude(Buffer.from([0x00, 0x00, 0x7f])), Buffer.from([0x7f]), 'leading zeros stripped');
  t.same(encodeMpintMagnitude(Buffer.from([0x80, 0x01])), Buffer.from([0x00, 0x80, 0x01]), 'top bit set gets one 0x00');
  t.same(encodeMpintMagnitude(Buffer.from([0x00, 0x00, 0xff])), Buffer.from([0x00, 0xff]), 'stripped, then padded');
  t.same(encodeMpintMagnitude(Buffer.from([0, 0])), Buffer.alloc(0), 'zero is empty');
});

t.test('reader round-trips and refuses malformed input', async (t) => {
  const blob = new SshWriter().uint32(7).uint64(2n ** 64n - 1n).string('hi').mpint(Buffer.from([0x80])).toBuffer();
  const r = new SshReader(blob);
  t.equal(r.uint32(), 7);
  t.equal(r.uint64(), 2n ** 64n - 1n);
  t.equal(r.text(), 'hi');
  t.same(r.mpint(), Buffer.from([0x80]));
  r.end();
  t.throws(() => new SshReader(Buffer.from([0, 0, 0, 5, 1])).string(), { code: 'SSH_WIRE_INVALID' }, 'truncated string');
  t.throws(() => new SshReader(new SshWriter().string(Buffer.from([0x80])).toBuffer()).mpint(), { code: 'SSH_WIRE_INVALID' }, 'negative mpint');
  t.throws(() => new SshReader(new SshWriter().string(Buffer.from([0x00, 0x01])).toBuffer()).mpint(), { code: 'SSH_WIRE_INVALID' }, 'non-minimal mpint');
  const trailing = new SshReader(Buffer.from([0, 0, 0, 0, 9]));
  trailing.string();
  t.throws(() => trailing.end(), { code: 'SSH_WIRE_INVALID' }, 'trailing bytes');
  t.throws(() => new SshWriter().uint64(-1n), { code: 'SSH_WIRE_INVALID' });
});

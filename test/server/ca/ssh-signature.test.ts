import t from 'tap';
import { ecdsaDerToSsh } from '../../../server/ca/ssh-signature.js';
import { SshReader } from '../../../protocol/ssh-wire.js';

const der = (...ints: Buffer[]) => {
  const body = Buffer.concat(ints.map((i) => Buffer.concat([Buffer.from([0x02, i.length]), i])));
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
};
const mpints = (ssh: Buffer) => {
  const r = new SshReader(ssh);
  const raw = () => r.string();
  const out = [raw(), raw()];
  r.end();
  return out;
};

t.test('DER → SSH mpints: padding and leading zeros (deliberately constructed)', async (t) => {
  // r with its top bit set: DER carries a 0x00 and so must the mpint.
  const rTop = Buffer.concat([Buffer.from([0x00, 0x80]), Buffer.alloc(31, 0x11)]);
  // s that is short (what fixed-width encoders get wrong: leading zero bytes dropped in DER).
  const sShort = Buffer.from([0x01, 0x02]);
  const [r, s] = mpints(ecdsaDerToSsh(der(rTop, sShort)));
  t.same(r, rTop, 'top-bit r keeps exactly one 0x00');
  t.same(s, sShort, 'short s stays minimal');
  const [r2] = mpints(ecdsaDerToSsh(der(Buffer.from([0x7f, 0xff]), Buffer.from([0x01]))));
  t.same(r2, Buffer.from([0x7f, 0xff]), 'no padding when the top bit is clear');
});

t.test('strict DER: every malformed form is refused', async (t) => {
  const one = Buffer.from([0x01]);
  const cases: Record<string, Buffer> = {
    'non-minimal integer': der(Buffer.from([0x00, 0x01]), one),
    'negative integer': der(Buffer.from([0x80]), one),
    'zero integer': der(Buffer.from([0x00]), one),
    'trailing byte': Buffer.concat([der(one, one), Buffer.from([0])]),
    'wrong tag': Buffer.from([0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
    'third integer': der(one, one, one),
    'long-form length for a short sequence': Buffer.from([0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]),
    'truncated': der(one, one).subarray(0, 5),
  };
  for (const [name, bytes] of Object.entries(cases)) t.throws(() => ecdsaDerToSsh(bytes), { code: 'SIGNATURE_MALFORMED' }, name);
});

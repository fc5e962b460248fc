// Attack: asking the running server to certify keys with degenerate values
// (issue 10, item 11). A CA that signs a small-order Ed25519 key or an RSA key
// with a known factor vouches for a key anyone can sign with.
import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { SshWriter, encodeMpintMagnitude } from '../../../protocol/ssh-wire.js';
import { auditRows, requestCertificate, startDevServer } from '../../fixtures/dev-server.js';

const ed25519Line = (pk: Buffer) => `ssh-ed25519 ${new SshWriter().string('ssh-ed25519').string(pk).toBuffer().toString('base64')}`;

const toBigInt = (b64url: string) => BigInt(`0x${Buffer.from(b64url, 'base64url').toString('hex')}`);
const toBytes = (v: bigint) => Buffer.from(v.toString(16).padStart(Math.ceil(v.toString(16).length / 2) * 2, '0'), 'hex');
const rsaLine = (e: bigint, n: bigint) =>
  `ssh-rsa ${new SshWriter().string('ssh-rsa').string(encodeMpintMagnitude(toBytes(e))).string(encodeMpintMagnitude(toBytes(n))).toBuffer().toString('base64')}`;

t.test('degenerate user keys are refused with REQUEST_KEY_INVALID; genuine keys are certified', async (t) => {
  const dev = await startDevServer(t, { devUser: 'alice' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const jwk = rsa.export({ format: 'jwk' });
  const e = toBigInt(jwk.e!);
  const n = toBigInt(jwk.n!);
  // An odd multiple of 3 just below n: still 2048 bits, trivially factored.
  const multipleOf3 = n - (n % 3n) - ((n - (n % 3n)) % 2n === 0n ? 3n : 0n);
  t.equal(multipleOf3.toString(2).length, 2048);
  t.equal(multipleOf3 % 6n, 3n);

  const cases: Array<[string, string]> = [
    ['Ed25519 all-zero key', ed25519Line(Buffer.alloc(32))],
    // The point of order 8 that generates the Ed25519 torsion subgroup.
    ['Ed25519 small-order point', ed25519Line(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'))],
    ['Ed25519 identity point', ed25519Line(Buffer.from(`01${'00'.repeat(31)}`, 'hex'))],
    ['Ed25519 non-canonical y = p', ed25519Line(Buffer.from(`ed${'ff'.repeat(30)}7f`, 'hex'))],
    ['Ed25519 bytes that are no curve point (y = 2)', ed25519Line(Buffer.from(`02${'00'.repeat(31)}`, 'hex'))],
    ['RSA 2048-bit even modulus', rsaLine(e, n - 1n)],
    ['RSA 2048-bit modulus with a factor 3', rsaLine(e, multipleOf3)],
    ['RSA exponent 1', rsaLine(1n, n)],
  ];
  for (const [name, publicKey] of cases) {
    const res = await requestCertificate(dev, { publicKey });
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.json.code, 'REQUEST_KEY_INVALID', `${name}: REQUEST_KEY_INVALID`);
    t.notOk('certificate' in res.json, `${name}: no certificate`);
  }
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0, 'nothing recorded as issued');

  for (const [name, publicKey] of [
    ['genuine Ed25519', toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey))],
    ['genuine RSA 2048 (the one the attacks were derived from)', toOpenSshLine(publicKeyFromKeyObject(rsa))],
  ] as const) {
    const res = await requestCertificate(dev, { publicKey });
    t.equal(res.status, 201, `control: ${name} is certified`);
    t.type(res.json.certificate, 'string', `control: ${name} has a certificate`);
  }
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 2, 'only the genuine keys were issued');
});

import { generateKeyPairSync } from 'node:crypto';
import t from 'tap';
import { fingerprintOf, parsePublicKeyLine, publicKeyFromKeyObject } from '../../protocol/ssh-public-key.js';
import { SshWriter, encodeMpintMagnitude } from '../../protocol/ssh-wire.js';
import { USER_KEY_TYPES, generateUserKey, needsOpenSsh } from '../fixtures/openssh.js';
import { execFileSync } from 'node:child_process';

t.test('parses every accepted ssh-keygen key type; fingerprints agree with ssh-keygen', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  for (const type of USER_KEY_TYPES) {
    const { path, line } = generateUserKey(dir, type);
    const key = parsePublicKeyLine(line);
    const expected = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1];
    t.equal(fingerprintOf(key.blob), expected, `${type} fingerprint`);
    t.equal(line.startsWith(key.type), true, `${type} type word`);
  }
});

const rsaBlob = (bits: number) => {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  return new SshWriter().string('ssh-rsa').string(encodeMpintMagnitude(Buffer.from(jwk.e!, 'base64url'))).string(encodeMpintMagnitude(Buffer.from(jwk.n!, 'base64url'))).toBuffer();
};
const line = (type: string, blob: Buffer) => `${type} ${blob.toString('base64')}`;

t.test('refuses weak, unsupported and malformed keys', async (t) => {
  t.throws(() => parsePublicKeyLine(line('ssh-rsa', rsaBlob(1024))), { code: 'PUBLIC_KEY_UNSUPPORTED' }, 'RSA 1024');
  const dss = new SshWriter().string('ssh-dss').string(Buffer.from([1])).string(Buffer.from([1])).string(Buffer.from([1])).string(Buffer.from([1])).toBuffer();
  t.throws(() => parsePublicKeyLine(line('ssh-dss', dss)), { code: 'PUBLIC_KEY_UNSUPPORTED' }, 'DSA');
  const ed = publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey);
  t.throws(() => parsePublicKeyLine(line('ssh-rsa', ed.blob)), { code: 'PUBLIC_KEY_INVALID' }, 'type word mismatch');
  t.throws(() => parsePublicKeyLine(line('ssh-ed25519', Buffer.concat([ed.blob, Buffer.from([0])]))), { code: 'PUBLIC_KEY_INVALID' }, 'trailing bytes');
  t.throws(() => parsePublicKeyLine(line('ssh-ed25519', ed.blob.subarray(0, ed.blob.length - 1))), { code: 'PUBLIC_KEY_INVALID' }, 'truncated');
  const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(32, 1), Buffer.alloc(32, 2)]);
  t.throws(() => parsePublicKeyLine(line('ecdsa-sha2-nistp256', new SshWriter().string('ecdsa-sha2-nistp256').string('nistp256').string(offCurve).toBuffer())), { code: 'PUBLIC_KEY_INVALID' }, 'EC point not on the curve');
  t.throws(() => parsePublicKeyLine('ssh-ed25519 !!!!'), { code: 'PUBLIC_KEY_INVALID' }, 'bad base64');
  t.throws(() => parsePublicKeyLine('ssh-ed25519'), { code: 'PUBLIC_KEY_INVALID' }, 'no key');
});

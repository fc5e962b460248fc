// The KRL encoder judged by OpenSSH: `ssh-keygen -Q -f krl cert` must say
// REVOKED exactly for what the KRL revokes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePublicKeyLine } from '../../../protocol/ssh-public-key.js';
import { CertificateAuthority } from '../../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS } from '../../../server/ca/certificate-template.js';
import { LocalSigner } from '../../../server/ca/local-signer.js';
import { encodeKrl } from '../../../server/revocation/krl-encoder.js';
import { generateUserKey, needsOpenSsh } from '../../fixtures/openssh.js';

/** ssh-keygen -Q: true when the certificate is revoked by the KRL. */
function revoked(krl: string, cert: string): boolean {
  try {
    execFileSync('ssh-keygen', ['-Q', '-f', krl, cert], { stdio: 'pipe' });
    return false;
  } catch (err) {
    const out = `${(err as { stdout?: Buffer }).stdout ?? ''}`;
    if (!/REVOKED/.test(out)) throw err;
    return true;
  }
}

t.test('serial lists, ranges, bitmaps, key ids and key fingerprints', needsOpenSsh, async (t) => {
  const dir = t.testdir();
  const signer = LocalSigner.openOrCreate(join(dir, 'ca.pem'), 'ed25519');
  const other = LocalSigner.openOrCreate(join(dir, 'other.pem'), 'ed25519');
  const user = generateUserKey(dir, 'ed25519', 'u');
  const spareKey = generateUserKey(dir, 'ed25519', 'spare');
  const now = Math.floor(Date.now() / 1000);
  const cert = async (serial: bigint, caSigner = signer, keyLine = user.line) => {
    const issued = await new CertificateAuthority({ signer: caSigner }).issue({
      kind: 'user', publicKey: parsePublicKeyLine(keyLine), serial, keyId: `id-${serial}`, principals: ['u'],
      validAfter: now - 60, validBefore: now + 3600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS,
    });
    const path = join(dir, `c-${serial}-${caSigner === signer ? 'a' : 'b'}-${keyLine === user.line ? 'u' : 's'}-cert.pub`);
    writeFileSync(path, `${issued.line}\n`);
    return path;
  };
  const random = [0x9fe3a1c2b4d5e6f7n, 0x1234567890abcdefn];
  const range = [1000n, 1001n, 1002n, 1003n, 1004n];
  const dense = [5000n, 5003n, 5010n, 5017n, 5020n, 5031n, 5040n, 5042n, 5063n, 5100n];
  const krl = join(dir, 'krl');
  writeFileSync(krl, encodeKrl({
    version: 7n, generatedAt: now, comment: 'test',
    certificates: [
      { caKey: signer.publicKey().blob, serials: [...random, ...range, ...dense], keyIds: ['id-777'] },
    ],
    sha256Fingerprints: [createHash('sha256').update(parsePublicKeyLine(spareKey.line).blob).digest()],
  }));
  for (const s of [...random, ...range, ...dense]) t.equal(revoked(krl, await cert(s)), true, `serial ${s} revoked`);
  for (const s of [999n, 1005n, 5001n, 5099n, 5101n, 42n]) t.equal(revoked(krl, await cert(s)), false, `serial ${s} not revoked`);
  t.equal(revoked(krl, await cert(777n)), true, 'key id revoked');
  t.equal(revoked(krl, await cert(random[0]!, other)), false, 'the same serial from another CA is not revoked');
  t.equal(revoked(krl, await cert(43n, signer, spareKey.line)), true, 'any certificate for a revoked key');
  const listing = execFileSync('ssh-keygen', ['-Q', '-l', '-f', krl], { encoding: 'utf8' });
  t.match(listing, /KRL version 7/);
  t.match(listing, /serial: 1000-1004/, 'a range section');
  t.comment(listing.split('\n').slice(0, 12).join('\n'));
  writeFileSync(join(dir, 'empty.krl'), encodeKrl({ version: 0n, generatedAt: 0, comment: '', certificates: [], sha256Fingerprints: [] }));
  t.equal(revoked(join(dir, 'empty.krl'), await cert(1000n)), false, 'an empty KRL revokes nothing');
});

// POST /v1/certs/user: bad input gets a 4xx with a stable code and nothing
// is recorded as issued; a good request gets a certificate OpenSSH accepts.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../../protocol/ssh-public-key.js';
import { SshWriter, encodeMpintMagnitude } from '../../../protocol/ssh-wire.js';
import { auditRows, postUserCert, requestCertificate, signToken, startDevServer } from '../../fixtures/dev-server.js';
import { keygenList, needsOpenSsh } from '../../fixtures/openssh.js';

const edKey = () => toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey));
const rsa1024 = () => {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  const blob = new SshWriter().string('ssh-rsa').string(encodeMpintMagnitude(Buffer.from(jwk.e!, 'base64url'))).string(encodeMpintMagnitude(Buffer.from(jwk.n!, 'base64url'))).toBuffer();
  return `ssh-rsa ${blob.toString('base64')}`;
};
const dsa = () => `ssh-dss ${new SshWriter().string('ssh-dss').string(Buffer.from([1])).string(Buffer.from([1])).string(Buffer.from([1])).string(Buffer.from([1])).toBuffer().toString('base64')}`;

t.test('a good request: 201, fields match the certificate, OpenSSH agrees, audit row written', needsOpenSsh, async (t) => {
  const dev = await startDevServer(t, { devUser: 'alice' });
  const res = await requestCertificate(dev, { publicKey: edKey(), ttlSeconds: 3600, reason: 'INC-42' });
  t.equal(res.status, 201);
  t.same(res.json.principals, ['alice']);
  const certPath = join(t.testdir(), 'c-cert.pub');
  writeFileSync(certPath, `${res.json.certificate as string}\n`);
  const listing = keygenList(certPath);
  t.equal(listing.serial, res.json.serial);
  t.equal(listing.keyId, res.json.keyId);
  t.match(listing.keyId, /arn:aws:iam::000000000000:user\/alice/, 'key id names the caller');
  t.match(listing.keyId, new RegExp(`${res.json.serial as string}`), 'key id names the serial');
  const lifetime = (Date.parse(res.json.validBefore as string) - Date.parse(res.json.validAfter as string)) / 1000;
  t.equal(lifetime, 3600 + 300, 'ttl plus the 5-minute backdate');
  const issued = auditRows(dev).filter((r) => r.kind === 'issued');
  t.equal(issued.length, 1);
  t.equal(issued[0]!.serial, res.json.serial);
  t.equal(issued[0]!.caller_arn, 'arn:aws:iam::000000000000:user/alice');
});

t.test('bad input: 4xx with a stable code, nothing issued, never a 5xx', async (t) => {
  const dev = await startDevServer(t, { devUser: 'alice' });
  const key = edKey();
  const cases: Array<[string, Record<string, unknown> | string, number, string]> = [
    ['malformed JSON', '{"publicKey": ', 400, 'REQUEST_MALFORMED_JSON'],
    ['unknown field', { publicKey: key, admin: true }, 400, 'REQUEST_INVALID'],
    ['missing public key', { principals: ['alice'] }, 400, 'REQUEST_INVALID'],
    ['public key not a string', { publicKey: 42 }, 400, 'REQUEST_INVALID'],
    ['garbage public key', { publicKey: 'ssh-ed25519 AAAA' }, 400, 'REQUEST_KEY_INVALID'],
    ['RSA 1024', { publicKey: rsa1024() }, 400, 'REQUEST_KEY_INVALID'],
    ['DSA', { publicKey: dsa() }, 400, 'REQUEST_KEY_UNSUPPORTED'],
    ['empty principals list', { publicKey: key, principals: [] }, 400, 'REQUEST_INVALID'],
    ['principal with a space', { publicKey: key, principals: ['alice bob'] }, 403, 'POLICY_PRINCIPAL_INVALID'],
    ['principal pattern', { publicKey: key, principals: ['*'] }, 403, 'POLICY_PRINCIPAL_INVALID'],
    ['principal with a comma', { publicKey: key, principals: ['alice,root'] }, 403, 'POLICY_PRINCIPAL_INVALID'],
    ['root', { publicKey: key, principals: ['root'] }, 403, 'POLICY_PRINCIPAL_DENIED'],
    ['someone else', { publicKey: key, principals: ['bob'] }, 403, 'POLICY_PRINCIPAL_DENIED'],
    ['granted plus another', { publicKey: key, principals: ['alice', 'bob'] }, 403, 'POLICY_PRINCIPAL_DENIED'],
    ['absurd TTL', { publicKey: key, ttlSeconds: 10 ** 12 }, 400, 'REQUEST_INVALID'],
    ['negative TTL', { publicKey: key, ttlSeconds: -5 }, 400, 'REQUEST_INVALID'],
    ['fractional TTL', { publicKey: key, ttlSeconds: 3600.5 }, 400, 'REQUEST_INVALID'],
    ['TTL as string', { publicKey: key, ttlSeconds: '3600' }, 400, 'REQUEST_INVALID'],
    ['TTL above the policy cap', { publicKey: key, ttlSeconds: 13 * 3600 }, 403, 'POLICY_TTL_EXCEEDED'],
  ];
  for (const [name, body, status, code] of cases) {
    const res = await requestCertificate(dev, body);
    t.equal(res.status, status, `${name}: ${status}`);
    t.equal(res.json.code, code, `${name}: ${code}`);
    t.type(res.json.requestId, 'string', `${name}: request id`);
    t.notOk('certificate' in res.json, `${name}: no certificate`);
  }
  const big = JSON.stringify({ publicKey: key, reason: 'x'.repeat(20_000) });
  const token = await signToken(dev, big);
  const oversize = await postUserCert(dev, big, [['authorization', `SSHCA-AWS4 ${token}`]]);
  t.equal(oversize.status, 413);
  t.equal(oversize.json.code, 'REQUEST_TOO_LARGE');
  t.equal(auditRows(dev).filter((r) => r.kind === 'issued').length, 0, 'nothing recorded as issued');
  t.same(
    auditRows(dev).filter((r) => r.code?.startsWith('POLICY_')).map((r) => r.code),
    cases.filter(([, , , c]) => c.startsWith('POLICY_')).map(([, , , c]) => c),
    'policy refusals are on the audit record with their codes',
  );
});

// Remaining time as `sshca status` judges and prints it: a certificate with
// 59 s left is "expiring", not "expired"; 60 s satisfies --min-valid 60;
// sshd's own whole-second rule decides "expired". Both status paths agree.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parsePublicKeyLine } from '../../protocol/ssh-public-key.js';
import { formatSeconds, remainingText, validityAt } from '../../client/certificate-validity.js';
import { status, statusText } from '../../client/status.js';
import { fastStatus } from '../../client/status-fast.js';
import { CertificateAuthority } from '../../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor } from '../../server/ca/certificate-template.js';
import { LocalSigner } from '../../server/ca/local-signer.js';
import { generateUserKey, needsOpenSsh } from '../fixtures/openssh.js';

const VALID_BEFORE = 2_000_000_000;
const cert = { validAfter: VALID_BEFORE - 3600, validBefore: VALID_BEFORE };
/** `seconds` before validBefore, in milliseconds. */
const left = (seconds: number) => (VALID_BEFORE - seconds) * 1000;

t.test('59 s, 60 s, 0 s and negative, against --min-valid 60', async (t) => {
  t.same(validityAt(cert, left(59), 60), { state: 'expiring', remainingSeconds: 59 }, '59 s left: expiring (still valid for sshd), not expired');
  t.same(validityAt(cert, left(60), 60), { state: 'valid', remainingSeconds: 60 }, '60 s left satisfies --min-valid 60');
  t.same(validityAt(cert, left(0), 60), { state: 'expired', remainingSeconds: 0 }, '0 s left: expired (sshd: now >= validBefore)');
  t.same(validityAt(cert, left(-5), 60), { state: 'expired', remainingSeconds: -5 }, '5 s past: expired');
  t.same(validityAt(cert, left(59), 0), { state: 'valid', remainingSeconds: 59 }, 'with --min-valid 0, 59 s left is simply valid');
});

t.test('fractions of a second: never more time than there is; expiry as sshd counts it', async (t) => {
  t.same(validityAt(cert, left(60) + 1, 60), { state: 'expiring', remainingSeconds: 59 }, '59.999 s left: 59, and short of 60');
  t.same(validityAt(cert, left(1) + 500, 60), { state: 'expiring', remainingSeconds: 0 }, '0.5 s left: sshd still accepts it (its second has not ended)');
  t.same(validityAt(cert, left(0) - 1, 60).state, 'expiring', 'the last millisecond before validBefore');
  t.same(validityAt(cert, left(0) + 999, 60).state, 'expired', 'within validBefore\'s own second: expired');
  t.same(validityAt(cert, left(-1) + 1, 60), { state: 'expired', remainingSeconds: -2 }, '1.001 s past: rounded down to -2');
  t.same(validityAt(cert, (cert.validAfter - 1) * 1000, 60).state, 'not-yet-valid');
  t.same(validityAt(cert, cert.validAfter * 1000, 60).state, 'valid', 'valid from validAfter itself');
});

t.test('remaining time in words', async (t) => {
  t.same([0, 59, 60, 90, 3599, 3600, 28_740, 43_200].map(formatSeconds), ['0s', '59s', '1m', '1m30s', '59m59s', '1h', '7h59m', '12h']);
  t.equal(remainingText({ state: 'expiring', remainingSeconds: 59 }), '59s left');
  t.equal(remainingText({ state: 'valid', remainingSeconds: 60 }), '1m left');
  t.equal(remainingText({ state: 'expiring', remainingSeconds: 0 }), 'less than 1s left');
  t.equal(remainingText({ state: 'expired', remainingSeconds: 0 }), 'expired just now');
  t.equal(remainingText({ state: 'expired', remainingSeconds: -300 }), 'expired 5m ago');
});

t.test('sshca status (both paths) on a real certificate with 59 s, 60 s, 0 s and -5 s left', needsOpenSsh, async (t) => {
  const home = t.testdir();
  const dir = join(home, '.ssh', 'sshca');
  mkdirSync(dir, { recursive: true });
  const key = generateUserKey(dir, 'ed25519');
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(home, 'ca.pem'), 'ed25519') });
  const issued = await ca.issue({
    kind: 'user', publicKey: parsePublicKeyLine(key.line), serial: 42n, keyId: keyIdFor('arn:test', 42n), principals: ['alice'],
    validAfter: cert.validAfter, validBefore: cert.validBefore, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS,
  });
  writeFileSync(join(dir, 'id_ed25519-cert.pub'), `${issued.line}\n`);
  const cases: Array<[number, string, number, RegExp]> = [
    [59, 'expiring', 1, /\(59s left; serial 42,/],
    [60, 'valid', 0, /\(1m left; serial 42,/],
    [0, 'expired', 1, /\(expired just now; serial 42,/],
    [-5, 'expired', 1, /\(expired 5s ago; serial 42,/],
  ];
  for (const [seconds, state, exit, line] of cases) {
    const now = new Date(left(seconds));
    let out = '';
    t.equal(fastStatus(['status'], { HOME: home, XDG_CONFIG_HOME: join(home, 'no-config') }, now, (s) => (out += s)), exit, `fast path, ${seconds} s: exit ${exit}`);
    t.match(out, new RegExp(`^${state}: alice until 2033-05-18T03:33:20.000Z `), `fast path, ${seconds} s: ${state}`);
    t.match(out, line);
    const report = await status({ home, now, minValidSeconds: 60 });
    t.equal(report.state, state, `full path, ${seconds} s: ${state}`);
    t.equal(report.remainingSeconds, seconds, `full path, ${seconds} s: remainingSeconds`);
    t.equal(statusText(report), out, `full path, ${seconds} s: the same line as the fast path`);
  }
});

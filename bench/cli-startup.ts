// `sshca status` (valid certificate) against `node -e 0`: the price of
// putting `sshca status --quiet` in every ssh_config Match line.
// Run: npm run build && node dist/bench/cli-startup.js [--runs 21]
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { publicKeyFromKeyObject } from '../protocol/ssh-public-key.js';
import { CertificateAuthority } from '../server/ca/certificate-authority.js';
import { DEFAULT_USER_EXTENSIONS, keyIdFor, randomSerial } from '../server/ca/certificate-template.js';
import { LocalSigner } from '../server/ca/local-signer.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const RUNS = Number(values.runs);
const CLI = process.env.SSHCA_CLI ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'sshca.cjs');

const home = mkdtempSync(join(tmpdir(), 'sshca-bench-'));
try {
  // A valid certificate in place, made directly with a throwaway CA.
  const now = Math.floor(Date.now() / 1000);
  const serial = randomSerial();
  const ca = new CertificateAuthority({ signer: LocalSigner.openOrCreate(join(home, 'ca.pem'), 'ed25519') });
  const issued = await ca.issue({ kind: 'user', publicKey: publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey), serial, keyId: keyIdFor('bench', serial), principals: ['bench'], validAfter: now - 60, validBefore: now + 3600, criticalOptions: {}, extensions: DEFAULT_USER_EXTENSIONS });
  mkdirSync(join(home, '.ssh', 'sshca'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'sshca', 'id_ed25519-cert.pub'), `${issued.line}\n`);

  const time = (args: string[]): number => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { env: { PATH: process.env.PATH, HOME: home }, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // Interleaved, after a warm-up, so both see the same machine state.
  time(['-e', '0']);
  time([CLI, 'status', '--quiet']);
  const base: number[] = [];
  const status: number[] = [];
  const quiet: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    base.push(time(['-e', '0']));
    status.push(time([CLI, 'status']));
    quiet.push(time([CLI, 'status', '--quiet']));
  }
  const b = median(base);
  process.stdout.write(`node ${process.version}, ${RUNS} runs each, medians:\n`);
  process.stdout.write(`  node -e 0                 ${b.toFixed(1)} ms\n`);
  for (const [name, xs] of [['sshca status', status], ['sshca status --quiet', quiet]] as const) {
    process.stdout.write(`  ${name.padEnd(25)} ${median(xs).toFixed(1)} ms  ${(median(xs) / b).toFixed(2)}x (target <= 1.30x)\n`);
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}

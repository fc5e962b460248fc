// KRL build time and size for 1, 1 000 and 100 000 revoked serials: random
// 64-bit serials (what sshca issues: a serial list) and a dense block
// (what ranges and bitmaps are for). Run: npm run bench:krl
import { randomBytes } from 'node:crypto';
import { encodeKrl } from '../server/revocation/krl-encoder.js';

const caKey = randomBytes(51);
const row = (name: string, serials: bigint[]) => {
  const runs = serials.length > 10_000 ? 5 : 50;
  let bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) bytes = encodeKrl({ version: 1n, generatedAt: 0, comment: '', certificates: [{ caKey, serials, keyIds: [] }], sha256Fingerprints: [] }).length;
  const ms = (performance.now() - t0) / runs;
  process.stdout.write(`${name.padEnd(28)} ${String(serials.length).padStart(7)} ${ms.toFixed(2).padStart(10)} ms ${String(bytes).padStart(10)} bytes\n`);
};
process.stdout.write(`KRL encode, node ${process.version}\nkind                          serials      build          size\n`);
for (const n of [1, 1000, 100_000]) row('random 64-bit serials', Array.from({ length: n }, () => randomBytes(8).readBigUInt64BE() | 1n));
for (const n of [1000, 100_000]) row('dense (every other serial)', Array.from({ length: n }, (_, i) => 1_000_000n + BigInt(2 * i)));
for (const n of [1000, 100_000]) row('consecutive block', Array.from({ length: n }, (_, i) => 5_000_000n + BigInt(i)));

// The yardstick sshca is compared with: a shell CA, which runs `ssh-keygen -s`
// once per certificate. The CA key is made by ssh-keygen; each certificate
// signs a different user key (generated before the clock starts: the user
// brings it); as many processes run at once as there are CPUs.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { publicKeyFromKeyObject, toOpenSshLine } from '../../protocol/ssh-public-key.js';

const run = promisify(execFile);

/** What ssh-keygen managed. */
export interface KeygenRate {
  readonly certs: number;
  readonly parallel: number;
  readonly seconds: number;
  readonly certsPerSecond: number;
}

/** ssh-keygen's -t/-b for sshca's --ca-key-type, so both sign with the same kind of key. */
const KEYGEN_TYPE: Readonly<Record<string, readonly string[]>> = {
  ed25519: ['-t', 'ed25519'],
  'ecdsa-p256': ['-t', 'ecdsa', '-b', '256'],
  'ecdsa-p384': ['-t', 'ecdsa', '-b', '384'],
  'ecdsa-p521': ['-t', 'ecdsa', '-b', '521'],
  'rsa-4096': ['-t', 'rsa', '-b', '4096'],
};

/** Issues `certs` user certificates in `dir`, one `ssh-keygen -s` process each. */
export async function sshKeygenRate(dir: string, options: { certs: number; caKeyType: string; parallel?: number }): Promise<KeygenRate> {
  const parallel = options.parallel ?? availableParallelism();
  const ca = join(dir, 'ca');
  await run('ssh-keygen', ['-q', ...(KEYGEN_TYPE[options.caKeyType] ?? KEYGEN_TYPE.ed25519!), '-N', '', '-C', 'bench-ca', '-f', ca]);
  for (let i = 0; i < options.certs; i++) {
    writeFileSync(join(dir, `user-${i}.pub`), `${toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey))} user-${i}\n`);
  }
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < options.certs; i = next++) {
        await run('ssh-keygen', ['-q', '-s', ca, '-I', `bench-${i}`, '-n', 'bench', '-V', '+1h', '-z', String(i + 1), join(dir, `user-${i}.pub`)]);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (let i = 0; i < options.certs; i++) {
    if (!existsSync(join(dir, `user-${i}-cert.pub`))) throw new Error(`ssh-keygen wrote no certificate for user-${i}`);
  }
  return { certs: options.certs, parallel, seconds, certsPerSecond: options.certs / seconds };
}

// Certificates issued per second by the embedded default (`sshca-server
// --dev`), per CA key type and concurrency. Tokens are signed before the
// clock starts so the figure is the server's: authenticate (incl. the
// loopback STS replay) → decide → sign → verify → SQLite commit.
// Run: npm run bench [-- --requests 400]. Rate limits are off: all requests come from one address.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IdentityTokenSigner } from '../client/identity-token-signer.js';
import { publicKeyFromKeyObject, toOpenSshLine } from '../protocol/ssh-public-key.js';
import { loadConfig } from '../server/config.js';
import { startServer } from '../server/main.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' } } });
const REQUESTS = Number(values.requests);

async function run(caKeyType: string, concurrency: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sshca-bench-'));
  const server = await startServer(loadConfig(['--dev', '--port', '0', '--data-dir', dir, '--dev-user', 'bench', '--ca-key-type', caKeyType], { SSHCA_LOG_LEVEL: 'silent', SSHCA_RATE_LIMIT_PER_MINUTE: '0' }, 'bench', dir), { logger: false });
  try {
    const info = (await (await fetch(`${server.url}/v1/ca`)).json()) as { audience: string; stsEndpoints: string[] };
    const signer = new IdentityTokenSigner({ profile: 'sshca-dev' });
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'aws-credentials');
    const work = await Promise.all(
      Array.from({ length: REQUESTS }, async () => {
        const body = JSON.stringify({ publicKey: toOpenSshLine(publicKeyFromKeyObject(generateKeyPairSync('ed25519').publicKey)) });
        const token = await signer.sign({ endpoint: info.stsEndpoints[0]!, audience: info.audience, method: 'POST', pathAndQuery: '/v1/certs/user', body });
        return { body, token };
      }),
    );
    const latencies: number[] = [];
    let next = 0;
    let failures = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < work.length) {
          const item = work[next++]!;
          const t0 = performance.now();
          const res = await fetch(`${server.url}/v1/certs/user`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `SSHCA-AWS4 ${item.token}` }, body: item.body });
          await res.arrayBuffer();
          if (res.status !== 201) failures++;
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
    return `${caKeyType.padEnd(11)} ${String(concurrency).padStart(4)} ${String(REQUESTS).padStart(6)} ${(REQUESTS / seconds).toFixed(0).padStart(8)} ${pct(0.5).padStart(8)} ${pct(0.99).padStart(8)} ${String(failures).padStart(6)}`;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(`sshca dev server, ${REQUESTS} requests per row, node ${process.version}\n`);
process.stdout.write('CA key      conc  reqs   certs/s  p50 ms   p99 ms  fails\n');
for (const caKeyType of ['ed25519', 'ecdsa-p256', 'rsa-4096']) {
  for (const concurrency of [1, 8]) process.stdout.write(`${await run(caKeyType, concurrency)}\n`);
}

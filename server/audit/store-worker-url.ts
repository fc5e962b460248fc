// Where the SQLite store's worker thread starts from. Built (dist/), that is
// the compiled sqlite-store-worker.js beside this file. Run from TypeScript
// source (the tests, under tap's loader) a worker would load the TypeScript
// compiler again, about 1.5 s per thread; there it is bundled once with
// esbuild (a devDependency, never needed by a built server) instead.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let bundled: URL | undefined;

/** The worker's entry and how to start it. */
export function storeWorker(): { url: URL; execArgv?: string[] } {
  if (!import.meta.url.endsWith('.ts')) return { url: new URL('./sqlite-store-worker.js', import.meta.url) };
  bundled ??= bundleFromSource();
  // Without the parent's --import hooks: they are what would load the compiler.
  return { url: bundled, execArgv: [] };
}

function bundleFromSource(): URL {
  const here = dirname(fileURLToPath(import.meta.url));
  const esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const { outputFiles } = esbuild.buildSync({ entryPoints: [join(here, 'sqlite-store-worker.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', write: false, logLevel: 'silent' });
  const code = outputFiles[0]!.contents;
  // Inside the repository's node_modules, so the bundle's own imports (better-sqlite3) resolve.
  const dir = join(here, '..', '..', 'node_modules', '.cache', 'sshca');
  const file = join(dir, `sqlite-store-worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  mkdirSync(dir, { recursive: true });
  let current: Buffer | undefined;
  try {
    current = readFileSync(file);
  } catch {
    current = undefined;
  }
  if (!current?.equals(code)) writeFileSync(file, code);
  return pathToFileURL(file);
}

// Bundles the `sshca` command into dist/cli/ so it starts fast: a small
// CommonJS entry (CommonJS starts faster than an ES module) that answers
// `sshca status` by itself, and the full CLI as an ES module with every
// lazily imported part (login, the AWS SDK, audit) in chunks of its own.
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'cli');
rmSync(out, { recursive: true, force: true });
// `sshca --version`: the version is compiled in (the bundle has no package.json beside it).
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', define: { SSHCA_VERSION: JSON.stringify(version) } };

await build({
  ...common,
  entryPoints: [join(root, 'client', 'cli.ts')],
  outdir: join(out, 'main'),
  splitting: true,
  format: 'esm',
  chunkNames: 'chunks/[name]-[hash]',
  // Some CommonJS dependencies call require(); give the ES module bundle one.
  banner: { js: "import { createRequire as __sshcaCreateRequire } from 'node:module'; const require = __sshcaCreateRequire(import.meta.url);" },
});
await build({
  ...common,
  entryPoints: [join(root, 'client', 'bin', 'sshca.ts')],
  outfile: join(out, 'sshca.cjs'),
  format: 'cjs',
  define: { ...common.define, SSHCA_CLI_MAIN: JSON.stringify('./main/cli.js') },
});
writeFileSync(join(out, 'main', 'package.json'), '{ "type": "module" }\n');
chmodSync(join(out, 'sshca.cjs'), 0o755);

// Bundles the `sshca` command into client/dist/, the content of the client
// package (client/package.json; `npm pack` in client/ ships it). It starts
// fast: a small CommonJS entry (CommonJS starts faster than an ES module) that
// answers `sshca status` by itself, and the full CLI as an ES module with
// every lazily imported part (login, the AWS SDK, audit) in chunks of its
// own. Everything it imports is inside the bundle, so the package has no
// dependencies: installing it fetches and compiles nothing.
// The same files are copied to dist/cli/, where the repository's tests, the
// demo and the CLI benchmark run them.
import { build } from 'esbuild';
import { chmodSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'client', 'dist');
const copy = join(root, 'dist', 'cli');
rmSync(out, { recursive: true, force: true });
rmSync(copy, { recursive: true, force: true });
// `sshca --version`: the client package's version, compiled in (the bundle
// reads no package.json at run time). One version for the repository: a bump
// of one package.json without the other stops the build here.
const version = JSON.parse(readFileSync(join(root, 'client', 'package.json'), 'utf8')).version;
const rootVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
if (version !== rootVersion) throw new Error(`client/package.json has version ${version}, package.json ${rootVersion}: set both to the same version`);
// `sshca audit ui`'s page (client/audit-ui/) and uPlot, compiled in: the package ships no loose files.
const require = createRequire(import.meta.url);
const uiFiles = {
  'index.html': join(root, 'client', 'audit-ui', 'index.html'),
  'app.js': join(root, 'client', 'audit-ui', 'app.js'),
  'style.css': join(root, 'client', 'audit-ui', 'style.css'),
  'uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};
const uiAssets = Object.fromEntries(Object.entries(uiFiles).map(([name, path]) => [name, readFileSync(path, 'utf8')]));
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning', define: { SSHCA_VERSION: JSON.stringify(version), SSHCA_UI_ASSETS: JSON.stringify(uiAssets) } };

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
cpSync(out, copy, { recursive: true });

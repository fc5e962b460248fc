// The audit view's static files: compiled into the bundle (scripts/bundle-cli.mjs
// defines SSHCA_UI_ASSETS, so the client package ships no loose files and
// needs no dependency), or read from the repository when run unbundled.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** File name → content, set by the bundler. */
declare const SSHCA_UI_ASSETS: Readonly<Record<string, string>> | undefined;

/** The page's own files, and uPlot's (from npm), served under these names. */
export const UI_FILES: Readonly<Record<string, string>> = {
  'index.html': 'client/audit-ui/index.html',
  'app.js': 'client/audit-ui/app.js',
  'style.css': 'client/audit-ui/style.css',
  'uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

export interface UiAsset {
  readonly type: string;
  readonly body: string;
}

const TYPES: Readonly<Record<string, string>> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** Reads the files from a checkout: the page beside this module's source, uPlot from node_modules. */
async function fromCheckout(): Promise<Record<string, string>> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  // client/ (TypeScript source) or dist/client/ (compiled): the page lives in client/audit-ui/.
  const page = [new URL('./audit-ui/', import.meta.url), new URL('../../client/audit-ui/', import.meta.url)].map((u) => fileURLToPath(u)).find((dir) => existsSync(dir));
  if (!page) throw new Error(`the audit view's files are not beside ${here}`);
  const require = createRequire(import.meta.url);
  const entries = await Promise.all(
    Object.entries(UI_FILES).map(async ([name, source]) => [name, await readFile(source.startsWith('client/') ? `${page}${source.slice('client/audit-ui/'.length)}` : require.resolve(source), 'utf8')] as const),
  );
  return Object.fromEntries(entries);
}

/** Every file of the page by URL path (`/app.js`), with its content type. */
export async function loadUiAssets(): Promise<Map<string, UiAsset>> {
  const files = typeof SSHCA_UI_ASSETS !== 'undefined' ? SSHCA_UI_ASSETS : await fromCheckout();
  return new Map(Object.entries(files).map(([name, body]) => [`/${name}`, { type: TYPES[name.split('.').at(-1)!] ?? 'application/octet-stream', body }]));
}

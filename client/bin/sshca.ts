#!/usr/bin/env node
// `sshca` entry point. `status` is answered here, synchronously, without
// loading the rest of the CLI; every other command loads it on demand.
import { fastStatus } from '../status-fast.js';

/** Where the full CLI is: set by the bundler (scripts/bundle-cli.mjs), else the tsc build. */
declare const SSHCA_CLI_MAIN: string | undefined;

// The AWS SDK prints a multi-line notice on Node < 22 at every login; users
// cannot act on it mid-login. Operators are told in docs/client.md instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const argv = process.argv.slice(2);
const fast = fastStatus(argv, process.env, new Date(), (s) => process.stdout.write(s));
if (fast !== undefined) {
  process.exitCode = fast;
} else {
  const specifier = typeof SSHCA_CLI_MAIN === 'string' ? SSHCA_CLI_MAIN : '../cli.js';
  void (import(specifier) as Promise<typeof import('../cli.js')>).then(async ({ main }) => {
    process.exitCode = await main(argv, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), env: process.env, now: () => new Date() });
  });
}

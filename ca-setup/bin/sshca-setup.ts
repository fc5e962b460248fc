#!/usr/bin/env node
// `sshca-setup` entry point.
import { main } from '../cli.js';

// The AWS SDK prints a multi-line notice on Node < 22 with every KMS call;
// an operator cannot act on it mid-command (docs/ca-keys.md says it once).
// Set before main() builds a client, which is when it is printed.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
});

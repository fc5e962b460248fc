#!/usr/bin/env node
// `sshca` entry point.
import { main } from '../cli.js';

// The AWS SDK prints a multi-line notice on Node < 22 at every login; users
// cannot act on it mid-login. Operators are told in docs/client.md instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  now: () => new Date(),
});

#!/usr/bin/env node
// `sshca-setup` entry point.
import { main } from '../cli.js';

process.exitCode = await main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
});

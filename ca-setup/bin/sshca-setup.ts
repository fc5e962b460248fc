#!/usr/bin/env node
// `sshca-setup` entry point: creating and exporting CA keys in KMS arrives
// with the KMS issue; until then it says so instead of pretending.
process.stderr.write('sshca-setup: KMS key management is not available yet; the embedded default (sshca-server --dev) keeps its CA key under .sshca-dev/ca/\n');
process.exitCode = 2;

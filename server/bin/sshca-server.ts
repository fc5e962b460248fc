#!/usr/bin/env node
// `sshca-server` entry point: `sshca-server policy …` tests a policy file
// (policy-command.ts); anything else starts the service (main.ts). Each is
// imported only when used, so checking a policy in CI loads no store, KMS
// or Fastify, and starting the service loads nothing of the policy tools.
const argv = process.argv.slice(2);

if (argv[0] === 'policy') {
  const { policyCommand } = await import('../policy/policy-command.js');
  process.exitCode = await policyCommand(argv.slice(1), {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
} else {
  const { main } = await import('../main.js');
  process.exitCode = await main(argv, process.env);
}

// The `sshca` command: argument parsing and output. Logic lives in the
// command modules; this file only wires flags to them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ClientError, EXIT } from './client-error.js';
import { durationFlag } from './duration.js';
import { login } from './login.js';
import { status } from './status.js';

export const USAGE = `usage:
  sshca login [--server URL] [--profile AWS_PROFILE] [--principal P]... [--ttl 8h] [--reason TEXT] [--key PATH] [--json]
  sshca status [--key PATH] [--json]

SSHCA_SERVER and AWS_PROFILE are read when the flags are absent.
exit codes: 0 ok, 1 no valid certificate (status), 2 usage, 3 refused by the server,
            4 server unreachable or unavailable, 5 AWS credentials problem, 6 local failure`;

interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => Date;
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', (err as Error).message);
  }
}

async function runLogin(args: readonly string[], io: Io): Promise<number> {
  const { values: o } = parse(args, {
    server: { type: 'string' },
    profile: { type: 'string' },
    principal: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    reason: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
  });
  const server = (o.server as string | undefined) ?? io.env.SSHCA_SERVER;
  if (!server) throw new ClientError('CLIENT_USAGE', 'no server: pass --server URL or set SSHCA_SERVER');
  const profile = (o.profile as string | undefined) ?? io.env.AWS_PROFILE;
  const result = await login({
    server,
    ...(profile ? { profile } : {}),
    ...(o.principal ? { principals: o.principal as string[] } : {}),
    ...(o.ttl !== undefined ? { ttlSeconds: durationFlag(o.ttl as string, '--ttl') } : {}),
    ...(o.reason !== undefined ? { reason: o.reason as string } : {}),
    ...(o.key !== undefined ? { key: o.key as string } : {}),
    ...(io.env.HOME ? { home: io.env.HOME } : {}),
  });
  if (o.json) io.stdout(`${JSON.stringify(result)}\n`);
  else io.stdout(`certificate for ${result.principals.join(', ')} valid until ${result.validBefore} (serial ${result.serial})\n  ${result.certificatePath}\n`);
  return EXIT.ok;
}

async function runStatus(args: readonly string[], io: Io): Promise<number> {
  const { values: o } = parse(args, { key: { type: 'string' }, json: { type: 'boolean' } });
  const report = await status({
    ...(o.key !== undefined ? { key: o.key as string } : {}),
    ...(io.env.HOME ? { home: io.env.HOME } : {}),
    now: io.now(),
    minValidSeconds: 60,
  });
  if (o.json) io.stdout(`${JSON.stringify(report)}\n`);
  else if (report.principals) io.stdout(`${report.state}: ${report.principals.join(', ')} until ${report.validBefore} (serial ${report.serial}, CA ${report.caFingerprint})\n`);
  else io.stdout(`${report.state}: ${report.certificatePath}\n`);
  return report.state === 'valid' ? EXIT.ok : EXIT.notValid;
}

/** Runs `sshca <argv>`; returns the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'login':
        return await runLogin(rest, io);
      case 'status':
        return await runStatus(rest, io);
      case undefined:
      case '--help':
      case 'help':
        io.stdout(`${USAGE}\n`);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new ClientError('CLIENT_USAGE', `unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof ClientError) {
      io.stderr(`sshca: ${err.message} [${err.code}]\n`);
      if (err.code === 'CLIENT_USAGE') io.stderr(`${USAGE}\n`);
      return err.exitCode;
    }
    io.stderr(`sshca: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.local;
  }
}

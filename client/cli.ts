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
  sshca audit list [--kind issued|refused] [--principal P] [--caller ARN] [--account ID] [--serial N]
                   [--fingerprint SHA256:…] [--since T] [--until T] [--limit N] [--before SEQ] [--json]   (auditor role)
  sshca audit export [--output FILE]                                                                 (auditor role)
  sshca audit verify [--file FILE --checkpoint-key JWK_FILE]   (no --file: fetch and verify the server's record)

SSHCA_SERVER and AWS_PROFILE are read when the flags are absent.
exit codes: 0 ok, 1 no valid certificate (status) or a record that does not verify (audit verify), 2 usage, 3 refused by the server,
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

function serverOf(o: Record<string, unknown>, io: Io): string {
  const server = (o.server as string | undefined) ?? io.env.SSHCA_SERVER;
  if (!server) throw new ClientError('CLIENT_USAGE', 'no server: pass --server URL or set SSHCA_SERVER');
  return server;
}

function integerFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) throw new ClientError('CLIENT_USAGE', `${flag} must be a whole number`);
  return Number(value);
}

async function runAudit(args: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const common = { server: { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' } } as const;
  const audit = await import('./audit.js');
  if (sub === 'list') {
    const filterOptions = Object.fromEntries(audit.AUDIT_FILTERS.map((f) => [f, { type: 'string' as const }]));
    const { values: o } = parse(rest, { ...common, ...filterOptions, limit: { type: 'string' }, before: { type: 'string' } });
    const profile = (o.profile as string | undefined) ?? io.env.AWS_PROFILE;
    const limit = integerFlag(o.limit, '--limit');
    const before = integerFlag(o.before, '--before');
    const page = await audit.auditList({
      server: serverOf(o, io),
      ...(profile ? { profile } : {}),
      filters: Object.fromEntries(audit.AUDIT_FILTERS.filter((f) => o[f] !== undefined).map((f) => [f, o[f] as string])),
      ...(limit !== undefined ? { limit } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    if (o.json) io.stdout(`${JSON.stringify(page)}\n`);
    else {
      for (const r of page.records) {
        const d = r.data as Record<string, unknown>;
        const what = r.kind === 'issued' ? `serial ${String(d.serial)} principals ${(d.principals as string[]).join(',')}` : String(d.code);
        io.stdout(`#${r.seq} ${r.at} ${r.kind.padEnd(7)} ${String(d.callerArn ?? '(unknown caller)')} ${what}\n`);
      }
      if (page.nextBefore !== undefined) io.stdout(`more: sshca audit list --before ${page.nextBefore}\n`);
    }
    return EXIT.ok;
  }
  if (sub === 'export') {
    const { values: o } = parse(rest, { ...common, output: { type: 'string' } });
    const profile = (o.profile as string | undefined) ?? io.env.AWS_PROFILE;
    const text = await audit.auditExport({ server: serverOf(o, io), ...(profile ? { profile } : {}) });
    if (o.output) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(o.output as string, text, { mode: 0o600 });
    } else io.stdout(text);
    return EXIT.ok;
  }
  if (sub === 'verify') {
    const { values: o } = parse(rest, { ...common, file: { type: 'string' }, 'checkpoint-key': { type: 'string' } });
    const profile = (o.profile as string | undefined) ?? io.env.AWS_PROFILE;
    const server = (o.server as string | undefined) ?? io.env.SSHCA_SERVER;
    const outcome = await audit.auditVerify({
      ...(server ? { server } : {}),
      ...(profile ? { profile } : {}),
      ...(o.file ? { file: o.file as string } : {}),
      ...(o['checkpoint-key'] ? { checkpointKey: o['checkpoint-key'] as string } : {}),
    });
    if (o.json) io.stdout(`${JSON.stringify(outcome)}\n`);
    if (!outcome.ok) {
      io.stderr(`sshca: audit record ${outcome.failure.seq}: ${outcome.failure.message} [AUDIT_${outcome.failure.reason.toUpperCase().replace('-', '_')}]\n`);
      return EXIT.notValid;
    }
    if (!o.json) io.stdout(`verified ${outcome.count} records; head signed at ${outcome.headAt}\n`);
    return EXIT.ok;
  }
  throw new ClientError('CLIENT_USAGE', `unknown audit command ${JSON.stringify(sub ?? '')}`);
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
      case 'audit':
        return await runAudit(rest, io);
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

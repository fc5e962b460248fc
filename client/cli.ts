// The `sshca` command: argument parsing and output. Logic lives in the
// command modules; this file only wires flags to them. Modules that need
// the AWS SDK are imported only by the commands that sign.
import { homedir } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { COMMAND_HELP, clientVersion, wantsHelp } from './cli-help.js';
import { ClientError, EXIT, errorJson, errorLine, warningLine } from './client-error.js';
import { rememberLoginFlags, resolveSettings, requireServer, type ClientSettings } from './client-settings.js';
import type { CommandIo } from './cli-ssh.js';
import { durationFlag } from './duration.js';
import { parseHostPatterns } from './host-patterns.js';
import { status, statusText } from './status.js';

export const USAGE = `usage:
  sshca login  [--server URL] [--profile P] [--principal P]... [--ttl 8h] [--reason TEXT] [--key PATH] [--no-agent] [--no-save] [--quiet] [--json]
  sshca status [--key PATH] [--min-valid 1m] [--check-revocation [--server URL]] [--quiet] [--json]   (local only: no AWS; no network unless --check-revocation)
  sshca ssh    [--server URL] [--profile P] [--key PATH] [--] SSH-ARGS...   (logs in first when needed; strict host key checking)
  sshca config [--server URL] [--host 'P1,P2' | --all-hosts] [--write | --remove] [--json]
                                                                      (~/.ssh/config block, host CA trust, revoked host keys)
  sshca logout [--key PATH] [--json]
  sshca ca     [--server URL] [--host] [--json]
  sshca revoke (--serial N | --key-id ID | --public-key FILE | --withdraw ID) --reason TEXT [--json]   (admin role)
  sshca audit  list|active|export|verify|anchor|ui ...                 (auditor role; see docs/audit.md)
  sshca --version | sshca <command> --help | sshca help <command>

Settings: flags, then SSHCA_SERVER / AWS_PROFILE, then ~/.config/sshca/config.json {"server","profile","key","hostPatterns"};
  the first successful login saves its --server and --profile there (not with --no-save).
exit codes: 0 ok, 1 no valid certificate (status) or a record that does not verify (audit verify), 2 usage,
            3 refused by the server (or clock skew), 4 server unreachable or unavailable, 5 AWS credentials problem,
            6 local failure; sshca ssh exits with ssh's own code`;

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', (err as Error).message);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function settingsFrom(o: Record<string, unknown>, env: NodeJS.ProcessEnv): ClientSettings {
  const flags = { server: str(o.server), profile: str(o.profile), key: str(o.key) };
  return resolveSettings(Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)), env);
}

async function runLogin(args: readonly string[], io: CommandIo): Promise<number> {
  const { values: o } = parse(args, {
    server: { type: 'string' }, profile: { type: 'string' }, principal: { type: 'string', multiple: true }, ttl: { type: 'string' },
    reason: { type: 'string' }, key: { type: 'string' }, 'no-agent': { type: 'boolean' }, 'no-save': { type: 'boolean' }, quiet: { type: 'boolean' }, json: { type: 'boolean' },
  });
  const settings = settingsFrom(o, io.env);
  const { login } = await import('./login.js');
  const result = await login({
    server: requireServer(settings),
    ...(settings.profile ? { profile: settings.profile } : {}),
    ...(settings.key ? { key: settings.key } : {}),
    ...(o.principal ? { principals: o.principal as string[] } : {}),
    ...(o.ttl !== undefined ? { ttlSeconds: durationFlag(o.ttl as string, '--ttl') } : {}),
    ...(o.reason !== undefined ? { reason: o.reason as string } : {}),
    ...(io.env.HOME ? { home: io.env.HOME } : {}),
    env: io.env,
    noAgent: o['no-agent'] === true,
    // Retries are said wherever stderr goes; "waiting for …" only on a terminal, where someone watches.
    ...(o.quiet ? {} : { notice: io.stderr, ...(process.stderr.isTTY ? { waiting: io.stderr } : {}) }),
  });
  if (result.hostTrust?.warning) io.stderr(warningLine(result.hostTrust.warning));
  if (result.agentWarning) io.stderr(warningLine(result.agentWarning));
  // Only flags are remembered: SSHCA_SERVER / AWS_PROFILE stay the environment's.
  const remembered = o['no-save'] === true ? undefined : rememberLoginFlags(io.env, { ...(str(o.server) ? { server: str(o.server) } : {}), ...(str(o.profile) ? { profile: str(o.profile) } : {}) });
  if (o.json) io.stdout(`${JSON.stringify({ ...result, ...(remembered ? { remembered: { ...remembered.saved, settingsFile: remembered.path } } : {}) })}\n`);
  else if (!o.quiet) {
    io.stdout(`certificate for ${result.principals.join(', ')} valid until ${result.validBefore} (serial ${result.serial})\n  ${result.certificatePath}\n`);
    if (result.agentLifetimeSeconds !== undefined) io.stdout(`  added to ssh-agent for ${result.agentLifetimeSeconds}s\n`);
    const updated = [result.hostTrust?.knownHosts === 'updated' ? 'host CA keys' : '', result.hostTrust?.revokedHostKeys === 'updated' ? 'revoked host keys' : ''].filter(Boolean);
    if (updated.length) io.stdout(`  updated ${updated.join(' and ')} (~/.ssh/sshca/)\n`);
    if (remembered) io.stdout(`  remembered ${Object.keys(remembered.saved).join(' and ')} in ${remembered.path} (next time: sshca login)\n`);
  }
  return EXIT.ok;
}

async function runStatus(args: readonly string[], io: CommandIo): Promise<number> {
  const { values: o } = parse(args, { server: { type: 'string' }, key: { type: 'string' }, 'min-valid': { type: 'string' }, 'check-revocation': { type: 'boolean' }, quiet: { type: 'boolean' }, json: { type: 'boolean' } });
  const settings = settingsFrom(o, io.env);
  const report = await status({
    ...(settings.key ? { key: settings.key } : {}),
    ...(io.env.HOME ? { home: io.env.HOME } : {}),
    now: io.now(),
    minValidSeconds: o['min-valid'] !== undefined ? durationFlag(o['min-valid'] as string, '--min-valid') : 60,
    ...(o['check-revocation'] ? { checkRevocation: { server: requireServer(settings), home: io.env.HOME ?? homedir() } } : {}),
  });
  if (report.revocationWarning && !o.quiet) io.stderr(warningLine(report.revocationWarning));
  if (o.json) io.stdout(`${JSON.stringify(report)}\n`);
  else if (o.quiet) {
    // exit code only: for `Match exec` in ssh_config
  } else io.stdout(statusText(report));
  return report.state === 'valid' ? EXIT.ok : EXIT.notValid;
}

/** `sshca ssh [sshca flags] [--] ssh args`: sshca's own flags come first. */
async function runSshCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const own: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!['--server', '--profile', '--key'].includes(a)) break;
    own.push(a, args[++i] ?? '');
  }
  const { values: o } = parse(own, { server: { type: 'string' }, profile: { type: 'string' }, key: { type: 'string' } });
  const sshArgs = args.slice(i);
  if (sshArgs.length === 0) throw new ClientError('CLIENT_USAGE', 'sshca ssh needs ssh arguments (at least a host)');
  const { runSsh } = await import('./cli-ssh.js');
  return runSsh(settingsFrom(o, io.env), sshArgs, io);
}

/** Runs `sshca <argv>`; returns the exit code. */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    // `sshca ssh` passes its arguments on: only a leading --help is ours (`sshca ssh host ls --help` is ls's).
    const helpAsked = command === 'ssh' ? ['--help', '-h'].includes(rest[0] ?? '') : wantsHelp(rest);
    if (command !== undefined && Object.hasOwn(COMMAND_HELP, command) && helpAsked) {
      io.stdout(`${COMMAND_HELP[command]!}\n`);
      return EXIT.ok;
    }
    switch (command) {
      case 'login':
        return await runLogin(rest, io);
      case 'status':
        return await runStatus(rest, io);
      case 'ssh':
        return await runSshCommand(rest, io);
      case 'config': {
        const { values: o } = parse(rest, {
          server: { type: 'string' }, key: { type: 'string' }, host: { type: 'string' }, 'all-hosts': { type: 'boolean' }, write: { type: 'boolean' }, remove: { type: 'boolean' }, json: { type: 'boolean' },
        });
        if (o.write && o.remove) throw new ClientError('CLIENT_USAGE', '--write and --remove exclude each other');
        const allHosts = o['all-hosts'] === true;
        const hostPatterns = o.host !== undefined ? parseHostPatterns(o.host as string, allHosts) : allHosts ? ['*'] : undefined;
        const { runConfig } = await import('./cli-ssh.js');
        return await runConfig(settingsFrom(o, io.env), { write: o.write === true, remove: o.remove === true, ...(hostPatterns ? { hostPatterns } : {}), json: o.json === true }, io);
      }
      case 'logout': {
        const { values: o } = parse(rest, { key: { type: 'string' }, json: { type: 'boolean' } });
        const { runLogout } = await import('./cli-ssh.js');
        return await runLogout(settingsFrom(o, io.env), io, o.json === true);
      }
      case 'ca': {
        const { values: o } = parse(rest, { server: { type: 'string' }, host: { type: 'boolean' }, json: { type: 'boolean' } });
        const { caInfo } = await import('./cli-ssh.js');
        const info = await caInfo(settingsFrom(o, io.env));
        const keys = o.host ? info.hostCaKeys : info.userCaKeys;
        io.stdout(o.json ? `${JSON.stringify(o.host ? { hostCaKeys: keys } : { userCaKeys: keys })}\n` : keys.map((k) => `${k}\n`).join(''));
        return EXIT.ok;
      }
      case 'revoke': {
        const { values: o } = parse(rest, { server: { type: 'string' }, profile: { type: 'string' }, serial: { type: 'string' }, 'key-id': { type: 'string' }, 'public-key': { type: 'string' }, withdraw: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } });
        const targets = [o.serial, o['key-id'], o['public-key'], o.withdraw].filter((x) => x !== undefined);
        if (targets.length !== 1) throw new ClientError('CLIENT_USAGE', 'name exactly one of --serial, --key-id, --public-key, --withdraw');
        if (!str(o.reason)) throw new ClientError('CLIENT_USAGE', '--reason is required: it goes on the audit record');
        if (o.withdraw !== undefined && !/^[1-9]\d{0,14}$/.test(o.withdraw as string)) throw new ClientError('CLIENT_USAGE', '--withdraw takes the id a revocation printed');
        const settings = settingsFrom(o, io.env);
        let publicKey: string | undefined;
        if (o['public-key'] !== undefined) {
          const { readFile } = await import('node:fs/promises');
          publicKey = (await readFile(o['public-key'] as string, 'utf8').catch((err: Error) => {
            throw new ClientError('CLIENT_USAGE', `cannot read --public-key: ${err.message}`);
          })).trim();
        }
        const { openSignedSession } = await import('./signed-session.js');
        const { api, signer, endpoint } = await openSignedSession(requireServer(settings), settings.profile);
        if (o.withdraw !== undefined) {
          const result = (await api.signedPost(`/v1/revocations/${o.withdraw as string}/withdrawal`, { reason: o.reason }, signer, endpoint)) as { id: string; withdrawn: string; krlVersion: string | null };
          io.stdout(o.json ? `${JSON.stringify(result)}\n` : `withdrew revocation ${result.withdrawn}; KRL version ${result.krlVersion ?? '(rebuilt at the next fetch)'} (instances pick it up at their next refresh)\n`);
          return EXIT.ok;
        }
        const result = (await api.signedPost('/v1/revocations', { ...(o.serial ? { serial: o.serial } : {}), ...(o['key-id'] ? { keyId: o['key-id'] } : {}), ...(publicKey ? { publicKey } : {}), reason: o.reason }, signer, endpoint)) as { id: string; revoked: Record<string, unknown>; krlVersion: string | null };
        io.stdout(o.json ? `${JSON.stringify(result)}\n` : `revoked ${JSON.stringify(result.revoked)} as revocation ${result.id} (withdraw with: sshca revoke --withdraw ${result.id} --reason …); KRL version ${result.krlVersion ?? '(rebuilt at the next fetch)'} (instances pick it up at their next refresh)\n`);
        return EXIT.ok;
      }
      case 'audit': {
        const { runAudit } = await import('./cli-audit.js');
        return await runAudit(rest, io);
      }
      case '--version':
      case 'version':
        io.stdout(`sshca ${clientVersion()}\n`);
        return EXIT.ok;
      case 'help':
        if (rest[0] !== undefined && Object.hasOwn(COMMAND_HELP, rest[0])) {
          io.stdout(`${COMMAND_HELP[rest[0]]!}\n`);
          return EXIT.ok;
        }
        io.stdout(`${USAGE}\n`);
        return EXIT.ok;
      case undefined:
      case '--help':
      case '-h':
        io.stdout(`${USAGE}\n`);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new ClientError('CLIENT_USAGE', `unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof ClientError) {
      io.stderr(errorLine(err));
      if (argv.includes('--json')) io.stdout(errorJson(err));
      if (err.code === 'CLIENT_USAGE') io.stderr(`${USAGE}\n`);
      return err.exitCode;
    }
    io.stderr(`sshca: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.local;
  }
}

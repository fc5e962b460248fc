// `sshca audit list|export|verify` argument handling and output.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AUDIT_FILTERS, auditExport, auditList, auditVerify } from './audit.js';
import { ClientError, EXIT } from './client-error.js';
import { requireServer, resolveSettings } from './client-settings.js';
import type { CommandIo } from './cli-ssh.js';

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ClientError('CLIENT_USAGE', (err as Error).message);
  }
}

function integerFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) throw new ClientError('CLIENT_USAGE', `${flag} must be a whole number`);
  return Number(value);
}

export async function runAudit(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  const common = { server: { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' } } as const;
  if (sub === 'list') {
    const filterOptions = Object.fromEntries(AUDIT_FILTERS.map((f) => [f, { type: 'string' as const }]));
    const { values: o } = parse(rest, { ...common, ...filterOptions, limit: { type: 'string' }, before: { type: 'string' } });
    const settings = resolveSettings({ ...(o.server ? { server: o.server as string } : {}), ...(o.profile ? { profile: o.profile as string } : {}) }, io.env);
    const limit = integerFlag(o.limit, '--limit');
    const before = integerFlag(o.before, '--before');
    const page = await auditList({
      server: requireServer(settings),
      ...(settings.profile ? { profile: settings.profile } : {}),
      filters: Object.fromEntries(AUDIT_FILTERS.filter((f) => o[f] !== undefined).map((f) => [f, o[f] as string])),
      ...(limit !== undefined ? { limit } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    if (o.json) io.stdout(`${JSON.stringify(page)}\n`);
    else {
      for (const r of page.records) {
        const d = r.data as Record<string, unknown>;
        const what =
          r.kind === 'issued' ? `serial ${String(d.serial)} principals ${(d.principals as string[]).join(',')}`
          : r.kind === 'revoked' ? `${String(d.revokedBy)} ${String(d.revokedBy === 'publicKey' ? d.publicKeyFingerprint : d.revokedBy === 'keyId' ? d.keyId : d.serial)}: ${String(d.reason)} (withdraw: sshca revoke --withdraw ${r.seq})`
          : r.kind === 'withdrawn' ? `revocation #${String(d.revocationSeq)}: ${String(d.reason)}`
          : r.kind === 'refused-summary' ? `${String(d.total)} anonymous refusals since ${String(d.intervalStart)}: ${(d.counts as Array<{ code: string; network: string; count: number }>).map((c) => `${c.code} ${c.network} ×${c.count}`).join(', ')}`
          : String(d.code);
        io.stdout(`#${r.seq} ${r.at} ${r.kind.padEnd(7)} ${String(d.callerArn ?? (r.kind === 'refused-summary' ? '(anonymous)' : '(unknown caller)'))} ${what}\n`);
      }
      if (page.nextBefore !== undefined) io.stdout(`more: sshca audit list --before ${page.nextBefore}\n`);
    }
    return EXIT.ok;
  }
  if (sub === 'export') {
    const { values: o } = parse(rest, { ...common, output: { type: 'string' } });
    const settings = resolveSettings({ ...(o.server ? { server: o.server as string } : {}), ...(o.profile ? { profile: o.profile as string } : {}) }, io.env);
    const text = await auditExport({ server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}) });
    if (o.output) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(o.output as string, text, { mode: 0o600 });
    } else io.stdout(text);
    return EXIT.ok;
  }
  if (sub === 'verify') {
    const { values: o } = parse(rest, { ...common, file: { type: 'string' }, 'checkpoint-key': { type: 'string' } });
    const settings = resolveSettings({ ...(o.server ? { server: o.server as string } : {}), ...(o.profile ? { profile: o.profile as string } : {}) }, io.env);
    const outcome = await auditVerify({
      ...(settings.server ? { server: settings.server } : {}),
      ...(settings.profile ? { profile: settings.profile } : {}),
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

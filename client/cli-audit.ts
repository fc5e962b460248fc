// `sshca audit list|active|export|verify|ui` argument handling and output.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CallerMatch } from '../protocol/audit-api.js';
import { AUDIT_FILTERS, auditActive, auditAnchor, auditExport, auditList, auditVerify } from './audit.js';
import { activeCsv, activeLine, callerNote, recordLine, recordsCsv } from './audit-output.js';
import { timeFlag } from './audit-time.js';
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

/** The server and profile an audit command talks to (flags, else saved settings). */
function target(o: Record<string, unknown>, io: CommandIo): { server: string; profile?: string } {
  const settings = resolveSettings({ ...(o.server ? { server: o.server as string } : {}), ...(o.profile ? { profile: o.profile as string } : {}) }, io.env);
  return { server: requireServer(settings), ...(settings.profile ? { profile: settings.profile } : {}) };
}

/** Says what a short `--caller` name matched: on stderr, so JSON and CSV stay clean. */
function noteCaller(match: CallerMatch | undefined, io: CommandIo): void {
  const note = callerNote(match);
  if (note) io.stderr(`sshca: ${note}\n`);
}

export async function runAudit(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'ui') {
    const { runAuditUi } = await import('./audit-ui.js');
    return runAuditUi(rest, io);
  }
  const common = { server: { type: 'string' }, profile: { type: 'string' }, json: { type: 'boolean' } } as const;
  const now = new Date();
  if (sub === 'list') {
    const filterOptions = Object.fromEntries(AUDIT_FILTERS.map((f) => [f, { type: 'string' as const }]));
    const { values: o } = parse(rest, { ...common, ...filterOptions, csv: { type: 'boolean' }, limit: { type: 'string' }, before: { type: 'string' } });
    if (o.json && o.csv) throw new ClientError('CLIENT_USAGE', 'choose --json or --csv');
    const limit = integerFlag(o.limit, '--limit');
    const before = integerFlag(o.before, '--before');
    const filters = Object.fromEntries(
      AUDIT_FILTERS.filter((f) => o[f] !== undefined).map((f) => [f, f === 'since' || f === 'until' ? timeFlag(o[f] as string, `--${f}`, now) : (o[f] as string)]),
    );
    const page = await auditList({ ...target(o, io), filters, ...(limit !== undefined ? { limit } : {}), ...(before !== undefined ? { before } : {}) });
    if (o.json) {
      io.stdout(`${JSON.stringify(page)}\n`);
      return EXIT.ok;
    }
    noteCaller(page.caller, io);
    if (o.csv) io.stdout(recordsCsv(page.records));
    else for (const r of page.records) io.stdout(`${recordLine(r)}\n`);
    if (page.nextBefore !== undefined) io.stderr(`more: sshca audit list --before ${page.nextBefore}\n`);
    return EXIT.ok;
  }
  if (sub === 'active') {
    const { values: o } = parse(rest, { ...common, principal: { type: 'string' }, caller: { type: 'string' }, csv: { type: 'boolean' }, limit: { type: 'string' } });
    if (o.json && o.csv) throw new ClientError('CLIENT_USAGE', 'choose --json or --csv');
    const limit = integerFlag(o.limit, '--limit');
    const answer = await auditActive({
      ...target(o, io),
      ...(o.principal !== undefined ? { principal: o.principal as string } : {}),
      ...(o.caller !== undefined ? { caller: o.caller as string } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    if (o.json) {
      io.stdout(`${JSON.stringify(answer)}\n`);
      return EXIT.ok;
    }
    noteCaller(answer.caller, io);
    if (o.csv) io.stdout(activeCsv(answer.certificates));
    else {
      for (const c of answer.certificates) io.stdout(`${activeLine(c)}\n`);
      io.stderr(`${answer.certificates.length} certificate(s) valid now and not revoked\n`);
    }
    if (answer.truncated) io.stderr('sshca: more certificates are valid than --limit let through; raise --limit or filter\n');
    return EXIT.ok;
  }
  if (sub === 'export') {
    const { values: o } = parse(rest, { ...common, output: { type: 'string' }, since: { type: 'string' } });
    const text = await auditExport({ ...target(o, io), ...(o.since !== undefined ? { since: timeFlag(o.since as string, '--since', now) } : {}) });
    if (o.output) {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(o.output as string, text, { mode: 0o600 });
    } else io.stdout(text);
    return EXIT.ok;
  }
  if (sub === 'anchor') {
    const { values: o } = parse(rest, common);
    const answer = await auditAnchor(target(o, io));
    if (o.json) io.stdout(`${JSON.stringify(answer)}\n`);
    else if (!answer.anchor) io.stdout(`nothing to anchor: the record is empty (${answer.location})\n`);
    else io.stdout(`${answer.outcome === 'unchanged' ? 'already anchored' : 'anchored'}: record #${answer.anchor.seq} ${answer.anchor.hash} at ${answer.anchor.at} in ${answer.location}\n`);
    return EXIT.ok;
  }
  if (sub === 'verify') {
    const { values: o } = parse(rest, { ...common, file: { type: 'string' }, 'checkpoint-key': { type: 'string' }, anchors: { type: 'string' } });
    const settings = resolveSettings({ ...(o.server ? { server: o.server as string } : {}), ...(o.profile ? { profile: o.profile as string } : {}) }, io.env);
    const outcome = await auditVerify({
      ...(settings.server ? { server: settings.server } : {}),
      ...(settings.profile ? { profile: settings.profile } : {}),
      ...(o.file ? { file: o.file as string } : {}),
      ...(o['checkpoint-key'] ? { checkpointKey: o['checkpoint-key'] as string } : {}),
      ...(o.anchors ? { anchorsDir: o.anchors as string } : {}),
    });
    if (o.json) io.stdout(`${JSON.stringify(outcome)}\n`);
    if (!outcome.ok) {
      io.stderr(`sshca: audit record ${outcome.failure.seq}: ${outcome.failure.message} [AUDIT_${outcome.failure.reason.toUpperCase().replace('-', '_')}]\n`);
      if (outcome.failure.reason === 'truncated') io.stderr('sshca: records the anchor vouches for are missing from the chain: the newest records were deleted (docs/audit.md, "Anchors")\n');
      return EXIT.notValid;
    }
    if (!o.json) {
      const range = outcome.since !== undefined ? ` (records ${outcome.firstSeq}–${outcome.lastSeq}: a partial export from ${outcome.since})` : '';
      io.stdout(`verified ${outcome.count} records${range}; head signed at ${outcome.headAt}\n`);
      const a = outcome.anchors;
      if (a) {
        const outside = a.skipped ? `, ${a.skipped} outside this export` : '';
        io.stdout(a.newest ? `anchors: ${a.checked} checked${outside}; newest: record #${a.newest.seq} at ${a.newest.at} (${a.source})\n` : a.skipped ? `anchors: none inside this export${outside} (${a.source})\n` : `anchors: none found at ${a.source}\n`);
      } else if (!o.file) io.stdout('anchors: this server anchors its chain nowhere (SSHCA_AUDIT_ANCHOR): deleting the newest records would go unnoticed\n');
    }
    return EXIT.ok;
  }
  throw new ClientError('CLIENT_USAGE', `unknown audit command ${JSON.stringify(sub ?? '')}`);
}

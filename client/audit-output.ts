// How `sshca audit list|active` print: one line per record for people, CSV
// for spreadsheets, JSON (elsewhere) for programs.
import type { ActiveCertificate, CallerMatch } from '../protocol/audit-api.js';
import type { ChainedRecord } from '../protocol/audit-chain.js';
import { formatDuration } from '../protocol/duration.js';

type Data = Record<string, unknown>;

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** What a certificate was granted for: from when it was issued to when it expires. */
function lifetime(at: string, validBefore: unknown): string {
  return typeof validBefore === 'number' ? formatDuration(validBefore - Math.floor(Date.parse(at) / 1000)) : '';
}

function revokedTarget(d: Data): string {
  return str(d.revokedBy === 'publicKey' ? d.publicKeyFingerprint : d.revokedBy === 'keyId' ? d.keyId : d.serial);
}

/** The record's own words, by kind. */
function detail(r: ChainedRecord): string {
  const d = r.data as Data;
  switch (r.kind) {
    case 'issued':
      return `serial ${str(d.serial)} principals ${(d.principals as string[]).join(',')}`;
    case 'revoked':
      return `${str(d.revokedBy)} ${revokedTarget(d)}: ${str(d.reason)} (withdraw: sshca revoke --withdraw ${r.seq})`;
    case 'withdrawn':
      return `revocation #${str(d.revocationSeq)}: ${str(d.reason)}`;
    case 'refused-summary':
      return `${str(d.total)} anonymous refusals since ${str(d.intervalStart)}: ${(d.counts as Array<{ code: string; network: string; count: number }>).map((c) => `${c.code} ${c.network} ×${c.count}`).join(', ')}`;
    default:
      return str(d.code);
  }
}

/** One line per record: who, from where, what, and for issued certificates how long, by which rule, why. */
export function recordLine(r: ChainedRecord): string {
  const d = r.data as Data;
  const caller = str(d.callerArn) || (r.kind === 'refused-summary' ? '(anonymous)' : '(unknown caller)');
  const extra = [
    d.sourceIp !== undefined ? `from ${str(d.sourceIp)}` : '',
    r.kind === 'issued' ? `lifetime ${lifetime(r.at, d.validBefore)}` : '',
    d.policyRule !== undefined ? `rule ${str(d.policyRule)}` : '',
    r.kind === 'issued' && d.reason !== undefined ? `reason ${JSON.stringify(d.reason)}` : '',
  ].filter(Boolean);
  return `#${r.seq} ${r.at} ${r.kind.padEnd(7)} ${caller} ${detail(r)}${extra.length ? `  [${extra.join(', ')}]` : ''}`;
}

/** One line per active certificate. */
export function activeLine(c: ActiveCertificate): string {
  const remaining = formatDuration(c.validBefore - Math.floor(Date.now() / 1000));
  return `serial ${c.serial} ${c.certificateType} principals ${c.principals.join(',')} ${c.callerArn} from ${c.sourceIp} issued ${c.issuedAt} expires ${new Date(c.validBefore * 1000).toISOString()} (in ${remaining})${c.policyRule ? ` rule ${c.policyRule}` : ''}${c.reason ? ` reason ${JSON.stringify(c.reason)}` : ''}`;
}

/** What a short `--caller` name matched, said before the results. */
export function callerNote(match: CallerMatch | undefined): string | undefined {
  if (!match || match.by !== 'name') return undefined;
  return match.matched.length === 0
    ? `caller ${match.query}: no caller on the record has that name (an IAM user name, role session name or SSO user name, matched whole)`
    : `caller ${match.query} matched: ${match.matched.join(', ')}`;
}

/**
 * One CSV cell (RFC 4180). A cell that a spreadsheet would run as a formula
 * (=, +, -, @, tab, CR first) gets a leading apostrophe: user agents and
 * reasons are the caller's own words.
 */
function cell(value: unknown): string {
  let text = str(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csv(header: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

export const RECORD_CSV_COLUMNS = ['seq', 'at', 'kind', 'caller', 'account', 'source_ip', 'serial', 'principals', 'lifetime', 'valid_before', 'rule', 'reason', 'code', 'detail'] as const;

export function recordsCsv(records: readonly ChainedRecord[]): string {
  return csv(
    RECORD_CSV_COLUMNS,
    records.map((r) => {
      const d = r.data as Data;
      const issued = r.kind === 'issued';
      return [
        r.seq, r.at, r.kind, d.callerArn, d.accountId, d.sourceIp, issued ? d.serial : r.kind === 'revoked' ? revokedTarget(d) : '',
        issued ? (d.principals as string[]).join(' ') : '', issued ? lifetime(r.at, d.validBefore) : '',
        issued && typeof d.validBefore === 'number' ? new Date(d.validBefore * 1000).toISOString() : '',
        d.policyRule, d.reason, d.code, issued ? '' : detail(r),
      ];
    }),
  );
}

export const ACTIVE_CSV_COLUMNS = ['serial', 'type', 'principals', 'caller', 'source_ip', 'issued_at', 'expires_at', 'rule', 'reason', 'key_id', 'public_key'] as const;

export function activeCsv(certificates: readonly ActiveCertificate[]): string {
  return csv(
    ACTIVE_CSV_COLUMNS,
    certificates.map((c) => [c.serial, c.certificateType, c.principals.join(' '), c.callerArn, c.sourceIp, c.issuedAt, new Date(c.validBefore * 1000).toISOString(), c.policyRule, c.reason, c.keyId, c.publicKeyFingerprint]),
  );
}

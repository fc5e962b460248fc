// The reviewer's formats: CSV a spreadsheet opens safely, and the times
// --since/--until accept.
import t from 'tap';
import { activeCsv, recordsCsv } from '../../client/audit-output.js';
import { timeFlag } from '../../client/audit-time.js';

const issuedAt = '2026-11-23T10:00:00.000Z';
const validBefore = Date.parse(issuedAt) / 1000 + 8 * 3600;

t.test('CSV cells: quoted where needed, never run as a formula', async (t) => {
  const reasons = ['=HYPERLINK("http://evil","x")', '+1+1', '-2+3', '@SUM(A1)', '\tx', 'a, "b"\nc', 'plain'];
  const csv = activeCsv(reasons.map((reason, i) => ({ seq: i, serial: String(i), keyId: 'k', certificateType: 'user', principals: ['a', 'b'], callerArn: 'arn:aws:iam::1:user/x', sourceIp: '10.0.0.1', issuedAt, validAfter: 0, validBefore, publicKeyFingerprint: 'SHA256:x', reason })));
  const rows = csv.split('\r\n');
  t.equal(rows.length, reasons.length + 2, 'a header, one row each (the quoted newline stays inside its cell), a final CRLF');
  const reasonCell = (i: number) => rows[i + 1]!.split(',').slice(8).join(',');
  t.equal(reasonCell(0).startsWith(`"'=HYPERLINK(`), true, 'a formula gets an apostrophe (and its quotes doubled)');
  for (const i of [1, 2, 3]) t.equal(reasonCell(i).startsWith("'"), true, `${reasons[i]} is not run`);
  t.equal(reasonCell(4).startsWith("'\t"), true, 'a leading tab is not run');
  t.match(csv, /"a, ""b""\nc"/, 'commas, quotes and newlines are quoted');
  t.match(rows[1], /,a b,/, 'principals space-separated in one cell');
  t.match(rows[7], /,plain,/);
});

t.test('records CSV: issued certificates with lifetime and expiry', async (t) => {
  const csv = recordsCsv([
    { seq: 5, at: issuedAt, kind: 'issued', prevHash: '', hash: '', data: { serial: '42', principals: ['ida'], validBefore, callerArn: 'arn:aws:iam::1:user/ida', sourceIp: '10.1.1.1', policyRule: 'dev', reason: 'INC-1' } },
    { seq: 6, at: issuedAt, kind: 'refused', prevHash: '', hash: '', data: { code: 'POLICY_NO_RULE', sourceIp: '10.1.1.2' } },
  ]);
  const [header, issued, refused] = csv.split('\r\n').map((r) => r.split(','));
  const col = (row: string[] | undefined, name: string) => row![header!.indexOf(name)];
  t.same([col(issued, 'serial'), col(issued, 'lifetime'), col(issued, 'valid_before'), col(issued, 'rule'), col(issued, 'reason')], ['42', '8h', '2026-11-23T18:00:00.000Z', 'dev', 'INC-1']);
  t.same([col(refused, 'kind'), col(refused, 'code'), col(refused, 'source_ip'), col(refused, 'lifetime')], ['refused', 'POLICY_NO_RULE', '10.1.1.2', '']);
});

t.test('--since/--until: durations back from now, dates, ISO times with a zone', async (t) => {
  const now = new Date('2026-11-23T12:00:00.000Z');
  t.equal(timeFlag('2h', '--since', now), '2026-11-23T10:00:00.000Z');
  t.equal(timeFlag('7d', '--since', now), '2026-11-16T12:00:00.000Z');
  t.equal(timeFlag('1h30m', '--since', now), '2026-11-23T10:30:00.000Z');
  t.equal(timeFlag('2026-11-01', '--since', now), '2026-11-01T00:00:00.000Z', 'a date is midnight UTC');
  t.equal(timeFlag('2026-11-01T10:00:00+02:00', '--until', now), '2026-11-01T08:00:00.000Z');
  for (const bad of ['yesterday', '2026-11-01T10:00', '3600', '2026-13-45', '']) {
    t.throws(() => timeFlag(bad, '--since', now), { code: 'CLIENT_USAGE' }, `${JSON.stringify(bad)} refused`);
  }
});

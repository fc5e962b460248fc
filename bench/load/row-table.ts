// The columns every mode's table shares, and the notes printed under it.
import { describeErrors } from './load-generator.js';
import type { RowFigures } from './measure-row.js';
import type { KeygenRate } from './ssh-keygen-baseline.js';
import { fixed, textTable, type Column } from './text-table.js';

/** conc … errors, × ssh-keygen: the figures issue 14 asks of every row. */
export const ROW_COLUMNS: readonly Column[] = [
  { title: 'conc' },
  { title: 'requests' },
  { title: 'certs/s' },
  { title: 'p50 ms' },
  { title: 'p99 ms' },
  { title: 'max ms' },
  { title: 'srv CPU ms/cert' },
  { title: 'bench CPU ms/req' },
  { title: 'errors' },
  { title: '× ssh-keygen' },
];

/** A row's cells under ROW_COLUMNS. */
export function rowCells(row: RowFigures, keygen: KeygenRate | undefined): string[] {
  return [
    String(row.concurrency),
    String(row.load.sent),
    fixed(row.certsPerSecond, 0),
    fixed(row.p50),
    fixed(row.p99),
    fixed(row.max),
    fixed(row.serverCpuMsPerCert, 2),
    fixed(row.benchCpuMsPerRequest, 2),
    String(row.load.sent - row.load.issued),
    keygen ? fixed(row.certsPerSecond / keygen.certsPerSecond, 2) : '-',
  ];
}

/** The table, then what went wrong in rows that had errors (kinds, and the first answer). */
export function renderTable(title: string, columns: readonly Column[], rows: ReadonlyArray<{ cells: string[]; figures: RowFigures; label?: string }>): string {
  const notes = rows
    .filter((r) => r.figures.load.errors.size > 0)
    .map((r) => `  ${r.label ?? `conc ${r.figures.concurrency}`}: ${describeErrors(r.figures.load.errors)}; first: ${r.figures.load.firstError ?? ''}`);
  return `${title}\n${textTable(columns, rows.map((r) => r.cells))}\n${notes.length ? `errors:\n${notes.join('\n')}\n` : ''}`;
}

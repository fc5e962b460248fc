// The bench's output: plain, aligned tables of figures (no targets, no
// verdicts), readable in a terminal and pasteable into docs/scaling.md.

/** A column: its heading, and whether its cells align left (text) or right (figures). */
export interface Column {
  readonly title: string;
  readonly left?: boolean;
}

/** Renders `rows` under `columns`, each column as wide as its widest cell. */
export function textTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => (c.left ? (cells[i] ?? '').padEnd(widths[i]!) : (cells[i] ?? '').padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n');
}

/** A figure with `digits` decimals, or `-` when there is none. */
export function fixed(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

// Durations as people write them: `8h`, `30m`, `1h30m`, `90s`, or seconds.

const UNIT: Readonly<Record<string, number>> = { d: 86400, h: 3600, m: 60, s: 1 };

/** Seconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d{1,9}$/.test(t)) return Number(t);
  if (!/^(\d{1,6}[dhms])+$/.test(t)) return undefined;
  let total = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([dhms])/g)) total += Number(n) * UNIT[unit!]!;
  return total;
}

/** Seconds as people write them, largest units first: `12h`, `1d12h`, `1h30m`, `90s` → `1m30s`. */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.floor(seconds));
  let out = '';
  for (const [unit, size] of Object.entries(UNIT)) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out || '0s';
}

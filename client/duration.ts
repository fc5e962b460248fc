// Parses `8h`, `30m`, `1h30m`, `90s` or plain seconds.
import { ClientError } from './client-error.js';

const UNIT: Readonly<Record<string, number>> = { d: 86400, h: 3600, m: 60, s: 1 };

export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^(\d+[dhms])+$/.test(t)) throw new ClientError('CLIENT_USAGE', `${flag} ${JSON.stringify(text)} is not a duration like 8h, 30m or 1h30m`);
  let total = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([dhms])/g)) total += Number(n) * UNIT[unit!]!;
  return total;
}

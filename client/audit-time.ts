// `--since`/`--until`: a duration back from now (`2h`, `7d`), a date
// (`2026-11-01`, midnight UTC) or an ISO 8601 time; sent as ISO 8601.
import { parseDuration } from '../protocol/duration.js';
import { ClientError } from './client-error.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/** The time a flag names, as ISO 8601; `now` is when the command started. */
export function timeFlag(text: string, flag: string, now: Date): string {
  const seconds = /^\d+$/.test(text) ? undefined : parseDuration(text);
  if (seconds !== undefined) return new Date(now.getTime() - seconds * 1000).toISOString();
  const parsed = DATE.test(text) ? new Date(`${text}T00:00:00Z`) : ISO_TIME.test(text) ? new Date(text) : undefined;
  if (!parsed || Number.isNaN(parsed.getTime())) {
    throw new ClientError('CLIENT_USAGE', `${flag} ${JSON.stringify(text)} is not a duration back from now (2h, 7d), a date (2026-11-01) or an ISO 8601 time with a zone`);
  }
  return parsed.toISOString();
}

// `--ttl` and friends: a duration, or a usage error.
import { parseDuration } from '../protocol/duration.js';
import { ClientError } from './client-error.js';

export function durationFlag(text: string, flag: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined) throw new ClientError('CLIENT_USAGE', `${flag} ${JSON.stringify(text)} is not a duration like 8h, 30m or 1h30m`);
  return seconds;
}

// Time is passed in, never read ad hoc (DESIGN.md §5), so tests can stand at
// any instant.

/** A source of the current time. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Seconds since the epoch, as certificates count them. */
export function epochSeconds(clock: Clock): number {
  return Math.floor(clock.now().getTime() / 1000);
}

// Caps how many calls run at once, with a bounded queue: KMS's Sign quota is
// per account and region and shared with everything else there, so one busy
// server must not spend all of it, nor queue without end.
import { UnavailableError } from '../errors.js';

/** A semaphore with a bounded wait queue. */
export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly maxRunning: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.maxRunning) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new UnavailableError('UNAVAILABLE_SIGNER_BUSY', 'too many signatures in flight; retry shortly', { retryAfterSeconds: 1 });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // Hand the slot straight to the next waiter; otherwise release it.
      if (next) next();
      else this.running--;
    }
  }
}

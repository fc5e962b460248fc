// Pre-signed load items from worker threads (token-signing-worker.ts):
// signing is the client's cost, so it happens before a timed run starts (or,
// in a soak, on other threads than the load generator's).
import { Worker } from 'node:worker_threads';
import type { LoadItem } from './load-generator.js';
import type { SignReply, SignRequest } from './token-signing-worker.js';

/** Whom tokens are for: one per server (its audience and STS endpoint) and the identity that signs. */
export interface TokenTarget {
  readonly endpoint: string;
  readonly audience: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

/** Signs load items on `workers` threads. */
export class TokenSource {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (items: LoadItem[]) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  private nextWorker = 0;
  private signed = 0;

  constructor(
    private readonly targets: readonly TokenTarget[],
    workers: number,
  ) {
    this.workers = Array.from({ length: Math.max(1, workers) }, () => {
      const w = new Worker(new URL('./token-signing-worker.js', import.meta.url));
      w.on('message', (reply: SignReply) => {
        const p = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if ('error' in reply) p?.reject(new Error(`token signing failed: ${reply.error}`));
        else p?.resolve(reply.items);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      return w;
    });
  }

  /** `count` items, spread over the targets in turn and over the workers in chunks. */
  async sign(count: number): Promise<LoadItem[]> {
    const per = Math.ceil(count / this.workers.length);
    const chunks: Array<Promise<LoadItem[]>> = [];
    for (let done = 0; done < count; done += per) {
      const req: SignRequest = { id: this.nextId++, targets: this.targets, first: this.signed + done, count: Math.min(per, count - done) };
      const worker = this.workers[this.nextWorker++ % this.workers.length]!;
      chunks.push(new Promise<LoadItem[]>((resolve, reject) => this.pending.set(req.id, { resolve, reject })));
      worker.postMessage(req);
    }
    this.signed += count;
    return (await Promise.all(chunks)).flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

// Everything the load bench starts (server processes, fixtures, PostgreSQL,
// temp dirs) registers its undoing here, so that a finished run, a failed
// one and Ctrl-C all leave nothing behind.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/** A stack of teardown steps, run last-in first-out, each at most once. */
export class Cleanup {
  private readonly steps: Array<() => unknown> = [];
  private readonly children: Set<ChildProcess>;

  /** The root cleanup of a run; scopes share its children. */
  constructor(parent?: Cleanup) {
    this.children = parent?.children ?? new Set();
    // The last resort when the process is leaving anyway (an uncaught error,
    // process.exit): asynchronous steps cannot run then, but no child may outlive us.
    if (!parent) {
      process.on('exit', () => {
        for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
    }
  }

  /** Registers a step; it runs before the steps registered earlier. */
  add(step: () => unknown): void {
    this.steps.push(step);
  }

  /** A child process killed on exit if its own step has not stopped it. */
  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  /** A temp dir removed at cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.add(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** What the test fixtures need of tap's `t`: teardown steps. */
  asTap(): Test {
    return { teardown: (step: () => unknown) => this.add(step) } as unknown as Test;
  }

  /** Runs every step registered so far; a failing step does not stop the others. */
  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (err) {
        process.stderr.write(`bench: cleanup: ${(err as Error).message}\n`);
      }
    }
  }

  /** A scope whose steps run when `body` settles, however it settles. */
  async scope<T>(body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
    const inner = new Cleanup(this);
    this.add(() => inner.run());
    try {
      return await body(inner);
    } finally {
      await inner.run();
    }
  }
}

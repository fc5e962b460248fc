// Files created on first start and reused afterwards (keys, dev settings).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Returns the file's content, first writing `create()` to it (0600, parent
 * 0700) if it does not exist. Never overwrites: 'wx' fails rather than
 * clobber a file another process just wrote.
 */
export function readOrCreate(path: string, create: () => string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const content = create();
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
    return content;
  }
}

// Anchors as files in a directory: small installs, the embedded dev default
// (`<data dir>/anchors`) and tests. Each anchor is a new read-only file that
// is never rewritten. This guards against a database edited on its own; it
// does not stop whoever controls the host's files — point the directory at
// storage the server cannot delete from (a WORM mount, a synced copy
// elsewhere), or use S3 Object Lock.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MAX_ANCHOR_BYTES, anchorName, formatAnchor, newestAnchorNames, parseAnchor, parseAnchorName, sameStatement, type Anchor } from '../../protocol/audit-anchor.js';
import { AnchorError, checkNewestLimit, type AnchorStore, type PublishOutcome } from './anchor-store.js';

const errno = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

export class DirectoryAnchorStore implements AnchorStore {
  readonly location: string;

  private constructor(private readonly dir: string) {
    this.location = dir;
  }

  /**
   * Opens `dir`, creating it (and its parents) when missing. Only open()
   * creates it: a directory that disappears later is reported
   * (ANCHOR_UNAVAILABLE), never silently started afresh.
   */
  static async open(dir: string): Promise<DirectoryAnchorStore> {
    const path = resolve(dir);
    try {
      await mkdir(path, { recursive: true, mode: 0o755 });
      if (!(await stat(path)).isDirectory()) throw new AnchorError('ANCHOR_CONFIG', `${path} is not a directory`);
    } catch (err) {
      if (err instanceof AnchorError) throw err;
      throw new AnchorError('ANCHOR_UNAVAILABLE', `cannot open the anchor directory ${path}`, { cause: err, ...upstream(err) });
    }
    return new DirectoryAnchorStore(path);
  }

  async publish(anchor: Anchor): Promise<PublishOutcome> {
    const name = anchorName(anchor.seq);
    const target = join(this.dir, name);
    // Written in full under a temporary name first, then linked to its real
    // name: link() fails if the name exists (an exclusive create, like `wx`)
    // and makes the finished file appear at once, so a crash never leaves a
    // half-written anchor under a real name for every later publish to trip on.
    const temporary = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(temporary, 'wx', 0o444);
      try {
        await file.writeFile(formatAnchor(anchor));
        await file.sync();
      } finally {
        await file.close();
      }
      try {
        await link(temporary, target);
      } catch (err) {
        if (errno(err) === 'EEXIST') return await this.compareExisting(target, anchor);
        throw err;
      }
      await this.syncDirectory();
      return 'created';
    } catch (err) {
      if (err instanceof AnchorError) throw err;
      throw new AnchorError('ANCHOR_UNAVAILABLE', `cannot write ${target}`, { cause: err, ...upstream(err) });
    } finally {
      await unlink(temporary).catch(() => undefined);
    }
  }

  async newest(limit: number): Promise<Anchor[]> {
    checkNewestLimit(limit);
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw new AnchorError('ANCHOR_UNAVAILABLE', `cannot list the anchor directory ${this.dir}`, { cause: err, ...upstream(err) });
    }
    return Promise.all(newestAnchorNames(names, limit).map((name) => this.read(name)));
  }

  private async compareExisting(target: string, anchor: Anchor): Promise<PublishOutcome> {
    const name = anchorName(anchor.seq);
    let existing: Anchor;
    try {
      existing = await this.read(name);
    } catch (err) {
      if (err instanceof AnchorError && err.code === 'ANCHOR_INVALID') throw new AnchorError('ANCHOR_CONFLICT', `${target} exists and is not a valid anchor`, { cause: err });
      throw err;
    }
    if (sameStatement(existing, anchor)) return 'exists';
    throw new AnchorError('ANCHOR_CONFLICT', `${target} already anchors record ${existing.seq} with another hash`);
  }

  /** Reads one anchor, refusing oversized files and any whose content names another seq than its file name. */
  private async read(name: string): Promise<Anchor> {
    const path = join(this.dir, name);
    let text: string;
    try {
      const info = await stat(path);
      if (info.size > MAX_ANCHOR_BYTES) throw new AnchorError('ANCHOR_INVALID', `${path} is larger than an anchor can be`);
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (err instanceof AnchorError) throw err;
      throw new AnchorError('ANCHOR_UNAVAILABLE', `cannot read ${path}`, { cause: err, ...upstream(err) });
    }
    let anchor: Anchor;
    try {
      anchor = parseAnchor(text);
    } catch (err) {
      throw new AnchorError('ANCHOR_INVALID', `${path} is not a valid anchor`, { cause: err });
    }
    if (anchor.seq !== parseAnchorName(name)) throw new AnchorError('ANCHOR_INVALID', `${path} holds the anchor of record ${anchor.seq}`);
    return anchor;
  }

  /** fsync of the directory: the new name survives a power cut, not only the file's bytes. */
  private async syncDirectory(): Promise<void> {
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

function upstream(err: unknown): { upstreamCode?: string } {
  const code = errno(err);
  return code === undefined ? {} : { upstreamCode: code };
}

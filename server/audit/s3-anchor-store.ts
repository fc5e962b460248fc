// Anchors as objects in an S3 bucket with Object Lock: each is written once
// (a conditional PUT that fails if the key exists) with COMPLIANCE
// retention, which nobody — the bucket owner and the account root included —
// can shorten or delete before it ends. The bucket settings this relies on
// are in docs/audit-anchoring.md.
import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { MAX_ANCHOR_BYTES, anchorKey, formatAnchor, newestAnchorNames, parseAnchor, parseAnchorName, sameStatement, type Anchor } from '../../protocol/audit-anchor.js';
import { AnchorError, checkNewestLimit, type AnchorStore, type PublishOutcome } from './anchor-store.js';

export interface S3AnchorStoreOptions {
  /** Built in main.ts (region, credentials, endpoint); only `send` is used. */
  readonly s3: Pick<S3Client, 'send'>;
  readonly bucket: string;
  /** Key prefix, '' or ending in '/': e.g. `sshca/audit-anchors/`. */
  readonly prefix: string;
  /** COMPLIANCE retention from each anchor's `at`, in days (≥ 1). */
  readonly retentionDays: number;
}

const DAY_MS = 86_400_000;
// Bucket names as S3 allows them for new buckets. Prefixes are held to
// characters that need no URI encoding, so the key S3 stores, the key a
// SigV4 signature covers and the file name `aws s3 sync` writes are one string.
const BUCKET = /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*$/;

export class S3AnchorStore implements AnchorStore {
  readonly location: string;
  private readonly s3: Pick<S3Client, 'send'>;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly retentionMs: number;

  constructor(options: S3AnchorStoreOptions) {
    if (!BUCKET.test(options.bucket)) throw new AnchorError('ANCHOR_CONFIG', `${JSON.stringify(options.bucket)} is not an S3 bucket name`);
    if (!PREFIX.test(options.prefix) || options.prefix.split('/').some((s) => s === '.' || s === '..')) {
      throw new AnchorError('ANCHOR_CONFIG', `the anchor prefix must be empty or end in '/', with segments of A-Z a-z 0-9 . _ - (got ${JSON.stringify(options.prefix)})`);
    }
    if (!Number.isSafeInteger(options.retentionDays) || options.retentionDays < 1) throw new AnchorError('ANCHOR_CONFIG', 'the anchor retention must be a whole number of days, at least 1');
    this.s3 = options.s3;
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.retentionMs = options.retentionDays * DAY_MS;
    this.location = `s3://${options.bucket}/${options.prefix}`;
  }

  async publish(anchor: Anchor): Promise<PublishOutcome> {
    const key = anchorKey(anchor.seq, this.prefix);
    const body = formatAnchor(anchor);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          // Never overwrite: S3 answers 412 if the key exists (409 while another
          // conditional write to it is in flight). In a versioned bucket a plain
          // PUT would add a version on top of the anchor instead.
          IfNoneMatch: '*',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: new Date(Date.parse(anchor.at) + this.retentionMs),
          // S3 refuses a PUT with Object Lock parameters that carries no
          // checksum (Content-MD5 or x-amz-checksum-*). Both are set here rather
          // than left to the SDK's default checksum, which a client configured
          // with requestChecksumCalculation WHEN_REQUIRED does not send.
          ChecksumAlgorithm: 'SHA256',
          ContentMD5: createHash('md5').update(body).digest('base64'),
        }),
      );
      return 'created';
    } catch (err) {
      const status = httpStatus(err);
      if (status !== 412 && status !== 409) throw unavailable(err, `cannot write s3://${this.bucket}/${key}`);
    }
    let existing: Anchor | undefined;
    try {
      existing = await this.get(key);
    } catch (err) {
      if (err instanceof AnchorError && err.code === 'ANCHOR_INVALID') throw new AnchorError('ANCHOR_CONFLICT', `s3://${this.bucket}/${key} exists and is not a valid anchor`, { cause: err });
      throw err;
    }
    if (existing === undefined) throw new AnchorError('ANCHOR_UNAVAILABLE', `s3://${this.bucket}/${key} is being written by someone else; try again`, { upstreamCode: 'ConditionalRequestConflict' });
    if (sameStatement(existing, anchor)) return 'exists';
    throw new AnchorError('ANCHOR_CONFLICT', `s3://${this.bucket}/${key} already anchors record ${existing.seq} with another hash`);
  }

  async newest(limit: number): Promise<Anchor[]> {
    checkNewestLimit(limit);
    const names: string[] = [];
    let token: string | undefined;
    // Anchor names sort newest first, so one call with MaxKeys = limit is
    // the usual cost; further pages only if other objects share the prefix.
    for (let page = 0; page < 10 && names.length < limit; page++) {
      let listing;
      try {
        listing = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: limit, ...(token ? { ContinuationToken: token } : {}) }));
      } catch (err) {
        throw unavailable(err, `cannot list ${this.location}`);
      }
      const keys = (listing.Contents ?? []).map((o) => o.Key ?? '').filter((k) => k.startsWith(this.prefix));
      names.push(...newestAnchorNames(keys.map((k) => k.slice(this.prefix.length)), limit - names.length));
      token = listing.IsTruncated ? listing.NextContinuationToken : undefined;
      if (!token) break;
    }
    return Promise.all(
      names.map(async (name) => {
        const key = `${this.prefix}${name}`;
        const anchor = await this.get(key);
        // Listed a moment ago and gone now: only a delete can do that.
        if (anchor === undefined) throw new AnchorError('ANCHOR_UNAVAILABLE', `s3://${this.bucket}/${key} was listed but cannot be read`, { upstreamCode: 'NoSuchKey' });
        return anchor;
      }),
    );
  }

  /** Reads and parses one anchor; undefined if there is no such key. */
  private async get(key: string): Promise<Anchor | undefined> {
    const where = `s3://${this.bucket}/${key}`;
    let text: string;
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if ((object.ContentLength ?? 0) > MAX_ANCHOR_BYTES) {
        await object.Body?.transformToByteArray().catch(() => undefined);
        throw new AnchorError('ANCHOR_INVALID', `${where} is larger than an anchor can be`);
      }
      text = (await object.Body?.transformToString('utf-8')) ?? '';
    } catch (err) {
      if (err instanceof AnchorError) throw err;
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') return undefined;
      throw unavailable(err, `cannot read ${where}`);
    }
    let anchor: Anchor;
    try {
      anchor = parseAnchor(text);
    } catch (err) {
      throw new AnchorError('ANCHOR_INVALID', `${where} is not a valid anchor`, { cause: err });
    }
    if (anchor.seq !== parseAnchorName(key.slice(this.prefix.length))) throw new AnchorError('ANCHOR_INVALID', `${where} holds the anchor of record ${anchor.seq}`);
    return anchor;
  }
}

function httpStatus(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** Access denied, no such bucket, throttling, a network error: retry later, S3's code kept. */
function unavailable(err: unknown, what: string): AnchorError {
  const upstreamCode = err instanceof S3ServiceException ? err.name : ((err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.name ?? 'Error');
  return new AnchorError('ANCHOR_UNAVAILABLE', `${what}: ${upstreamCode}`, { cause: err, upstreamCode });
}

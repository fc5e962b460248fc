// Where audit anchors (protocol/audit-anchor.ts) are published: somewhere
// the server's own database access cannot reach back and rewrite. A store
// only ever adds: it never overwrites and never deletes, so whatever an
// attacker later does to the chain, the heads published before stay.
import type { Anchor } from '../../protocol/audit-anchor.js';
import { SshcaError } from '../errors.js';

/** `created`: the anchor is now stored; `exists`: the same statement (seq and hash) was already stored under its name. */
export type PublishOutcome = 'created' | 'exists';

/** Write-once storage of anchors: S3 with Object Lock (s3-anchor-store.ts), or a directory (directory-anchor-store.ts). */
export interface AnchorStore {
  /**
   * Stores `anchor` under anchorKey(anchor.seq) unless that name is taken.
   * A taken name holding the same statement is `exists` (two replicas
   * anchoring one head write different `at`s and, with a KMS P-256 key,
   * different signatures); anything else there is ANCHOR_CONFLICT.
   */
  publish(anchor: Anchor): Promise<PublishOutcome>;
  /** The newest `limit` anchors, newest first (each parsed and matched to its name). */
  newest(limit: number): Promise<Anchor[]>;
  /** Where the anchors are, for logs and docs: `s3://bucket/prefix`, or a directory path. */
  readonly location: string;
}

export type AnchorErrorCode =
  /** The store cannot be reached or refuses access (S3's code in `upstreamCode`): retry later. */
  | 'ANCHOR_UNAVAILABLE'
  /** Another document holds this anchor's name: the chain was rewritten, or someone wrote there. */
  | 'ANCHOR_CONFLICT'
  /** A stored anchor is unreadable, misnamed, or not signed by the checkpoint key. */
  | 'ANCHOR_INVALID'
  /** The store is configured wrongly (bucket or prefix name, retention, limit). */
  | 'ANCHOR_CONFIG'
  /** The chain ends before the newest anchored head (anchor-publisher.ts refuses to anchor it). */
  | 'AUDIT_TRUNCATED'
  /** The chain's hash at the newest anchored seq differs from the anchored one. */
  | 'AUDIT_ANCHOR_MISMATCH';

const STATUS: Readonly<Record<AnchorErrorCode, number>> = {
  ANCHOR_UNAVAILABLE: 503,
  ANCHOR_CONFLICT: 409,
  ANCHOR_INVALID: 502,
  ANCHOR_CONFIG: 500,
  AUDIT_TRUNCATED: 409,
  AUDIT_ANCHOR_MISMATCH: 409,
};

/** Anchoring failed; `code` says why. An SshcaError, so a route publishing on demand answers with it as is. */
export class AnchorError extends SshcaError {
  readonly status: number;
  /** The store's own error code (S3's `AccessDenied`, `NoSuchBucket`…, or a Node errno), when it gave one. */
  readonly upstreamCode?: string;

  constructor(
    override readonly code: AnchorErrorCode,
    message: string,
    options: { cause?: unknown; upstreamCode?: string } = {},
  ) {
    super(code, message, { ...(options.cause !== undefined ? { cause: options.cause } : {}), ...(code === 'ANCHOR_UNAVAILABLE' ? { retryAfterSeconds: 30 } : {}) });
    this.status = STATUS[code];
    if (options.upstreamCode !== undefined) this.upstreamCode = options.upstreamCode;
  }
}

/** Checks newest()'s limit: S3 lists at most 1000 keys per call. */
export function checkNewestLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new AnchorError('ANCHOR_CONFIG', 'newest() takes a limit from 1 to 1000');
}

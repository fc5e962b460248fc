// Single use of each token signature (rule 5).

/**
 * How long past its own expiry a spent signature is still remembered. A
 * replica whose clock lags another's by less than this cannot find a
 * signature purged and accept it again as fresh. Replicas further apart
 * than this are misconfigured (their clocks disagree by a quarter hour).
 */
export const REPLAY_PURGE_MARGIN_MS = 15 * 60_000;

/** Remembers spent token signatures until they could no longer be fresh. */
export interface ReplayCache {
  /**
   * Records `key` as used until `expiresAt`. Resolves false when it was
   * already used. Shared by every replica that shares the store.
   */
  claim(key: string, expiresAt: Date, now: Date): Promise<boolean>;
}

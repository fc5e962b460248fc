// Single use of each token signature (rule 5).

/** Remembers spent token signatures until they could no longer be fresh. */
export interface ReplayCache {
  /**
   * Records `key` as used until `expiresAt`. Resolves false when it was
   * already used. Shared by every replica that shares the store.
   */
  claim(key: string, expiresAt: Date, now: Date): Promise<boolean>;
}

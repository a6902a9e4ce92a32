/**
 * Revoked sessions (logout), shared by every instance.
 *
 * - `revoke` is durable for `ttlMs` (the rest of the token's life): after it resolves, every
 *   instance's `isRevoked` answers true.
 * - Listeners registered with `onRevoked` are called on every instance, at most once per
 *   `revoke` call, after the revocation is stored; delivery is best effort (the periodic session
 *   revalidation is the safety net).
 * - While the backing store is unreachable, `revoke` and `isRevoked` reject with
 *   `StoreUnavailableError`: callers fail closed.
 */
export interface RevocationStore {
  revoke(sessionId: string, ttlMs: number): Promise<void>;
  isRevoked(sessionId: string): Promise<boolean>;
  /** Returns the ids among `sessionIds` that are revoked. */
  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>>;
  onRevoked(listener: (sessionId: string) => void): () => void;
}
export const RevocationStore = Symbol('RevocationStore');

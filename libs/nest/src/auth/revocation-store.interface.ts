/**
 * Revoked sessions (logout), shared by every instance. Closing the session's open sockets is the
 * broadcast bus's job (`BroadcastService.disconnectSession`); this store makes the revocation stick
 * for new tickets, handshakes and the periodic revalidation.
 *
 * - `revoke` is durable for `ttlMs` (the rest of the token's life): after it resolves, every
 *   instance's `isRevoked` answers true.
 * - While the backing store is unreachable, `revoke` and `isRevoked` reject with
 *   `StoreUnavailableError`: callers fail closed.
 */
export interface RevocationStore {
  revoke(sessionId: string, ttlMs: number): Promise<void>;
  isRevoked(sessionId: string): Promise<boolean>;
  /** Returns the ids among `sessionIds` that are revoked. */
  revokedAmong(sessionIds: readonly string[]): Promise<Set<string>>;
  /** Every live revocation and the time it has left (what an instance learns at boot). */
  list(): Promise<Array<{ sessionId: string; ttlMs: number }>>;
}
export const RevocationStore = Symbol('RevocationStore');

export interface RateLimitResult {
  /** Hits in the current window, this one included. */
  count: number;
  /** True while `count` is within the limit. */
  allowed: boolean;
  /** Milliseconds until the window resets. */
  resetInMs: number;
}

/**
 * Fixed-window hit counters, shared by every instance (connect attempts and tickets per user).
 *
 * - `hit` counts and answers in one atomic step: two instances hitting the same key at once both
 *   see distinct counts.
 * - A window starts with its first hit and lasts `windowMs`.
 * - While the backing store is unreachable, `hit` rejects with `StoreUnavailableError`: callers
 *   fail closed.
 */
export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
}
export const RateLimiter = Symbol('RateLimiter');

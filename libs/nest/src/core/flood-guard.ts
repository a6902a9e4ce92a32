export type FloodVerdict = 'ok' | 'limited' | 'close';

/** How many error frames in one window close the socket with 1008. */
export const MAX_ERRORS_PER_WINDOW = 10;

/**
 * Per-connection message and error limits as token buckets that refill continuously, at
 * `WS_MESSAGES_PER_WINDOW` per `WS_MESSAGE_WINDOW_MS`:
 *
 * - a burst of `WS_MESSAGES_PER_WINDOW` passes; past it a message is dropped (`rate_limited`)
 *   until the bucket refills, so a client that keeps to the rate is never limited, whatever the
 *   jitter (a fixed window dropped the 21st message of a client sending exactly 2 per second);
 * - every message, dropped or not, also drains a second bucket twice as deep: a client that
 *   sends at twice the rate or more (a burst of 2 × the limit) is closed with `1008`;
 * - error frames drain a bucket of `MAX_ERRORS_PER_WINDOW` that refills over the same window.
 *
 * Three numbers and a timestamp per socket; no timers.
 */
export class FloodGuard {
  private allowance: number;
  private tolerance: number;
  private errorAllowance = MAX_ERRORS_PER_WINDOW;
  private last = 0;
  private readonly perMs: number;
  private readonly errorsPerMs: number;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {
    this.allowance = limit;
    this.tolerance = 2 * limit;
    this.perMs = limit / windowMs;
    this.errorsPerMs = MAX_ERRORS_PER_WINDOW / windowMs;
  }

  message(now: number): FloodVerdict {
    this.refill(now);
    this.tolerance -= 1;
    if (this.tolerance < 1) {
      return 'close';
    }
    if (this.allowance < 1) {
      return 'limited';
    }
    this.allowance -= 1;
    return 'ok';
  }

  /** Counts an error frame; true when this one should close the socket. */
  error(now: number): boolean {
    this.refill(now);
    this.errorAllowance -= 1;
    return this.errorAllowance < 1;
  }

  /** How long until the next message would pass. */
  retryAfterMs(now: number): number {
    this.refill(now);
    return Math.max(1, Math.ceil((1 - this.allowance) / this.perMs));
  }

  private refill(now: number): void {
    const elapsed = this.last === 0 ? 0 : Math.max(0, now - this.last);
    this.last = now;
    this.allowance = Math.min(this.limit, this.allowance + elapsed * this.perMs);
    this.tolerance = Math.min(2 * this.limit, this.tolerance + elapsed * this.perMs);
    this.errorAllowance = Math.min(
      MAX_ERRORS_PER_WINDOW,
      this.errorAllowance + elapsed * this.errorsPerMs,
    );
  }
}

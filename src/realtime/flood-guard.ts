export type FloodVerdict = 'ok' | 'limited' | 'close';

/** How many error frames in one window close the socket with 1008. */
export const MAX_ERRORS_PER_WINDOW = 10;

/**
 * Per-connection message and error counters over fixed windows of `WS_MESSAGE_WINDOW_MS`:
 * past `WS_MESSAGES_PER_WINDOW` a message is dropped (`rate_limited`); at twice that, or at the
 * tenth error in a window, the socket is closed with `1008`.
 */
export class FloodGuard {
  private windowStart = 0;
  private messages = 0;
  private errors = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  message(now: number): FloodVerdict {
    this.roll(now);
    this.messages += 1;
    if (this.messages >= 2 * this.limit) {
      return 'close';
    }
    return this.messages > this.limit ? 'limited' : 'ok';
  }

  /** Counts an error frame; true when this one should close the socket. */
  error(now: number): boolean {
    this.roll(now);
    this.errors += 1;
    return this.errors >= MAX_ERRORS_PER_WINDOW;
  }

  retryAfterMs(now: number): number {
    return Math.max(1, this.windowStart + this.windowMs - now);
  }

  private roll(now: number): void {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.messages = 0;
      this.errors = 0;
    }
  }
}

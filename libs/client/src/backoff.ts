/** Reconnect delays: exponential backoff with full jitter (delay = random × min(cap, base × 2^n)). */
export interface BackoffOptions {
  /** The ceiling of the first delay, in ms. @default 1000 */
  initialMs?: number;
  /** The largest delay, in ms. @default 30000 */
  maxMs?: number;
  /** A source of randomness in [0, 1). @default Math.random */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 1000;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** The next delay; each call widens the window until `maxMs`. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}

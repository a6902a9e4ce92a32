import type { OnApplicationShutdown } from '@nestjs/common';
import type { RateLimiter, RateLimitResult } from './rate-limiter.interface';

const SWEEP_INTERVAL_MS = 10_000;

/** In-process counters for the embedded (single-instance) mode: one small object per window. */
export class MemoryRateLimiter implements RateLimiter, OnApplicationShutdown {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private readonly sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_INTERVAL_MS);

  constructor() {
    this.sweeper.unref();
  }

  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    const now = Date.now();
    let window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      window = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return Promise.resolve({
      count: window.count,
      allowed: window.count <= limit,
      resetInMs: window.resetAt - now,
    });
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweeper);
    this.windows.clear();
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) {
      if (window.resetAt <= now) {
        this.windows.delete(key);
      }
    }
  }
}

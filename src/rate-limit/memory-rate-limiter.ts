import type { OnApplicationShutdown } from '@nestjs/common';
import { ExpiringMap } from '../common/expiring-map';
import type { RateLimiter, RateLimitResult } from './rate-limiter.interface';

/** In-process counters for the embedded (single-instance) mode. */
export class MemoryRateLimiter implements RateLimiter, OnApplicationShutdown {
  private readonly windows = new ExpiringMap<string, { count: number }>();

  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    const current = this.windows.entry(key);
    if (current === undefined) {
      this.windows.set(key, { count: 1 }, windowMs);
      return Promise.resolve({ count: 1, allowed: 1 <= limit, resetInMs: windowMs });
    }
    current.value.count += 1;
    const { count } = current.value;
    return Promise.resolve({ count, allowed: count <= limit, resetInMs: current.ttlMs });
  }

  onApplicationShutdown(): void {
    this.windows.dispose();
  }
}
